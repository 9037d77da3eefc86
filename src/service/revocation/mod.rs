//! The life of a card after it is written (SPEC §2.6): loss reports, holds, revocation for
//! good, lifting a hold, the holder's own request, destruction before delivery, the registry
//! change feed, and renewal. Every change goes through one transition table, [`RULES`]:
//! which action, by whom, from which card status and certificate status, to what, with which
//! RFC 5280 reason, and which follow-up application it opens. A change the table does not
//! allow is refused with the rule that stopped it, and changes nothing.
//!
//! Certificate status lives in `certificates.revoked_at / revocation_reason` (NULL = good,
//! reason 6 = on hold). Each change takes the next `status_seq`, which delta CRLs and the
//! OCSP cache follow.

use crate::audit::{self, Actor};
use crate::ca::crl::Reason;
use crate::db::DbConn;
use crate::db::models::application::{ApplicationRow, state as app_state};
use crate::db::models::card::{CardRow, state as card_state};
use crate::db::schema::{applications, cards, certificates, registry_events, users};
use crate::error::{Error, Result};
use crate::pii::DataKey;
pub use crate::service::status::{
    CertStatus, card_status, current_seq, next_seq, revoke_one, set_status,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

mod callcenter;
mod feed;
mod shown;
pub use callcenter::{IdentityAnswers, QUESTIONS_NEEDED, check_answers, report_loss};
pub use feed::{FeedSummary, process_registry_events};
pub use shown::{CertView, allowed, certificates_view, suspended_cards};

/// Who asks for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// Call-centre staff.
    Callcenter,
    /// Consortium office staff.
    Office,
    /// The registry change feed (kofu acting on it).
    Registry,
    /// kofu itself (delivery records, batch runs, renewal).
    System,
}

impl By {
    /// Stable name (audit).
    pub fn as_str(self) -> &'static str {
        match self {
            By::Callcenter => "callcenter",
            By::Office => "office",
            By::Registry => "registry",
            By::System => "system",
        }
    }
}

/// What happens to a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Loss or theft reported to the call centre: both certificates on hold at once.
    ReportLoss,
    /// The office confirms the loss: revoked for good, a `reissue` application opens.
    Revoke,
    /// The card was found: the hold is lifted.
    LiftHold,
    /// The holder asks to end the card.
    HolderRequest,
    /// Destroyed before it reached the holder (returned undeliverable, or by the office).
    Destroy,
    /// Name, address, sex or birth date changed in the registry, or the holder moved out:
    /// the signing certificate goes, a `renewal` application opens.
    FieldsChanged,
    /// The holder died.
    Death,
    /// A renewal wrote a newer signing certificate to the card.
    Supersede,
}

impl Action {
    /// Stable name (API, audit).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ReportLoss => "report_loss",
            Action::Revoke => "revoke",
            Action::LiftHold => "lift_hold",
            Action::HolderRequest => "holder_request",
            Action::Destroy => "destroy",
            Action::FieldsChanged => "fields_changed",
            Action::Death => "death",
            Action::Supersede => "supersede",
        }
    }

    /// Japanese label for the staff screens.
    pub fn label_ja(self) -> &'static str {
        match self {
            Action::ReportLoss => "紛失・盗難の届出(一時停止)",
            Action::Revoke => "失効(紛失・盗難の確定)と再交付申請",
            Action::LiftHold => "一時停止の解除(カード発見)",
            Action::HolderRequest => "本人申出による失効",
            Action::Destroy => "交付前廃棄",
            Action::FieldsChanged => "基本4情報の変更",
            Action::Death => "死亡",
            Action::Supersede => "更新",
        }
    }
}

/// Which of the card's certificates an action touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Signing and authentication.
    Both,
    /// The signing certificate only (the authentication certificate carries nothing that
    /// changed).
    Signing,
}

