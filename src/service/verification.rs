//! Four-field verification (SPEC §2.2): a clerk of the applicant's municipality looks the
//! applicant up in the resident registry, sees both sides with a verdict per field, and
//! approves or rejects with a reason. Clerks act only on their own municipality; an attempt
//! on another is refused and audited. Every registry view is audited.

use crate::audit;
use crate::db::DbConn;
use crate::db::models::application::{ApplicationRow, state};
use crate::error::{Error, Result};
use crate::pii::DataKey;
use crate::registry::normalize::{
    Verdict, compare_address, compare_kana, compare_name, compare_value,
};
use crate::registry::{Lookup, Query, Registry, RegistryStatus, ResidentRecord};
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

/// Compare the applicant with the registry record.
pub fn compare(a: &Applicant, r: &ResidentRecord) -> Verdicts {
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
}

impl Check {
    /// Whether the clerk may approve: one living resident, no field mismatching.
    pub fn approvable(&self) -> bool {
        self.lookup.status == RegistryStatus::Resident
            && self.verdicts.is_some_and(|v| v.all_agree())
    }
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
        return Err(Error::Forbidden(
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
        name: a.name.clone(),
        name_kana: a.name_kana.clone(),
        birth_date: a.birth_date,
        address: a.address.clone(),
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
    let verdicts = lookup.record.as_ref().map(|r| compare(&a, r));
    let verdicts_json = verdicts.map(|v| serde_json::to_string(&v).unwrap_or_default());
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
                "connector={} status={}",
                registry.name(),
                lookup.status.as_str()
            ),
        )?;
        Ok::<_, Error>(())
    })?;
    Ok(Check {
        application: row,
        applicant: a,
        lookup,
        verdicts,
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
    if approve {
        let c = check(conn, key, registry, user, id, now)?;
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
            return Err(Error::Conflict(format!(
                "application {id} is no longer awaiting verification"
            )));
        }
        let action = if approve {
            "application.approve"
        } else {
            "application.reject"
        };
        audit::append(
            c,
            now_s,
            &user.actor(),
            action,
            &format!("application:{id}"),
            "",
        )?;
        Ok(next)
    })
}
