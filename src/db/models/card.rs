//! Cards: one per ordered application, with how far writing it got.

use crate::db::DbConn;
use crate::db::schema::cards;
use diesel::prelude::*;

super::text_enum! {
    /// How far a card got (`cards.state`); each step is a conditional update from the one before.
    CardState {
        /// Card number reserved and PINs drawn; the card not yet touched.
        Allocated = "allocated",
        /// The card initialised with its number and PINs.
        Personalised = "personalised",
        /// Its certificates are issued.
        Certified = "certified",
        /// Everything written and read back: the card counts as written.
        Written = "written",
        /// Writing was cut off and the card can no longer be found or opened; never used again.
        Spoiled = "spoiled",
        /// Posted by restricted-delivery mail (本人限定受取郵便).
        Shipped = "shipped",
        /// Delivered to the holder in person by the post office.
        Delivered = "delivered",
        /// Returned undeliverable; to be destroyed and its certificates revoked.
        Returned = "returned",
        /// Handed over at the counter after an identity check.
        HandedOver = "handed_over",
    }
}

/// The states as text, for queries (each from [`CardState`]).
pub mod state {
    pub const ALLOCATED: &str = super::CardState::Allocated.as_str();
    pub const PERSONALISED: &str = super::CardState::Personalised.as_str();
    pub const CERTIFIED: &str = super::CardState::Certified.as_str();
    pub const WRITTEN: &str = super::CardState::Written.as_str();
    pub const SPOILED: &str = super::CardState::Spoiled.as_str();
    pub const SHIPPED: &str = super::CardState::Shipped.as_str();
    pub const DELIVERED: &str = super::CardState::Delivered.as_str();
    pub const RETURNED: &str = super::CardState::Returned.as_str();
    pub const HANDED_OVER: &str = super::CardState::HandedOver.as_str();
}

super::text_enum! {
    /// A card's validity (`cards.status`), beside its production and delivery state.
    CardStatus {
        /// In use (or on its way).
        Active = "active",
        /// Certificates on hold after a loss report.
        Suspended = "suspended",
        /// Certificates revoked for good; the card is dead.
        Revoked = "revoked",
        /// Never reached the holder (returned, spoiled, destroyed before delivery).
        Destroyed = "destroyed",
    }
}

/// The statuses as text, for queries (each from [`CardStatus`]).
pub mod status {
    pub const ACTIVE: &str = super::CardStatus::Active.as_str();
    pub const SUSPENDED: &str = super::CardStatus::Suspended.as_str();
    pub const REVOKED: &str = super::CardStatus::Revoked.as_str();
    pub const DESTROYED: &str = super::CardStatus::Destroyed.as_str();
}

/// A card row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cards)]
pub struct CardRow {
    pub id: i64,
    pub card_number: String,
    pub application_id: i64,
    pub batch_id: i64,
    pub state: String,
    pub chip_serial: Option<String>,
    pub keygen: Option<String>,
    pub pins: Option<Vec<u8>>,
    pub expires_on: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub written_at: Option<i64>,
    pub tracking_number: Option<String>,
    pub shipped_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub returned_at: Option<i64>,
    pub handed_over_at: Option<i64>,
    pub handed_over_by: Option<i64>,
    /// Validity: active, suspended, revoked, destroyed (service::revocation).
    pub status: String,
}

/// A card to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = cards)]
pub struct NewCard<'a> {
    pub card_number: &'a str,
    pub application_id: i64,
    pub batch_id: i64,
    pub state: &'a str,
    pub pins: Option<&'a [u8]>,
    pub expires_on: &'a str,
    pub created_at: i64,
    pub updated_at: i64,
}

impl CardRow {
    /// The live (not spoiled) card of an application.
    pub fn for_application(conn: &mut DbConn, application_id: i64) -> QueryResult<Option<Self>> {
        cards::table
            .filter(cards::application_id.eq(application_id))
            .filter(cards::state.ne(state::SPOILED))
            .select(CardRow::as_select())
            .first(conn)
            .optional()
    }

    /// The cards of a batch.
    pub fn for_batch(conn: &mut DbConn, batch_id: i64) -> QueryResult<Vec<Self>> {
        cards::table
            .filter(cards::batch_id.eq(batch_id))
            .order(cards::id.asc())
            .select(CardRow::as_select())
            .load(conn)
    }

    /// A card by number.
    pub fn by_number(conn: &mut DbConn, number: &str) -> QueryResult<Option<Self>> {
        cards::table
            .filter(cards::card_number.eq(number))
            .select(CardRow::as_select())
            .first(conn)
            .optional()
    }

    /// Insert; returns the id. A taken card number is a unique violation.
    pub fn insert(conn: &mut DbConn, row: &NewCard<'_>) -> QueryResult<i64> {
        diesel::insert_into(cards::table)
            .values(row)
            .returning(cards::id)
            .get_result(conn)
    }
}