/// One row of the transition table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The action.
    pub action: Action,
    /// Who may take it.
    pub by: &'static [By],
    /// Card statuses it applies to.
    pub card_from: &'static [&'static str],
    /// Card delivery states it applies to (empty: any written card).
    pub delivery_states: &'static [&'static str],
    /// The card's status afterwards.
    pub card_to: &'static str,
    /// Certificates it touches.
    pub which: Which,
    /// Certificate statuses it applies to (others on the card are left as they are).
    pub cert_from: &'static [CertStatus],
    /// New reason (None: the hold is lifted).
    pub reason: Option<Reason>,
    /// Follow-up application kind.
    pub follow_up: Option<&'static str>,
}

use CertStatus::{Good, Held};
use card_status::{ACTIVE, DESTROYED, REVOKED, SUSPENDED};

const IN_HANDS: &[&str] = &[
    card_state::SHIPPED,
    card_state::DELIVERED,
    card_state::HANDED_OVER,
];
const NOT_DELIVERED: &[&str] = &[
    card_state::WRITTEN,
    card_state::SHIPPED,
    card_state::RETURNED,
];

/// The transition table. See the module documentation.
pub const RULES: &[Rule] = &[
    Rule {
        action: Action::ReportLoss,
        by: &[By::Callcenter],
        card_from: &[ACTIVE],
        delivery_states: IN_HANDS,
        card_to: SUSPENDED,
        which: Which::Both,
        cert_from: &[Good],
        reason: Some(Reason::CertificateHold),
        follow_up: None,
    },
    Rule {
        action: Action::Revoke,
        by: &[By::Office],
        card_from: &[SUSPENDED],
        delivery_states: &[],
        card_to: REVOKED,
        which: Which::Both,
        cert_from: &[Good, Held],
        reason: Some(Reason::KeyCompromise),
        follow_up: Some(crate::db::models::application::ApplicationKind::Reissue.as_str()),
    },
    Rule {
        action: Action::LiftHold,
        by: &[By::Office],
        card_from: &[SUSPENDED],
        delivery_states: &[],
        card_to: ACTIVE,
        which: Which::Both,
        cert_from: &[Held],
        reason: None,
        follow_up: None,
    },
    Rule {
        action: Action::HolderRequest,
        by: &[By::Office],
        card_from: &[ACTIVE, SUSPENDED],
        delivery_states: IN_HANDS,
        card_to: REVOKED,
        which: Which::Both,
        cert_from: &[Good, Held],
        reason: Some(Reason::CessationOfOperation),
        follow_up: None,
    },
    Rule {
        action: Action::Destroy,
        by: &[By::Office, By::System],
        card_from: &[ACTIVE],
        delivery_states: NOT_DELIVERED,
        card_to: DESTROYED,
        which: Which::Both,
        cert_from: &[Good],
        reason: Some(Reason::Unspecified),
        follow_up: None,
    },
    Rule {
        action: Action::FieldsChanged,
        by: &[By::Registry],
        card_from: &[ACTIVE, SUSPENDED],
        delivery_states: &[],
        card_to: "",
        which: Which::Signing,
        cert_from: &[Good, Held],
        reason: Some(Reason::AffiliationChanged),
        follow_up: Some(crate::db::models::application::ApplicationKind::Renewal.as_str()),
    },
    Rule {
        action: Action::Death,
        by: &[By::Registry],
        card_from: &[ACTIVE, SUSPENDED],
        delivery_states: &[],
        card_to: REVOKED,
        which: Which::Both,
        cert_from: &[Good, Held],
        reason: Some(Reason::CessationOfOperation),
        follow_up: None,
    },
    Rule {
        action: Action::Supersede,
        by: &[By::System],
        card_from: &[ACTIVE],
        delivery_states: &[],
        card_to: "",
        which: Which::Signing,
        cert_from: &[Good, Held],
        reason: Some(Reason::Superseded),
        follow_up: None,
    },
];

