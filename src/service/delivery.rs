//! Delivery (SPEC §2.5): the documents of a batch (labels, PIN mailers, counter notices) and
//! the card's way to its holder, as conditional transitions:
//!
//! | from      | to          | when                                                   |
//! |-----------|-------------|--------------------------------------------------------|
//! | written   | shipped     | mail delivery; the tracking number is recorded          |
//! | shipped   | delivered   | the post office handed it over in person               |
//! | shipped   | returned    | undeliverable; destroyed, certificates to be revoked   |
//! | written   | handed_over | counter delivery, after the clerk ticked the ID check |
//!
//! Shipping or handing over erases the sealed PINs: the PIN mailer has gone out by then.
//! Reading applicants' data for documents is audited.

use crate::audit;
use crate::card::number;
use crate::db::DbConn;
use crate::db::models::application::ApplicationRow;
use crate::db::models::card::{CardRow, state};
use crate::db::schema::{applications, cards};
use crate::error::{Error, Result};
use crate::pdf::{CounterNotice, MailLabel, PinMailer};
use crate::pii::DataKey;
use crate::service::auth::StaffUser;
use crate::service::{batches, intake};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// The batch's cards in `states` with their applications, in card order.
fn cards_with_applications(
    conn: &mut DbConn,
    batch_id: i64,
    states: &[&str],
) -> Result<Vec<(CardRow, ApplicationRow)>> {
    Ok(cards::table
        .inner_join(applications::table.on(applications::id.eq(cards::application_id)))
        .filter(cards::batch_id.eq(batch_id))
        .filter(cards::state.eq_any(states))
        .order(cards::id.asc())
        .select((CardRow::as_select(), ApplicationRow::as_select()))
        .load(conn)?)
}

fn audit_read(
    conn: &mut DbConn,
    user: &StaffUser,
    batch_id: i64,
    what: &str,
    count: usize,
    now: DateTime<Utc>,
) -> Result<()> {
    audit::append(
        conn,
        now.timestamp(),
        &user.actor(),
        &format!("batch.{what}"),
        &format!("batch:{batch_id}"),
        &format!("documents={count}"),
    )?;
    Ok(())
}

/// Mailing labels for the batch's written cards going by mail (not yet shipped).
pub fn labels(
    conn: &mut DbConn,
    key: &DataKey,
    user: &StaffUser,
    batch_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<MailLabel>> {
    crate::service::orders::show(conn, batch_id)?;
    let mut out = Vec::new();
    for (card, app) in cards_with_applications(conn, batch_id, &[state::WRITTEN])? {
        if app.delivery != crate::db::models::application::Delivery::Mail {
            continue;
        }
        let who = intake::applicant(key, &app)?;
        out.push(MailLabel {
            postal_code: who.person.postal_code,
            address: who.person.address,
            name: who.person.name,
            reference: card.card_number,
        });
    }
    audit_read(conn, user, batch_id, "labels", out.len(), now)?;
    Ok(out)
}

/// PIN mailers for the batch's cards whose PINs are still held.
pub fn pin_mailers(
    conn: &mut DbConn,
    key: &DataKey,
    user: &StaffUser,
    batch_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<PinMailer>> {
    crate::service::orders::show(conn, batch_id)?;
    let mut out = Vec::new();
    for (card, app) in cards_with_applications(conn, batch_id, &[state::WRITTEN])? {
        let Some(pins) = batches::pins(key, &card)? else {
            continue;
        };
        let who = intake::applicant(key, &app)?;
        out.push(PinMailer {
            postal_code: who.person.postal_code,
            address: who.person.address,
            name: who.person.name,
            card_number: card.card_number,
            auth_pin: pins.auth.clone(),
            sign_pin: pins.sign.clone(),
        });
    }
    audit_read(conn, user, batch_id, "pin_mailers", out.len(), now)?;
    Ok(out)
}

/// Counter-pickup notices for the batch's written cards to be collected at the counter.
pub fn counter_notices(
    conn: &mut DbConn,
    key: &DataKey,
    user: &StaffUser,
    batch_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<CounterNotice>> {
    crate::service::orders::show(conn, batch_id)?;
    let mut out = Vec::new();
    for (card, app) in cards_with_applications(conn, batch_id, &[state::WRITTEN])? {
        if app.delivery != crate::db::models::application::Delivery::Counter {
            continue;
        }
        let who = intake::applicant(key, &app)?;
        out.push(CounterNotice {
            postal_code: who.person.postal_code,
            address: who.person.address,
            name: who.person.name,
            application: app.reference,
            card_number: card.card_number,
        });
    }
    audit_read(conn, user, batch_id, "counter_notices", out.len(), now)?;
    Ok(out)
}

/// What happened to a card on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Posted, with the tracking number.
    Shipped {
        /// 本人限定受取郵便 tracking number, 11–13 digits.
        tracking_number: String,
    },
    /// Delivered in person by the post office.
    Delivered,
    /// Returned undeliverable.
    Returned,
    /// Handed over at the counter; `identity_checked` is the clerk's tick.
    HandedOver {
        /// The clerk checked the holder's identity document.
        identity_checked: bool,
    },
}

impl Event {
    fn rule(
        &self,
    ) -> (
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
    ) {
        // (from, to, delivery it applies to, audit action)
        match self {
            Event::Shipped { .. } => (
                state::WRITTEN,
                state::SHIPPED,
                Some(crate::db::models::application::Delivery::Mail.as_str()),
                "card.shipped",
            ),
            Event::Delivered => (state::SHIPPED, state::DELIVERED, None, "card.delivered"),
            Event::Returned => (state::SHIPPED, state::RETURNED, None, "card.returned"),
            Event::HandedOver { .. } => (
                state::WRITTEN,
                state::HANDED_OVER,
                Some(crate::db::models::application::Delivery::Counter.as_str()),
                "card.handed_over",
            ),
        }
    }
}

/// Check a tracking number: 11 to 13 digits, hyphens and spaces ignored.
pub fn tracking_number(input: &str) -> Result<String> {
    let digits: String = crate::jp::fold(input)
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .collect();
    if !(11..=13).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::bad(
            "tracking_number",
            "expected the 11 to 13 digits printed on the 本人限定受取郵便 slip",
        ));
    }
    Ok(digits)
}

