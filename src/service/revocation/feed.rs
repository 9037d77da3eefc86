//! The registry change feed acting on cards: a change of the four fields or a move out
//! revokes the signing certificate of the resident's live cards and opens a renewal; a death
//! revokes both. Each event is marked processed with what it caused, so it acts once.

use super::*;

/// What the registry change feed did to cards.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FeedSummary {
    /// Events looked at.
    pub events: usize,
    /// Cards whose certificates changed.
    pub cards: usize,
    /// Follow-up applications opened.
    pub follow_ups: usize,
}

/// Act on registry events not processed yet: a change of name, address, sex or birth date,
/// or a move out, revokes the signing certificate of the resident's live cards and opens a
/// renewal; a death revokes both certificates. Each event is marked processed in the same
/// transaction as what it caused, so running this twice acts once.
pub fn process_registry_events(
    conn: &mut DbConn,
    key: &DataKey,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<FeedSummary> {
    let mut summary = FeedSummary::default();
    let pending: Vec<(i64, i64, String, String, String)> = registry_events::table
        .filter(registry_events::processed_at.is_null())
        .order(registry_events::id.asc())
        .select((
            registry_events::id,
            registry_events::resident_id,
            registry_events::kind,
            registry_events::changed_fields,
            registry_events::event_id,
        ))
        .load(conn)?;
    for (id, resident_id, kind, changed, event_id) in pending {
        summary.events += 1;
        let fields: Vec<&str> = changed.split(',').filter(|f| !f.is_empty()).collect();
        let four = ["name", "name_kana", "birth_date", "sex", "address"];
        let action = if kind == "death" {
            Some(Action::Death)
        } else if kind == "move_out" || fields.iter().any(|f| four.contains(f)) {
            Some(Action::FieldsChanged)
        } else {
            None
        };
        conn.transaction(|c| {
            let marked = diesel::update(
                registry_events::table
                    .filter(registry_events::id.eq(id))
                    .filter(registry_events::processed_at.is_null()),
            )
            .set(registry_events::processed_at.eq(now.timestamp()))
            .execute(c)?;
            if marked != 1 {
                return Ok(());
            }
            let Some(action) = action else {
                return Ok(());
            };
            let live: Vec<CardRow> = cards::table
                .inner_join(applications::table.on(applications::id.eq(cards::application_id)))
                .filter(applications::resident_id.eq(resident_id))
                .filter(cards::status.eq_any([ACTIVE, SUSPENDED]))
                .filter(cards::written_at.is_not_null())
                .select(CardRow::as_select())
                .load(c)?;
            for card in live {
                match apply(
                    c,
                    &card,
                    action,
                    By::Registry,
                    None,
                    actor,
                    &format!("event={event_id} kind={kind}"),
                    now,
                ) {
                    Ok(o) => {
                        summary.cards += 1;
                        if let Some((app_id, _)) = o.follow_up {
                            summary.follow_ups += 1;
                            renewal_from_registry(c, key, app_id, resident_id)?;
                        }
                    }
                    // Nothing left to revoke on this card (already revoked): not an error.
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, Error>(())
        })?;
    }
    Ok(summary)
}

/// The renewal the registry opened carries the four fields as the registry now records them
/// (the holder's contact address is kept): the clerk then checks what will go into the new
/// signing certificate.
fn renewal_from_registry(
    conn: &mut DbConn,
    key: &DataKey,
    app_id: i64,
    resident_id: i64,
) -> Result<()> {
    let Some(record) = crate::registry::resident_record(conn, key, resident_id)? else {
        return Ok(());
    };
    let app = ApplicationRow::get(conn, app_id)?
        .ok_or_else(|| Error::Internal("follow-up application vanished".into()))?;
    let old = crate::service::intake::applicant(key, &app)?;
    let applicant = crate::service::intake::Applicant {
        person: record.person,
        email: old.email,
    };
    let sealed = key.seal_json(crate::service::intake::APPLICATIONS_TABLE, &applicant)?;
    diesel::update(applications::table.find(app_id))
        .set((
            applications::pii.eq(sealed),
            applications::municipality_code.eq(record.municipality_code),
        ))
        .execute(conn)?;
    Ok(())
}
