//! Certificate status, the bottom of the card lifecycle: the status of a certificate
//! (`certificates.revoked_at / revocation_reason`: NULL = good, reason 6 = on hold), the one
//! function that changes it ([`set_status`], taking the next `status_seq` that delta CRLs and
//! the OCSP cache follow), and the linkage event log every status change and renewal writes
//! (`linkage_events`, ordered by `linkage_seq`). The transition table (`revocation`), the
//! linkage queries (`linkage`) and verifiers build on this; it uses none of them.

use crate::audit::{self, Actor};
use crate::ca::crl::Reason;
use crate::db::DbConn;
use crate::db::models::verifier::LinkageKind;
use crate::db::schema::{certificates, counters, linkage_events};
use crate::error::Result;
use diesel::prelude::*;
use serde::Serialize;

pub use crate::db::models::card::{CardStatus, status as card_status};

/// Certificate status as the table sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// certificateHold.
    Held,
    /// Revoked for good.
    Revoked,
}

impl CertStatus {
    /// From the stored reason.
    pub fn of(reason: Option<i32>) -> Self {
        match reason {
            None => CertStatus::Good,
            Some(6) => CertStatus::Held,
            Some(_) => CertStatus::Revoked,
        }
    }
}

/// Take the next value of a counter (the row lock orders concurrent writers).
pub fn next_seq(conn: &mut DbConn) -> Result<i64> {
    Ok(
        diesel::update(counters::table.filter(counters::name.eq("status_seq")))
            .set(counters::value.eq(counters::value + 1))
            .returning(counters::value)
            .get_result(conn)?,
    )
}

/// Change one certificate's status, conditionally on its current one: `Some(reason)` revokes
/// a good or held certificate (from a hold it keeps the time of the hold), `None` lifts a
/// hold. Takes the next `status_seq`. Returns whether the certificate changed.
pub fn set_status(conn: &mut DbConn, id: i64, reason: Option<Reason>, now_s: i64) -> Result<bool> {
    let seq = next_seq(conn)?;
    let hold = Reason::CertificateHold.code();
    let this = || certificates::table.filter(certificates::id.eq(id));
    let n = match reason {
        None => diesel::update(this().filter(certificates::revocation_reason.eq(hold)))
            .set((
                certificates::revoked_at.eq(None::<i64>),
                certificates::revocation_reason.eq(None::<i32>),
                certificates::status_seq.eq(seq),
            ))
            .execute(conn)?,
        Some(reason) => {
            let from_hold = diesel::update(this().filter(certificates::revocation_reason.eq(hold)))
                .set((
                    certificates::revocation_reason.eq(reason.code()),
                    certificates::status_seq.eq(seq),
                ))
                .execute(conn)?;
            from_hold
                + diesel::update(this().filter(certificates::revocation_reason.is_null()))
                    .set((
                        certificates::revoked_at.eq(now_s),
                        certificates::revocation_reason.eq(reason.code()),
                        certificates::status_seq.eq(seq),
                    ))
                    .execute(conn)?
        }
    };
    if n == 1 {
        record_status(conn, id, reason, now_s)?;
    }
    Ok(n == 1)
}

/// Revoke one certificate outside a card action (spoiled card, renewal) and audit it with
/// `why`; nothing happens to a certificate already revoked for good.
pub fn revoke_one(
    conn: &mut DbConn,
    id: i64,
    serial: &str,
    reason: Reason,
    why: &str,
    actor: &Actor,
    now_s: i64,
) -> Result<bool> {
    let changed = set_status(conn, id, Some(reason), now_s)?;
    if changed {
        audit::append(
            conn,
            now_s,
            actor,
            "certificate.revoke",
            &format!("serial:{serial}"),
            &format!("reason={} {why}", reason.as_str()),
        )?;
    }
    Ok(changed)
}

/// The status counter's current value (what a CRL or the OCSP cache has caught up with).
pub fn current_seq(conn: &mut DbConn) -> Result<i64> {
    Ok(counters::table
        .filter(counters::name.eq("status_seq"))
        .select(counters::value)
        .first(conn)?)
}

/// Take `n` values of the linkage counter; returns the first.
pub fn take_linkage_seq(conn: &mut DbConn, n: i64) -> Result<i64> {
    let last: i64 = diesel::update(counters::table.filter(counters::name.eq("linkage_seq")))
        .set(counters::value.eq(counters::value + n))
        .returning(counters::value)
        .get_result(conn)?;
    Ok(last - n + 1)
}

pub fn current_linkage_seq(conn: &mut DbConn) -> Result<i64> {
    Ok(counters::table
        .filter(counters::name.eq("linkage_seq"))
        .select(counters::value)
        .first(conn)?)
}

/// Record a status change of a card's certificate (called by every status change, inside
/// its transaction). `reason` None: a hold was lifted. Certificates not on a card
/// (infrastructure) have no linkage.
pub fn record_status(
    conn: &mut DbConn,
    certificate_id: i64,
    reason: Option<Reason>,
    now_s: i64,
) -> Result<()> {
    let kind = if reason.is_some() {
        LinkageKind::Revoked
    } else {
        LinkageKind::HoldLifted
    };
    record(conn, kind, certificate_id, None, reason, now_s)
}

/// Record a renewal old → new (inside the renewal's transaction).
pub fn record_renewal(conn: &mut DbConn, old_id: i64, new_id: i64, now_s: i64) -> Result<()> {
    record(
        conn,
        LinkageKind::Renewed,
        old_id,
        Some(new_id),
        None,
        now_s,
    )
}

/// One event on the card of `certificate_id`, with the next linkage_seq.
fn record(
    conn: &mut DbConn,
    kind: LinkageKind,
    certificate_id: i64,
    new_certificate_id: Option<i64>,
    reason: Option<Reason>,
    now_s: i64,
) -> Result<()> {
    let card: Option<i64> = certificates::table
        .find(certificate_id)
        .select(certificates::card_id)
        .first(conn)?;
    let Some(card) = card else { return Ok(()) };
    let seq = take_linkage_seq(conn, 1)?;
    diesel::insert_into(linkage_events::table)
        .values((
            linkage_events::seq.eq(seq),
            linkage_events::kind.eq(kind.as_str()),
            linkage_events::card_id.eq(card),
            linkage_events::certificate_id.eq(certificate_id),
            linkage_events::new_certificate_id.eq(new_certificate_id),
            linkage_events::reason.eq(reason.map(Reason::code)),
            linkage_events::at.eq(now_s),
        ))
        .execute(conn)?;
    Ok(())
}