/// Record `event` for card `card_number`. Refused, changing nothing, when the card is not in
/// the state the event follows or goes by the other delivery.
pub fn record(
    conn: &mut DbConn,
    key: &DataKey,
    user: &StaffUser,
    number: &number::CardNumber,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<CardRow> {
    if let Event::HandedOver {
        identity_checked: false,
    } = event
    {
        return Err(Error::bad(
            "identity_checked",
            "check the holder's identity document and tick the box before handing over",
        ));
    }
    let tracking = match event {
        Event::Shipped { tracking_number: t } => Some(tracking_number(t)?),
        _ => None,
    };
    let (from, to, delivery, action) = event.rule();
    let now_s = now.timestamp();
    conn.transaction(|c| {
        let card = CardRow::by_number(c, number)?
            .ok_or_else(|| Error::NotFound(format!("card {number}")))?;
        let app = ApplicationRow::get(c, card.application_id)?
            .ok_or_else(|| Error::Internal("card without application".into()))?;
        if let Some(d) = delivery
            && app.delivery != d
        {
            return Err(Error::Conflict(format!(
                "card {number} goes by {}, not {d}",
                app.delivery
            )));
        }
        let target = cards::table
            .filter(cards::id.eq(card.id))
            .filter(cards::state.eq(from));
        let n = match event {
            Event::Shipped { .. } => diesel::update(target)
                .set((
                    cards::state.eq(to),
                    cards::tracking_number.eq(&tracking),
                    cards::shipped_at.eq(now_s),
                    cards::pins.eq(None::<Vec<u8>>),
                    cards::updated_at.eq(now_s),
                ))
                .execute(c)?,
            Event::Delivered => diesel::update(target)
                .set((
                    cards::state.eq(to),
                    cards::delivered_at.eq(now_s),
                    cards::updated_at.eq(now_s),
                ))
                .execute(c)?,
            Event::Returned => diesel::update(target)
                .set((
                    cards::state.eq(to),
                    cards::returned_at.eq(now_s),
                    cards::updated_at.eq(now_s),
                ))
                .execute(c)?,
            Event::HandedOver { .. } => diesel::update(target)
                .set((
                    cards::state.eq(to),
                    cards::handed_over_at.eq(now_s),
                    cards::handed_over_by.eq(user.id),
                    cards::pins.eq(None::<Vec<u8>>),
                    cards::updated_at.eq(now_s),
                ))
                .execute(c)?,
        };
        if n != 1 {
            return Err(Error::Conflict(format!(
                "card {number} is {}; this needs a card that is {from}",
                card.state
            )));
        }
        let detail = match (event, &tracking) {
            (Event::Shipped { .. }, Some(t)) => format!("tracking={t}"),
            (Event::Returned, _) => "undeliverable".into(),
            (Event::HandedOver { .. }, _) => "identity document checked".into(),
            _ => String::new(),
        };
        audit::append(
            c,
            now_s,
            &user.actor(),
            action,
            &format!("card:{number}"),
            &detail,
        )?;
        if let Event::Returned = event {
            // SPEC §2.5: a returned card is destroyed and its certificates revoked, in the
            // same transaction as the record of its return.
            let returned = CardRow::by_number(c, number)?
                .ok_or_else(|| Error::Internal("card vanished".into()))?;
            crate::service::revocation::apply(
                c,
                &returned,
                crate::service::revocation::Action::Destroy,
                crate::service::revocation::By::System,
                Some(user.id),
                &user.actor(),
                "returned undeliverable",
                now,
            )?;
        }
        if let Some(t) = &tracking {
            let who = intake::applicant(key, &app)?;
            if let Some(email) = &who.email {
                crate::mail::enqueue(
                    c,
                    key,
                    email,
                    crate::mail::Notice::Shipped {
                        name: who.person.name.clone(),
                        reference: app.reference.clone(),
                        tracking: t.clone(),
                    },
                    now,
                )?;
            }
        }
        CardRow::by_number(c, number)?.ok_or_else(|| Error::Internal("card vanished".into()))
    })
}
