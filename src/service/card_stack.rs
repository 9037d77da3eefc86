//! The card stack's records (issue 12): tokens set aside while a batch is written, so that
//! the operator pulls them from the stack and kofu never takes them again nor gives their
//! number to another card; and the sweep that revokes every certificate left on a card that
//! is not its application's written card.
//!
//! A survey at the start of each run compares every token in the readers with the cards
//! kofu knows: a token with a label that is no card of kofu's, with the number of a spoiled
//! card, or with the number of a card written on another chip is set aside; so is an
//! unreadable one. Tokens that refuse to be personalised are set aside as they are met.

use crate::audit::{self, Actor};
use crate::ca::crl::Reason;
use crate::card::number;
use crate::card::readers::{AsideReason, SetAside, Token};
use crate::db::DbConn;
use crate::db::models::ca::state as cert_state;
use crate::db::models::card::{CardRow, state as card_state};
use crate::db::schema::{cards, certificates, set_aside_cards};
use crate::error::Result;
use crate::service::revocation::{card_status, revoke_one};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

/// A set-aside token as recorded.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = set_aside_cards)]
pub struct SetAsideRow {
    /// Row id.
    pub id: i64,
    /// The batch being written when it was found.
    pub batch_id: i64,
    /// The card whose number it carries, if kofu knows that card.
    pub card_id: Option<i64>,
    /// Chip serial (empty if the token reports none).
    pub chip_serial: String,
    /// Token label (empty if none).
    pub token_label: String,
    /// Why (`AsideReason::as_str`).
    pub reason: String,
    /// What the token said.
    pub detail: String,
    /// When (Unix seconds).
    pub created_at: i64,
}

impl SetAsideRow {
    /// The reason for the operator's page.
    pub fn reason_ja(&self) -> &'static str {
        AsideReason::parse(&self.reason).map_or("不明", AsideReason::label_ja)
    }
}

/// Record a set-aside token found while writing batch `batch_id` and audit it. A token
/// already recorded (same chip and label, or for a token without a serial the same label
/// and reason in the same batch) is not recorded again; returns whether it was new.
pub fn record(
    conn: &mut DbConn,
    batch_id: i64,
    card_id: Option<i64>,
    t: &SetAside,
    actor: &Actor,
    now_s: i64,
) -> Result<bool> {
    conn.transaction(|c| {
        crate::db::lock_for_write(c)?;
        let mut seen = set_aside_cards::table
            .filter(set_aside_cards::chip_serial.eq(&t.chip_serial))
            .filter(set_aside_cards::token_label.eq(&t.label))
            .into_boxed();
        if t.chip_serial.is_empty() {
            seen = seen
                .filter(set_aside_cards::batch_id.eq(batch_id))
                .filter(set_aside_cards::reason.eq(t.reason.as_str()));
        }
        let seen: i64 = seen.count().get_result(c)?;
        if seen > 0 {
            return Ok(false);
        }
        diesel::insert_into(set_aside_cards::table)
            .values((
                set_aside_cards::batch_id.eq(batch_id),
                set_aside_cards::card_id.eq(card_id),
                set_aside_cards::chip_serial.eq(&t.chip_serial),
                set_aside_cards::token_label.eq(&t.label),
                set_aside_cards::reason.eq(t.reason.as_str()),
                set_aside_cards::detail.eq(&t.detail),
                set_aside_cards::created_at.eq(now_s),
            ))
            .execute(c)?;
        audit::append(
            c,
            now_s,
            actor,
            "card.set_aside",
            &format!(
                "chip:{}",
                if t.chip_serial.is_empty() {
                    "-"
                } else {
                    &t.chip_serial
                }
            ),
            &format!(
                "reason={} label={} slot={} batch_id={batch_id}; {}",
                t.reason.as_str(),
                if t.label.is_empty() { "-" } else { &t.label },
                t.slot,
                t.detail
            ),
        )?;
        Ok(true)
    })
}

/// Chip serials of every token ever set aside (the readers skip them).
pub fn serials(conn: &mut DbConn) -> Result<Vec<String>> {
    Ok(set_aside_cards::table
        .filter(set_aside_cards::chip_serial.ne(""))
        .select(set_aside_cards::chip_serial)
        .distinct()
        .load(conn)?)
}

