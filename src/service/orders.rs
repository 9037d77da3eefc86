//! Issuance orders (発券指示, SPEC §2.3): the office groups verified applications into a
//! batch for the card operators. Separation of duties: whoever recorded an application may
//! not order its issuance; the attempt is refused and audited. Ordering is one conditional
//! update, so two people ordering the same application cannot both succeed.

use crate::audit;
use crate::db::DbConn;
use crate::db::models::application::{ApplicationRow, state};
use crate::db::schema::{applications, issuance_batches};
use crate::error::{Error, FieldError, Result};
use crate::service::auth::StaffUser;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use std::collections::BTreeSet;

/// Most applications in one order.
pub const MAX_ORDER: usize = 1000;

/// An issuance batch.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = issuance_batches)]
pub struct Batch {
    pub id: i64,
    pub reference: String,
    pub state: String,
    pub ordered_by: i64,
    pub ordered_at: i64,
    pub application_count: i64,
}

/// Order the issuance of `ids` (all verified, none recorded by `user`).
pub fn order(
    conn: &mut DbConn,
    user: &StaffUser,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Batch> {
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    if ids.is_empty() || ids.len() > MAX_ORDER {
        return Err(Error::bad(
            "application_ids",
            format!("between 1 and {MAX_ORDER} applications"),
        ));
    }
    if unique.len() != ids.len() {
        return Err(Error::bad(
            "application_ids",
            "an application is listed twice",
        ));
    }
    let rows: Vec<ApplicationRow> = applications::table
        .filter(applications::id.eq_any(&unique))
        .select(ApplicationRow::as_select())
        .load(conn)?;
    let mut problems = Vec::new();
    for id in &unique {
        let problem = match rows.iter().find(|r| r.id == *id) {
            None => Some("no such application".to_string()),
            Some(r) if r.state != state::VERIFIED => Some(format!("is {}, not verified", r.state)),
            Some(r) if r.kind == crate::db::models::application::ApplicationKind::Renewal && r.card_id.is_some() => Some(
                "renews the holder's own card: it is written at the counter (kofu card renew), not in a batch"
                    .to_string(),
            ),
            _ => None,
        };
        if let Some(message) = problem {
            problems.push(FieldError {
                line: None,
                field: format!("application {id}"),
                message,
            });
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    let own: Vec<i64> = rows
        .iter()
        .filter(|r| r.created_by == user.id)
        .map(|r| r.id)
        .collect();
    if !own.is_empty() {
        let list = own.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        audit::append(
            conn,
            now.timestamp(),
            &user.actor(),
            "access.denied",
            &format!("applications:{list}"),
            "separation of duties: recorded by the same person",
        )?;
        return Err(Error::SeparationOfDuties(format!(
            "you recorded application(s) {list}; another office member must order their issuance"
        )));
    }
    let now_s = now.timestamp();
    let reference = format!("B{}", &crate::service::intake::new_reference()?[2..]);
    conn.transaction(|c| {
        let batch_id: i64 = diesel::insert_into(issuance_batches::table)
            .values((
                issuance_batches::reference.eq(&reference),
                issuance_batches::state.eq(crate::db::models::batch::BatchState::Ordered.as_str()),
                issuance_batches::ordered_by.eq(user.id),
                issuance_batches::ordered_at.eq(now_s),
                issuance_batches::application_count.eq(unique.len() as i64),
            ))
            .returning(issuance_batches::id)
            .get_result(c)?;
        // The conditions are checked again here, atomically.
        let changed = diesel::update(
            applications::table
                .filter(applications::id.eq_any(&unique))
                .filter(applications::state.eq(state::VERIFIED))
                .filter(applications::created_by.ne(user.id)),
        )
        .set((applications::state.eq(state::ORDERED), applications::batch_id.eq(Some(batch_id)), applications::updated_at.eq(now_s)))
        .execute(c)?;
        if changed != unique.len() {
            return Err(Error::Changed("some of these applications changed meanwhile (ordered by someone else?); nothing was ordered".into()));
        }
        let entries: Vec<(&str, String, String)> =
            unique.iter().map(|id| ("application.ordered", format!("application:{id}"), format!("batch={batch_id}"))).collect();
        audit::append_many(c, now_s, &user.actor(), &entries)?;
        audit::append(c, now_s, &user.actor(), "batch.order", &format!("batch:{batch_id}"), &format!("applications={}", unique.len()))?;
        Ok(())
    })?;
    get(conn, &reference)
}

fn get(conn: &mut DbConn, reference: &str) -> Result<Batch> {
    Ok(issuance_batches::table
        .filter(issuance_batches::reference.eq(reference))
        .select(Batch::as_select())
        .first(conn)?)
}

/// An application in a batch: id, reference, state.
pub type BatchItem = (i64, String, String);

/// A batch and its applications.
pub fn show(conn: &mut DbConn, id: i64) -> Result<(Batch, Vec<BatchItem>)> {
    let batch = issuance_batches::table
        .find(id)
        .select(Batch::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("batch {id}")))?;
    let apps = applications::table
        .filter(applications::batch_id.eq(id))
        .order(applications::id)
        .select((
            applications::id,
            applications::reference,
            applications::state,
        ))
        .load(conn)?;
    Ok((batch, apps))
}

/// The newest batches first.
pub fn list(conn: &mut DbConn, limit: i64) -> Result<Vec<Batch>> {
    Ok(issuance_batches::table
        .order(issuance_batches::id.desc())
        .limit(limit)
        .select(Batch::as_select())
        .load(conn)?)
}

/// Each application of a batch with its delivery method (`mail` or `counter`).
pub fn deliveries(conn: &mut DbConn, batch_id: i64) -> Result<Vec<(i64, String)>> {
    use crate::db::schema::applications;
    Ok(applications::table
        .filter(applications::batch_id.eq(batch_id))
        .select((applications::id, applications::delivery))
        .load(conn)?)
}