impl Rule {
    /// Whether `by` may take this action on `card` as it is now; the error names what stops it.
    pub fn permits(&self, card: &CardRow, by: By) -> Result<()> {
        let action = self.action.as_str();
        if !self.by.contains(&by) {
            return Err(Error::Forbidden(format!(
                "{action} is not taken by {}",
                by.as_str()
            )));
        }
        if !self.card_from.contains(&card.status.as_str()) {
            return Err(Error::Conflict(format!(
                "card {} is {}; {action} applies only to a card that is {}",
                card.card_number,
                card.status,
                self.card_from.join(" or ")
            )));
        }
        if card.written_at.is_none()
            || (!self.delivery_states.is_empty()
                && !self.delivery_states.contains(&card.state.as_str()))
        {
            return Err(Error::Conflict(format!(
                "card {} is {}; {action} applies only to a card that is {}",
                card.card_number,
                card.state,
                if self.delivery_states.is_empty() {
                    card_state::WRITTEN.to_string()
                } else {
                    self.delivery_states.join(" or ")
                }
            )));
        }
        Ok(())
    }
}

/// The rule for an action.
pub fn rule(action: Action) -> Result<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.action == action)
        .ok_or_else(|| Error::Internal(format!("no rule for {}", action.as_str())))
}

/// One certificate a change touched.
#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    /// Serial (hex).
    pub serial: String,
    /// Profile (signing, authentication).
    pub profile: String,
    /// Status afterwards.
    pub status: CertStatus,
    /// Reason afterwards (RFC 5280 name), if revoked or held.
    pub reason: Option<&'static str>,
}

/// What a change did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Card number.
    pub card_number: String,
    /// The card's status afterwards.
    pub card_status: String,
    /// Certificates changed.
    pub certificates: Vec<Changed>,
    /// Follow-up application opened: id and reference.
    pub follow_up: Option<(i64, String)>,
}

/// The certificates written to a card (issued rows only).
pub fn card_certificates(
    conn: &mut DbConn,
    card_id: i64,
) -> Result<Vec<crate::db::models::ca::CertificateRow>> {
    use crate::db::models::ca::CertificateRow;
    Ok(certificates::table
        .filter(certificates::card_id.eq(card_id))
        .filter(certificates::state.eq(crate::db::models::ca::CertState::Issued.as_str()))
        .order(certificates::id.asc())
        .select(CertificateRow::as_select())
        .load(conn)?)
}

/// Apply `action` to a card, as `by`, inside the caller's transaction. `detail` goes into
/// the audit entry (never personal data). Refuses with a clear error, changing nothing, when
/// the table does not allow it.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    conn: &mut DbConn,
    card: &CardRow,
    action: Action,
    by: By,
    user_id: Option<i64>,
    actor: &Actor,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let r = rule(action)?;
    r.permits(card, by)?;
    let now_s = now.timestamp();
    // The card first, conditionally: of two people acting at once, one wins.
    if !r.card_to.is_empty() {
        let n = diesel::update(
            cards::table
                .filter(cards::id.eq(card.id))
                .filter(cards::status.eq(&card.status)),
        )
        .set((cards::status.eq(r.card_to), cards::updated_at.eq(now_s)))
        .execute(conn)?;
        if n != 1 {
            return Err(Error::Changed(format!(
                "card {} changed meanwhile; reload and try again",
                card.card_number
            )));
        }
    }
    let mut changed = Vec::new();
    for cert in card_certificates(conn, card.id)? {
        if r.which == Which::Signing && cert.profile != "signing" {
            continue;
        }
        let status = CertStatus::of(cert.revocation_reason);
        if !r.cert_from.contains(&status) {
            continue;
        }
        let n = usize::from(set_status(conn, cert.id, r.reason, now.timestamp())?);
        if n != 1 {
            return Err(Error::Changed(format!(
                "certificate {} changed meanwhile; try again",
                cert.serial
            )));
        }
        changed.push(Changed {
            serial: cert.serial.clone(),
            profile: cert.profile.clone(),
            status: match r.reason {
                None => CertStatus::Good,
                Some(Reason::CertificateHold) => CertStatus::Held,
                Some(_) => CertStatus::Revoked,
            },
            reason: r.reason.map(Reason::as_str),
        });
    }
    if changed.is_empty() && r.card_to.is_empty() {
        return Err(Error::Conflict(format!(
            "card {} has no certificate that {} applies to",
            card.card_number,
            action.as_str()
        )));
    }
    let follow_up = match r.follow_up {
        Some(kind) => Some(open_follow_up(conn, card, kind, user_id, actor, now)?),
        None => None,
    };
    let serials: Vec<String> = changed
        .iter()
        .map(|c| {
            format!(
                "{}:{}={}",
                c.profile,
                c.serial,
                c.reason.unwrap_or("lifted")
            )
        })
        .collect();
    let mut text = format!(
        "by={} card_status={} certificates={}",
        by.as_str(),
        if r.card_to.is_empty() {
            &card.status
        } else {
            r.card_to
        },
        serials.join(",")
    );
    if let Some((id, _)) = &follow_up {
        text.push_str(&format!(" follow_up=application:{id}"));
    }
    if !detail.is_empty() {
        text.push(' ');
        text.push_str(detail);
    }
    audit::append(
        conn,
        now_s,
        actor,
        &format!("card.{}", action.as_str()),
        &format!("card:{}", card.card_number),
        &text,
    )?;
    Ok(Outcome {
        card_number: card.card_number.clone(),
        card_status: if r.card_to.is_empty() {
            card.status.clone()
        } else {
            r.card_to.to_string()
        },
        certificates: changed,
        follow_up,
    })
}