/// Whether a set-aside token carries `number` (a new card never gets it).
pub fn number_carried(conn: &mut DbConn, number: &str) -> Result<bool> {
    let n: i64 = set_aside_cards::table
        .filter(set_aside_cards::token_label.eq(number))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The tokens set aside while batch `batch_id` was written, oldest first.
pub fn for_batch(conn: &mut DbConn, batch_id: i64) -> Result<Vec<SetAsideRow>> {
    Ok(set_aside_cards::table
        .filter(set_aside_cards::batch_id.eq(batch_id))
        .order(set_aside_cards::id.asc())
        .select(SetAsideRow::as_select())
        .load(conn)?)
}

/// Which surveyed tokens are to be set aside, each with the card whose number it carries.
/// Blank cards, and cards labelled with the number of a live card of kofu's on the chip
/// recorded for it (or not yet recorded: a card being personalised), are in order.
pub fn classify(conn: &mut DbConn, tokens: &[Token]) -> Result<Vec<(SetAside, Option<i64>)>> {
    let mut out = Vec::new();
    for t in tokens {
        let (slot, label, serial) = match t {
            Token::Blank { .. } => continue,
            Token::Unreadable { slot, error } => {
                out.push((
                    SetAside {
                        slot: *slot,
                        chip_serial: String::new(),
                        label: String::new(),
                        reason: AsideReason::Unreadable,
                        detail: error.clone(),
                    },
                    None,
                ));
                continue;
            }
            Token::Labelled {
                slot,
                label,
                serial,
            } => (*slot, label, serial),
        };
        let card = match number::parse(label) {
            Ok(n) if n == *label => CardRow::by_number(conn, label)?,
            _ => None,
        };
        let (reason, detail, card_id) = match card {
            None => (
                AsideReason::UnknownLabel,
                "initialised with a label that is no card of kofu's".to_string(),
                None,
            ),
            Some(c) if c.state == card_state::SPOILED => (
                AsideReason::Spoiled,
                format!("card {} was spoiled", c.card_number),
                Some(c.id),
            ),
            Some(c) => match &c.chip_serial {
                Some(chip) if chip != serial => (
                    AsideReason::OtherCard,
                    format!("card {} was written on chip {chip}", c.card_number),
                    Some(c.id),
                ),
                _ => continue,
            },
        };
        out.push((
            SetAside {
                slot,
                chip_serial: serial.clone(),
                label: label.clone(),
                reason,
                detail,
            },
            card_id,
        ));
    }
    Ok(out)
}

/// Revoke every certificate that is still good (or only on hold) on a card that is not its
/// application's written card — a spoiled card, or one destroyed — however late it was
/// issued. Returns the serials revoked (one audit entry each, and one for the sweep).
pub fn sweep(conn: &mut DbConn, actor: &Actor, now: DateTime<Utc>) -> Result<Vec<String>> {
    let now_s = now.timestamp();
    let hold = Reason::CertificateHold.code();
    let stray: Vec<(i64, String)> = certificates::table
        .inner_join(cards::table.on(certificates::card_id.eq(cards::id.nullable())))
        .filter(certificates::state.eq(cert_state::ISSUED))
        .filter(
            certificates::revocation_reason
                .is_null()
                .or(certificates::revocation_reason.eq(hold)),
        )
        .filter(
            cards::state
                .eq(card_state::SPOILED)
                .or(cards::status.eq(card_status::DESTROYED)),
        )
        .select((certificates::id, certificates::serial))
        .load(conn)?;
    if stray.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction(|c| {
        let mut revoked = Vec::new();
        for (id, serial) in &stray {
            if revoke_one(
                c,
                *id,
                serial,
                Reason::Unspecified,
                "not on its application's written card",
                actor,
                now_s,
            )? {
                revoked.push(serial.clone());
            }
        }
        if !revoked.is_empty() {
            audit::append(
                c,
                now_s,
                actor,
                "certificates.swept",
                "cards:not-written",
                &format!("certificates revoked: {}", revoked.join(" ")),
            )?;
        }
        Ok(revoked)
    })
}
