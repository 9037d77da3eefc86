//! Four-field verification (SPEC §2.2): a clerk of the applicant's municipality looks the
//! applicant up in the resident registry, sees both sides with a verdict per field, and
//! approves or rejects with a reason. Clerks act only on their own municipality; an attempt
//! on another is refused and audited. Every registry view is audited.

use crate::audit;
use crate::ca::identity::Person;
use crate::db::DbConn;
use crate::db::models::application::{ApplicationRow, state};
use crate::error::{Error, Result};
use crate::pii::DataKey;
use crate::registry::normalize::{
    Verdict, compare_address, compare_kana, compare_name, compare_value,
};
use crate::registry::{Lookup, Query, Registry, RegistryStatus};
use crate::service::auth::StaffUser;
use crate::service::intake::{Applicant, applicant};
use crate::service::users::Role;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// Verdicts per field (values are never stored with them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    /// Name.
    pub name: Verdict,
    /// Kana.
    pub name_kana: Verdict,
    /// Date of birth.
    pub birth_date: Verdict,
    /// Sex.
    pub sex: Verdict,
    /// Address.
    pub address: Verdict,
}

impl Verdicts {
    /// No field mismatches.
    pub fn all_agree(&self) -> bool {
        [
            self.name,
            self.name_kana,
            self.birth_date,
            self.sex,
            self.address,
        ]
        .iter()
        .all(|v| *v != Verdict::Mismatch)
    }
}

/// Compare what the applicant wrote with what the registry records.
pub fn compare(a: &Person, r: &Person) -> Verdicts {
    Verdicts {
        name: compare_name(&a.name, &r.name),
        name_kana: compare_kana(&a.name_kana, &r.name_kana),
        birth_date: compare_value(&a.birth_date, &r.birth_date),
        sex: compare_value(&a.sex, &r.sex),
        address: compare_address(&a.address, &r.address),
    }
}

/// What the clerk sees.
#[derive(Debug, Clone)]
pub struct Check {
    /// The application.
    pub application: ApplicationRow,
    /// What the applicant wrote.
    pub applicant: Applicant,
    /// The registry's answer.
    pub lookup: Lookup,
    /// Per-field verdicts, when one record was found.
    pub verdicts: Option<Verdicts>,
    /// Why a `new` application cannot be approved although the fields agree: the resident
    /// already holds a live card, or has another open application (one live card per person).
    pub conflict: Option<String>,
}

impl Check {
    /// Whether the clerk may approve: one living resident, no field mismatching, and no
    /// other live card or open application of the same resident for a `new` application.
    pub fn approvable(&self) -> bool {
        self.lookup.status == RegistryStatus::Resident
            && self.verdicts.is_some_and(|v| v.all_agree())
            && self.conflict.is_none()
    }
}

/// What else the resident behind `resident_key` has: an open application other than `id`,
/// or a card that is active or suspended. `reissue` and `renewal` are the ways to a second
/// card (the old one is revoked when the new one is written), so only `new` applications
/// are held to this.
pub fn other_card_or_application(
    conn: &mut DbConn,
    resident_key: &[u8],
    id: i64,
) -> Result<Option<String>> {
    use crate::db::schema::{applications as a, cards as c};
    use crate::service::revocation::card_status;
    let open: Option<(String, String)> = a::table
        .filter(a::resident_key.eq(resident_key))
        .filter(a::id.ne(id))
        .filter(a::state.eq_any([
            state::DOCUMENTS_INCOMPLETE,
            state::PENDING_VERIFICATION,
            state::VERIFIED,
            state::ORDERED,
        ]))
        .select((a::reference, a::state))
        .first(conn)
        .optional()?;
    if let Some((reference, st)) = open {
        return Ok(Some(format!(
            "the same resident has another open application {reference} ({st}); one person \
             gets one card: finish or reject that one first"
        )));
    }
    let card: Option<(String, String)> = c::table
        .inner_join(a::table.on(a::id.eq(c::application_id)))
        .filter(a::resident_key.eq(resident_key))
        .filter(c::state.ne(crate::db::models::card::state::SPOILED))
        .filter(c::status.eq_any([card_status::ACTIVE, card_status::SUSPENDED]))
        .select((c::card_number, c::status))
        .first(conn)
        .optional()?;
    Ok(card.map(|(number, status)| {
        format!(
            "the same resident holds card {} ({status}); a second card comes only through a \
             reissue or renewal application, which replaces it",
            crate::card::number::display(&number)
        )
    }))
}