/// The user id that kofu's own follow-up applications are recorded by: a disabled account
/// nobody can log in to (and which never orders issuance, so separation of duties holds).
fn system_user(conn: &mut DbConn, now: i64) -> Result<i64> {
    const NAME: &str = "kofu:system";
    if let Some(id) = users::table
        .filter(users::username.eq(NAME))
        .select(users::id)
        .first::<i64>(conn)
        .optional()?
    {
        return Ok(id);
    }
    Ok(diesel::insert_into(users::table)
        .values((
            users::username.eq(NAME),
            users::role.eq(crate::service::users::Role::Office.as_str()),
            users::password_hash.eq("!"),
            users::must_change_password.eq(false),
            users::disabled.eq(true),
            users::created_at.eq(now),
        ))
        .returning(users::id)
        .get_result(conn)?)
}

/// Open a `reissue` or `renewal` application for the card's holder, with the holder's data
/// as last checked (sealed blob copied as is) and no forms yet: the holder's forms (and, for
/// a renewal, the new four fields) are recorded by the office, then the clerk checks them.
fn open_follow_up(
    conn: &mut DbConn,
    card: &CardRow,
    kind: &'static str,
    user_id: Option<i64>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(i64, String)> {
    let now_s = now.timestamp();
    let previous = ApplicationRow::get(conn, card.application_id)?
        .ok_or_else(|| Error::NotFound(format!("application {}", card.application_id)))?;
    let created_by = match user_id {
        Some(id) => id,
        None => system_user(conn, now_s)?,
    };
    let reference = crate::service::intake::new_reference()?;
    let id: i64 = diesel::insert_into(applications::table)
        .values((
            applications::reference.eq(&reference),
            applications::kind.eq(kind),
            applications::state.eq(app_state::DOCUMENTS_INCOMPLETE),
            applications::municipality_code.eq(&previous.municipality_code),
            applications::delivery.eq(&previous.delivery),
            applications::form_application.eq(false),
            applications::form_power_of_attorney.eq(false),
            applications::form_consent.eq(false),
            applications::pii.eq(&previous.pii),
            applications::created_by.eq(created_by),
            applications::created_at.eq(now_s),
            applications::updated_at.eq(now_s),
            applications::resident_id.eq(previous.resident_id),
            applications::previous_application_id.eq(previous.id),
            applications::card_id.eq(card.id),
        ))
        .returning(applications::id)
        .get_result(conn)?;
    audit::append(
        conn,
        now_s,
        actor,
        "application.create",
        &format!("application:{id}"),
        &format!(
            "kind={kind} state={} follows=application:{} card={}",
            app_state::DOCUMENTS_INCOMPLETE,
            previous.id,
            card.card_number
        ),
    )?;
    Ok((id, reference))
}

/// A card by its (checked) number, or not found.
pub fn card_by_number(
    conn: &mut DbConn,
    number: &crate::card::number::CardNumber,
) -> Result<CardRow> {
    CardRow::by_number(conn, number)?.ok_or_else(|| Error::NotFound(format!("card {number}")))
}

/// A card replaced by a new one (a reissue or renewal written for the same person): its
/// certificates still good or on hold are revoked as superseded (one already revoked for
/// good keeps its reason) and the card is `revoked`, inside the caller's transaction.
/// Returns the serials revoked.
pub fn supersede_card(
    conn: &mut DbConn,
    card_id: i64,
    actor: &Actor,
    now_s: i64,
) -> Result<Vec<String>> {
    let hold = Reason::CertificateHold.code();
    let live: Vec<(i64, String)> = certificates::table
        .filter(certificates::card_id.eq(card_id))
        .filter(certificates::state.eq(crate::db::models::ca::CertState::Issued.as_str()))
        .filter(
            certificates::revocation_reason
                .is_null()
                .or(certificates::revocation_reason.eq(hold)),
        )
        .select((certificates::id, certificates::serial))
        .load(conn)?;
    let mut revoked = Vec::new();
    for (id, serial) in &live {
        if revoke_one(
            conn,
            *id,
            serial,
            Reason::Superseded,
            "replaced by a new card",
            actor,
            now_s,
        )? {
            revoked.push(serial.clone());
        }
    }
    diesel::update(
        cards::table
            .filter(cards::id.eq(card_id))
            .filter(cards::status.ne(DESTROYED)),
    )
    .set(cards::status.eq(REVOKED))
    .execute(conn)?;
    Ok(revoked)
}

/// A card spoiled while it was written: the certificates already issued for it are revoked
/// (unspecified: the chip never reached anyone) and the card is `destroyed`, inside the
/// caller's transaction. Returns the serials revoked.
pub fn revoke_spoiled_card(
    conn: &mut DbConn,
    card_id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let now_s = now.timestamp();
    let live: Vec<(i64, String)> = certificates::table
        .filter(certificates::card_id.eq(card_id))
        .filter(certificates::state.eq(crate::db::models::ca::CertState::Issued.as_str()))
        .filter(certificates::revoked_at.is_null())
        .select((certificates::id, certificates::serial))
        .load(conn)?;
    for (id, serial) in &live {
        revoke_one(
            conn,
            *id,
            serial,
            Reason::Unspecified,
            "spoiled card",
            actor,
            now_s,
        )?;
    }
    diesel::update(cards::table.filter(cards::id.eq(card_id)))
        .set(cards::status.eq(DESTROYED))
        .execute(conn)?;
    Ok(live.into_iter().map(|(_, s)| s).collect())
}

/// An office action on a card (revoke, lift the hold, the holder's request, destroy).
pub fn office_action(
    conn: &mut DbConn,
    number: &crate::card::number::CardNumber,
    action: Action,
    user_id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    if !matches!(
        action,
        Action::Revoke | Action::LiftHold | Action::HolderRequest | Action::Destroy
    ) {
        return Err(Error::bad(
            "action",
            format!(
                "{} is not an office action; use revoke, lift_hold, holder_request or destroy",
                action.as_str()
            ),
        ));
    }
    conn.transaction(|c| {
        let card = card_by_number(c, number)?;
        apply(c, &card, action, By::Office, Some(user_id), actor, "", now)
    })
}

#[cfg(test)]
mod tests;
