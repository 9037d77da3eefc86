//! Applications (申請): the row, with the applicant's data sealed in `pii`.

use crate::db::DbConn;
use crate::db::schema::applications;
use diesel::prelude::*;

super::text_enum! {
    /// An application's state (`applications.state`), in workflow order.
    ApplicationState {
        /// One or more of forms 1–3 missing.
        DocumentsIncomplete = "documents_incomplete",
        /// Waiting for the municipal clerk's four-field check.
        PendingVerification = "pending_verification",
        /// Approved by the clerk; ready for an issuance order.
        Verified = "verified",
        /// Rejected by the clerk.
        Rejected = "rejected",
        /// In an issuance order (発券指示), waiting for its card to be written.
        Ordered = "ordered",
        /// Its card is written (keys, certificates, card number, PINs) and read back.
        Issued = "issued",
    }
}

super::text_enum! {
    /// What an application asks for (`applications.kind`).
    ApplicationKind {
        /// A first card.
        New = "new",
        /// A new card for one lost, stolen or broken (the old one is revoked when it is written).
        Reissue = "reissue",
        /// A new card or certificate for one near its end or whose four fields changed.
        Renewal = "renewal",
    }
}

super::text_enum! {
    /// How the card reaches the holder (`applications.delivery`).
    Delivery {
        /// Restricted-delivery mail (本人限定受取郵便).
        Mail = "mail",
        /// Handed over at the municipal counter.
        Counter = "counter",
    }
}

/// The states as text, for queries (each from [`ApplicationState`]).
pub mod state {
    pub const DOCUMENTS_INCOMPLETE: &str = super::ApplicationState::DocumentsIncomplete.as_str();
    pub const PENDING_VERIFICATION: &str = super::ApplicationState::PendingVerification.as_str();
    pub const VERIFIED: &str = super::ApplicationState::Verified.as_str();
    pub const REJECTED: &str = super::ApplicationState::Rejected.as_str();
    pub const ORDERED: &str = super::ApplicationState::Ordered.as_str();
    pub const ISSUED: &str = super::ApplicationState::Issued.as_str();
}

/// An application row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = applications)]
pub struct ApplicationRow {
    pub id: i64,
    pub reference: String,
    pub kind: String,
    pub state: String,
    pub municipality_code: String,
    pub delivery: String,
    pub form_application: bool,
    pub form_power_of_attorney: bool,
    pub form_consent: bool,
    pub pii: Vec<u8>,
    pub created_by: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub registry_status: Option<String>,
    pub verdicts: Option<String>,
    pub resident_id: Option<i64>,
    pub decided_by: Option<i64>,
    pub decided_at: Option<i64>,
    pub decision_reason: Option<String>,
    pub batch_id: Option<i64>,
    /// The application this one follows (reissue, renewal).
    pub previous_application_id: Option<i64>,
    /// The card it replaces (reissue) or renews (renewal).
    pub card_id: Option<i64>,
    /// Keyed hash of the registry resident the clerk's check found (one live card each).
    pub resident_key: Option<Vec<u8>>,
}

/// A new application.
#[derive(Debug, Insertable)]
#[diesel(table_name = applications)]
pub struct NewApplicationRow<'a> {
    pub reference: &'a str,
    pub kind: &'a str,
    pub state: &'a str,
    pub municipality_code: &'a str,
    pub delivery: &'a str,
    pub form_application: bool,
    pub form_power_of_attorney: bool,
    pub form_consent: bool,
    pub pii: &'a [u8],
    pub created_by: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ApplicationRow {
    /// Insert; returns the id.
    pub fn insert(conn: &mut DbConn, row: &NewApplicationRow<'_>) -> QueryResult<i64> {
        diesel::insert_into(applications::table)
            .values(row)
            .returning(applications::id)
            .get_result(conn)
    }

    /// By id.
    pub fn get(conn: &mut DbConn, id: i64) -> QueryResult<Option<ApplicationRow>> {
        applications::table
            .find(id)
            .select(ApplicationRow::as_select())
            .first(conn)
            .optional()
    }

    /// Newest first, optionally in one state and one municipality.
    pub fn list(
        conn: &mut DbConn,
        state: Option<&str>,
        municipality: Option<&str>,
        before_id: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<ApplicationRow>> {
        let mut q = applications::table.into_boxed();
        if let Some(s) = state {
            q = q.filter(applications::state.eq(s.to_string()));
        }
        if let Some(m) = municipality {
            q = q.filter(applications::municipality_code.eq(m.to_string()));
        }
        if let Some(b) = before_id {
            q = q.filter(applications::id.lt(b));
        }
        q.order(applications::id.desc())
            .limit(limit)
            .select(ApplicationRow::as_select())
            .load(conn)
    }
}