/// Load an application a clerk may act on: it exists and is in the clerk's municipality.
/// A refusal is audited; an application of another municipality answers like a missing one
/// would not, because the clerk is told it is not theirs (403), and the attempt is recorded.
pub fn load_for(
    conn: &mut DbConn,
    user: &StaffUser,
    id: i64,
    now: DateTime<Utc>,
) -> Result<ApplicationRow> {
    let row = ApplicationRow::get(conn, id)?
        .ok_or_else(|| Error::NotFound(format!("application {id}")))?;
    if user.role == Role::Clerk
        && user.municipality_code.as_deref() != Some(row.municipality_code.as_str())
    {
        audit::append(
            conn,
            now.timestamp(),
            &user.actor(),
            "access.denied",
            &format!("application:{id}"),
            "other municipality",
        )?;
        return Err(Error::OtherMunicipality(
            "this application belongs to another municipality".into(),
        ));
    }
    Ok(row)
}

/// Open an application's personal data for a staff member: clerks only within their
/// municipality; the read is audited.
pub fn view(
    conn: &mut DbConn,
    key: &DataKey,
    user: &StaffUser,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(ApplicationRow, Applicant)> {
    let row = load_for(conn, user, id, now)?;
    let a = applicant(key, &row)?;
    audit::append(
        conn,
        now.timestamp(),
        &user.actor(),
        "application.view",
        &format!("application:{id}"),
        "",
    )?;
    Ok((row, a))
}

/// The clerk's queue: applications of the clerk's municipality awaiting the check.
pub fn queue(
    conn: &mut DbConn,
    key: &DataKey,
    user: &StaffUser,
    now: DateTime<Utc>,
) -> Result<Vec<(ApplicationRow, Applicant)>> {
    let muni = user.municipality_code.as_deref().ok_or_else(|| {
        Error::Forbidden("only municipal clerks have a verification queue".into())
    })?;
    let rows = ApplicationRow::list(
        conn,
        Some(state::PENDING_VERIFICATION),
        Some(muni),
        None,
        200,
    )?;
    let out = rows
        .into_iter()
        .map(|r| {
            let a = applicant(key, &r)?;
            Ok((r, a))
        })
        .collect::<Result<Vec<_>>>()?;
    audit::append(
        conn,
        now.timestamp(),
        &user.actor(),
        "application.list",
        &format!("municipality:{muni}"),
        &format!("count={}", out.len()),
    )?;
    Ok(out)
}

/// Look the applicant up and compare. Audited as a registry view; the verdicts (not the
/// values) are kept on the application. An unreachable registry changes nothing.
pub fn check(
    conn: &mut DbConn,
    key: &DataKey,
    registry: &dyn Registry,
    user: &StaffUser,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Check> {
    let row = load_for(conn, user, id, now)?;
    let a = applicant(key, &row)?;
    let q = Query {
        municipality_code: row.municipality_code.clone(),
        name: a.person.name.clone(),
        name_kana: a.person.name_kana.clone(),
        birth_date: a.person.birth_date,
        address: a.person.address.clone(),
    };
    let lookup = match registry.lookup(conn, &q) {
        Ok(l) => l,
        Err(e @ Error::Unavailable(_)) => {
            audit::append(
                conn,
                now.timestamp(),
                &user.actor(),
                "registry.unavailable",
                &format!("application:{id}"),
                registry.name(),
            )?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let verdicts = lookup
        .record
        .as_ref()
        .map(|r| compare(&a.person, &r.person));
    let verdicts_json = verdicts.map(|v| serde_json::to_string(&v).unwrap_or_default());
    let resident_key = lookup
        .record
        .as_ref()
        .filter(|_| lookup.status == RegistryStatus::Resident)
        .map(|r| crate::registry::resident_key(key, &r.municipality_code, &r.resident_code));
    let conflict = match (&resident_key, row.kind.as_str()) {
        (Some(k), k2) if k2 == crate::db::models::application::ApplicationKind::New => {
            other_card_or_application(conn, k, id)?
        }
        _ => None,
    };
    let now_s = now.timestamp();
    conn.transaction(|c| {
        use crate::db::schema::applications as t;
        diesel::update(
            t::table
                .filter(t::id.eq(id))
                .filter(t::state.eq(state::PENDING_VERIFICATION)),
        )
        .set((
            t::registry_status.eq(Some(lookup.status.as_str())),
            t::verdicts.eq(verdicts_json.as_deref()),
            t::resident_id.eq(lookup.resident_id),
            t::resident_key.eq(resident_key.as_deref()),
            t::updated_at.eq(now_s),
        ))
        .execute(c)?;
        audit::append(
            c,
            now_s,
            &user.actor(),
            "registry.view",
            &format!("application:{id}"),
            &format!(
                "connector={} status={}{}",
                registry.name(),
                lookup.status.as_str(),
                if conflict.is_some() {
                    " other_card_or_application"
                } else {
                    ""
                }
            ),
        )?;
        Ok::<_, Error>(())
    })?;
    Ok(Check {
        application: row,
        applicant: a,
        lookup,
        verdicts,
        conflict,
    })
}

/// Approve or reject. Approval looks the applicant up again (the registry may have changed)
/// and needs one living resident with no mismatching field; a rejection needs a reason.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    conn: &mut DbConn,
    key: &DataKey,
    registry: &dyn Registry,
    user: &StaffUser,
    id: i64,
    approve: bool,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<&'static str> {
    let reason = reason.trim();
    if reason.chars().count() > 500 {
        return Err(Error::bad("reason", "理由は500文字以内にしてください"));
    }
    if !approve && reason.is_empty() {
        return Err(Error::bad("reason", "却下の理由を入力してください"));
    }
    let mut held_to_one_card = None;
    if approve {
        let c = check(conn, key, registry, user, id, now)?;
        if c.application.kind == crate::db::models::application::ApplicationKind::New {
            held_to_one_card = c.lookup.record.as_ref().map(|r| {
                crate::registry::resident_key(key, &r.municipality_code, &r.resident_code)
            });
        }
        if let Some(why) = &c.conflict {
            return Err(Error::Conflict(format!("cannot approve: {why}")));
        }
        if !c.approvable() {
            return Err(Error::Conflict(format!(
                "cannot approve: registry status {} {}",
                c.lookup.status.as_str(),
                if c.verdicts.is_some_and(|v| !v.all_agree()) {
                    "with mismatching fields"
                } else {
                    ""
                }
            )));
        }
    } else {
        load_for(conn, user, id, now)?;
    }
    let next = if approve {
        state::VERIFIED
    } else {
        state::REJECTED
    };
    let now_s = now.timestamp();
    conn.transaction(|c| {
        use crate::db::schema::applications as t;
        let action = if approve {
            "application.approve"
        } else {
            "application.reject"
        };
        // The entry first: appending takes the chain's head row, which orders two clerks
        // approving two applications of one resident at once; the second then sees the first.
        audit::append(
            c,
            now_s,
            &user.actor(),
            action,
            &format!("application:{id}"),
            "",
        )?;
        if let Some(k) = &held_to_one_card
            && let Some(why) = other_card_or_application(c, k, id)?
        {
            return Err(Error::Conflict(format!("cannot approve: {why}")));
        }
        let changed = diesel::update(
            t::table
                .filter(t::id.eq(id))
                .filter(t::state.eq(state::PENDING_VERIFICATION)),
        )
        .set((
            t::state.eq(next),
            t::decided_by.eq(Some(user.id)),
            t::decided_at.eq(Some(now_s)),
            t::decision_reason.eq(Some(reason)),
            t::updated_at.eq(now_s),
        ))
        .execute(c)?;
        if changed != 1 {
            return Err(Error::Changed(format!(
                "application {id} is no longer awaiting verification"
            )));
        }
        Ok(next)
    })
}
