//! A card number and PINs for an application, recorded before any card is touched, and the
//! cards a reissue or renewal replaces.

use super::*;

/// The first step of writing a card, before any card is touched: the application's live card
/// if it has one, or else a card number (unique, never one a set-aside token carries; a
/// collision draws another) with the PINs drawn and sealed, recorded as `allocated`. A holder
/// of at least `signing_min_age` (ca-config's, the age the signing profile requires) gets a
/// signing PIN.
pub fn allocate(
    db: &DbPool,
    key: &DataKey,
    actor: &Actor,
    app: &ApplicationRow,
    signing_min_age: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<CardRow> {
    let mut db = db;
    if let Some(row) = db.with(|c| Ok(CardRow::for_application(c, app.id)?))? {
        return Ok(row);
    }
    let batch_id = app
        .batch_id
        .ok_or_else(|| Error::Conflict(format!("application {} is in no batch", app.reference)))?;
    let batch_ref: String = db.with(|c| {
        Ok(issuance_batches::table
            .find(batch_id)
            .select(issuance_batches::reference)
            .first(c)?)
    })?;
    let applicant = intake::applicant(key, app)?;
    let signing =
        validity::age_on(applicant.person.birth_date, validity::jst_date(now)) >= signing_min_age;
    let pins = Pins::generate(signing)?;
    let sealed = key.seal_json(PINS_TABLE, &pins)?;
    let expires_on = validity::card_expiry(applicant.person.birth_date, now)
        .format("%Y-%m-%d")
        .to_string();
    let now_s = now.timestamp();
    for _ in 0..8 {
        let number = number::generate()?;
        if db.with(|c| card_stack::number_carried(c, &number))? {
            continue;
        }
        let stored = db.with(|c| {
            c.transaction(|c| {
                CardRow::insert(
                    c,
                    &NewCard {
                        card_number: &number,
                        application_id: app.id,
                        batch_id,
                        state: state::ALLOCATED,
                        pins: Some(&sealed),
                        expires_on: &expires_on,
                        created_at: now_s,
                        updated_at: now_s,
                    },
                )?;
                audit::append(
                    c,
                    now_s,
                    actor,
                    "card.allocated",
                    &format!("card:{number}"),
                    &format!("application:{} batch:{batch_ref}", app.reference),
                )?;
                CardRow::for_application(c, app.id)?
                    .ok_or_else(|| Error::Internal("card vanished".into()))
            })
        });
        match stored {
            Err(Error::Duplicate(_)) => {
                // Either the number is taken (draw again) or the application got its
                // card from another run meanwhile (take that one).
                if let Some(row) = db.with(|c| Ok(CardRow::for_application(c, app.id)?))? {
                    return Ok(row);
                }
            }
            other => return other,
        }
    }
    Err(Error::Internal("no free card number after 8 draws".into()))
}

/// The cards a `reissue` or `renewal` application's new card replaces: the card it was
/// opened for, and any other live card of the same resident (never `new_card` itself).
pub(super) fn replaced_cards(
    c: &mut DbConn,
    app: &ApplicationRow,
    new_card: i64,
) -> Result<Vec<CardRow>> {
    if app.kind != crate::db::models::application::ApplicationKind::Reissue
        && app.kind != crate::db::models::application::ApplicationKind::Renewal
    {
        return Ok(Vec::new());
    }
    use crate::service::revocation::card_status;
    let mut ids: Vec<i64> = app.card_id.into_iter().collect();
    if let Some(k) = &app.resident_key {
        ids.extend(
            cards::table
                .inner_join(applications::table.on(applications::id.eq(cards::application_id)))
                .filter(applications::resident_key.eq(k))
                .filter(cards::state.ne(state::SPOILED))
                .filter(cards::status.eq_any([card_status::ACTIVE, card_status::SUSPENDED]))
                .select(cards::id)
                .load::<i64>(c)?,
        );
    }
    ids.retain(|id| *id != new_card);
    ids.sort_unstable();
    ids.dedup();
    Ok(cards::table
        .filter(cards::id.eq_any(ids))
        .select(CardRow::as_select())
        .load(c)?)
}
