//! Serial-number linkage for verifiers (SPEC §5): a verifier registers the signing
//! certificates its users presented; for those only it may ask the linked authentication
//! certificate (証明書紐付け), the newest signing certificate after renewals (新旧紐付け) and
//! their statuses, and read the changes since a cursor.
//!
//! A serial the verifier did not register is answered exactly like a serial that does not
//! exist. Nothing about the holder is ever returned: serials, statuses, reasons and times.
//!
//! The change feed is one sequence (`linkage_seq`): a registration takes the next value (the
//! verifier's own "linked" entry), and every status change or renewal of a card's
//! certificates is a `linkage_events` row; a verifier sees the events of cards it has
//! registered a serial of. The counter's row lock orders writers, so a reader that reads the
//! counter first and then everything up to it misses nothing and never sees a change twice.

use crate::audit;
use crate::ca::crl::Reason;
use crate::ca::profile::{CaName, Profile};
use crate::ca::serial::Serial;
use crate::db::DbConn;
use crate::db::schema::{certificate_links, certificates, verifier_serials};
use crate::error::{Error, FieldError, Result};
use crate::service::status::{
    CertStatus, current_linkage_seq as current_seq, take_linkage_seq as take_seq,
};
use crate::service::verifier_identity::VerifierIdentity;
use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

mod feed;
pub use feed::{Change, Changes, changes, parse_cursor, to_csv, to_json_lines};

/// Serials per register or query request.
pub const MAX_SERIALS: usize = 10_000;
/// Changes per download, at most (and by default).
pub const MAX_CHANGES: i64 = 10_000;
/// Serials bound per SQL statement (well under SQLite's parameter limit).
const CHUNK: usize = 500;
/// Serials of unregistered asks kept in the audit entry.
const AUDIT_SERIALS: usize = 20;

/// Check and normalise a list of serials (hex, optional colons; stored as upper-case hex).
/// Every bad entry is named by its index; an over-long list is refused before any is read.
pub fn parse_serials(list: &[String]) -> Result<Vec<String>> {
    if list.is_empty() {
        return Err(Error::bad("serials", "give at least one serial"));
    }
    if list.len() > MAX_SERIALS {
        return Err(Error::bad(
            "serials",
            format!(
                "at most {MAX_SERIALS} serials per request; this one has {} — split it",
                list.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    let mut errors = Vec::new();
    for (i, s) in list.iter().enumerate() {
        match Serial::from_hex(s.trim()) {
            Ok(v) => out.push(v.to_hex()),
            Err(e) => errors.push(FieldError {
                line: None,
                field: format!("serials[{i}]"),
                message: match e {
                    Error::BadInput { message, .. } => message,
                    other => other.to_string(),
                },
            }),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(out)
}

fn require_signing(v: &VerifierIdentity) -> Result<()> {
    if v.may_use(CaName::Signing) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "this verifier may not use signing-certificate data; ask the consortium office".into(),
        ))
    }
}

/// What a registration did.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    /// Serials asked.
    pub asked: usize,
    /// Newly registered.
    pub registered: usize,
    /// Registered before (nothing changed for them).
    pub already_registered: usize,
    /// Serials that are not signing certificates written to a card (answered alike whether
    /// they do not exist or are something else).
    pub unknown: Vec<String>,
}

/// Register signing serials for a verifier (idempotent: a serial registered before keeps
/// its first registration and its place in the change feed).
pub fn register(
    conn: &mut DbConn,
    v: &VerifierIdentity,
    serials: &[String],
    now: DateTime<Utc>,
) -> Result<Registered> {
    require_signing(v)?;
    let now_s = now.timestamp();
    let wanted: Vec<&String> = {
        let mut seen = HashSet::new();
        serials.iter().filter(|s| seen.insert(*s)).collect()
    };
    conn.transaction(|c| {
        let mut found: Vec<(i64, String, i64)> = Vec::with_capacity(wanted.len());
        for part in wanted.chunks(CHUNK) {
            let rows: Vec<(i64, String, Option<i64>)> = certificates::table
                .filter(certificates::serial.eq_any(part.iter().copied()))
                .filter(certificates::issuer.eq(CaName::Signing.as_str()))
                .filter(certificates::profile.eq(Profile::Signing.as_str()))
                .filter(certificates::state.eq(crate::db::models::ca::CertState::Issued.as_str()))
                .filter(certificates::card_id.is_not_null())
                .select((
                    certificates::id,
                    certificates::serial,
                    certificates::card_id,
                ))
                .load(c)?;
            found.extend(
                rows.into_iter()
                    .filter_map(|(id, s, card)| Some((id, s, card?))),
            );
        }
        let known: HashSet<&str> = found.iter().map(|(_, s, _)| s.as_str()).collect();
        let unknown: Vec<String> = wanted
            .iter()
            .filter(|s| !known.contains(s.as_str()))
            .map(|s| (*s).clone())
            .collect();
        let mut already = HashSet::new();
        for part in found.chunks(CHUNK) {
            let ids: Vec<i64> = part.iter().map(|r| r.0).collect();
            let rows: Vec<i64> = verifier_serials::table
                .filter(verifier_serials::verifier_id.eq(v.id))
                .filter(verifier_serials::certificate_id.eq_any(ids))
                .select(verifier_serials::certificate_id)
                .load(c)?;
            already.extend(rows);
        }
        let fresh: Vec<&(i64, String, i64)> =
            found.iter().filter(|r| !already.contains(&r.0)).collect();
        if !fresh.is_empty() {
            let first = take_seq(c, i64::try_from(fresh.len())?)?;
            let rows: Vec<_> = fresh
                .iter()
                .zip(first..)
                .map(|((id, _, card), seq)| {
                    (
                        verifier_serials::verifier_id.eq(v.id),
                        verifier_serials::certificate_id.eq(*id),
                        verifier_serials::card_id.eq(*card),
                        verifier_serials::seq.eq(seq),
                        verifier_serials::created_at.eq(now_s),
                    )
                })
                .collect();
            for part in rows.chunks(CHUNK) {
                match c {
                    DbConn::Sqlite(lite) => diesel::insert_into(verifier_serials::table)
                        .values(part)
                        .execute(lite)?,
                    DbConn::Pg(pg) => diesel::insert_into(verifier_serials::table)
                        .values(part)
                        .execute(pg)?,
                };
            }
        }
        audit::append(
            c,
            now_s,
            &v.actor(),
            "linkage.register",
            &format!("verifier:{}", v.id),
            &format!(
                "asked={} registered={} already={} unknown={}",
                serials.len(),
                fresh.len(),
                already.len(),
                unknown.len()
            ),
        )?;
        Ok(Registered {
            asked: serials.len(),
            registered: fresh.len(),
            already_registered: already.len(),
            unknown,
        })
    })
}

/// A certificate's status as a verifier sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Serial.
    pub serial: String,
    /// `good`, `held` (certificateHold) or `revoked`.
    pub status: CertStatus,
    /// RFC 5280 reason name when held or revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// When it was revoked or held (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// The answer for one serial.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The serial asked (normalised).
    pub serial: String,
    /// Whether the serial is one this verifier registered. When false nothing else is said:
    /// the same answer as for a serial that does not exist.
    pub found: bool,
    /// Its status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Status>,
    /// The authentication certificate on the same card (if the verifier may use the
    /// authentication CA's data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Status>,
    /// The newest signing certificate after renewals (itself when never renewed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_signing: Option<Status>,
    /// The renewal chain after this serial, oldest first (empty when never renewed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewals: Option<Vec<String>>,
}

impl Answer {
    fn unknown(serial: String) -> Self {
        Answer {
            serial,
            found: false,
            certificate: None,
            authentication: None,
            newest_signing: None,
            renewals: None,
        }
    }
}

type StatusRow = (i64, String, Option<i64>, Option<i32>);

fn status_of(row: &StatusRow) -> Status {
    let (_, serial, revoked_at, reason) = row;
    Status {
        serial: serial.clone(),
        status: CertStatus::of(*reason),
        reason: reason
            .and_then(|r| Reason::from_code(r).ok())
            .map(Reason::as_str),
        revoked_at: revoked_at.and_then(rfc3339),
    }
}

fn rfc3339(t: i64) -> Option<String> {
    Utc.timestamp_opt(t, 0)
        .single()
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn statuses_by_id(conn: &mut DbConn, ids: &[i64]) -> Result<HashMap<i64, StatusRow>> {
    let mut out = HashMap::with_capacity(ids.len());
    for part in ids.chunks(CHUNK) {
        let rows: Vec<StatusRow> = certificates::table
            .filter(certificates::id.eq_any(part))
            .select((
                certificates::id,
                certificates::serial,
                certificates::revoked_at,
                certificates::revocation_reason,
            ))
            .load(conn)?;
        out.extend(rows.into_iter().map(|r| (r.0, r)));
    }
    Ok(out)
}

/// The authentication certificate of each card (issued; the newest if there are several).
fn authentication_of(conn: &mut DbConn, cards: &[i64]) -> Result<HashMap<i64, i64>> {
    let mut out = HashMap::with_capacity(cards.len());
    for part in cards.chunks(CHUNK) {
        let rows: Vec<(i64, Option<i64>)> = certificates::table
            .filter(certificates::card_id.eq_any(part))
            .filter(certificates::profile.eq(Profile::Authentication.as_str()))
            .filter(certificates::state.eq(crate::db::models::ca::CertState::Issued.as_str()))
            .select((certificates::id, certificates::card_id))
            .order(certificates::id.asc())
            .load(conn)?;
        out.extend(rows.into_iter().filter_map(|(id, card)| Some((card?, id))));
    }
    Ok(out)
}

/// Renewal chains: for each start id, the ids after it, oldest first.
fn chains(conn: &mut DbConn, starts: &[i64]) -> Result<HashMap<i64, Vec<i64>>> {
    let mut next_of: HashMap<i64, i64> = HashMap::new();
    let mut frontier: Vec<i64> = starts.to_vec();
    // A chain is a few renewals long (one per change of the four fields); the bound only
    // guards against a cycle that the unique link columns already rule out.
    for _ in 0..64 {
        if frontier.is_empty() {
            break;
        }
        let mut found = Vec::new();
        for part in frontier.chunks(CHUNK) {
            let rows: Vec<(i64, i64)> = certificate_links::table
                .filter(certificate_links::old_certificate_id.eq_any(part))
                .select((
                    certificate_links::old_certificate_id,
                    certificate_links::new_certificate_id,
                ))
                .load(conn)?;
            found.extend(rows);
        }
        frontier = Vec::with_capacity(found.len());
        for (old, new) in found {
            if next_of.insert(old, new).is_none() {
                frontier.push(new);
            }
        }
    }
    Ok(starts
        .iter()
        .map(|s| {
            let mut chain = Vec::new();
            let mut at = *s;
            while let Some(n) = next_of.get(&at) {
                chain.push(*n);
                at = *n;
                if chain.len() > 64 {
                    break;
                }
            }
            (*s, chain)
        })
        .collect())
}

/// Audit entries a read produced (written by the caller on the write connection, after the
/// read connection is given back).
pub type AuditItems = Vec<(&'static str, String, String)>;

/// Write audit entries for a verifier.
pub fn audit(
    write: &mut DbConn,
    v: &VerifierIdentity,
    items: &AuditItems,
    now: DateTime<Utc>,
) -> Result<()> {
    let items: Vec<(&str, String, String)> = items
        .iter()
        .map(|(a, t, d)| (*a, t.clone(), d.clone()))
        .collect();
    audit::append_many(write, now.timestamp(), &v.actor(), &items)?;
    Ok(())
}

/// Answer a batch of (normalised) serials for a verifier, in the order asked, with the
/// audit entries to write: the request, and the serials it did not register (an attempt
/// the auditor sees; the verifier learns nothing).
pub fn query(
    read: &mut DbConn,
    v: &VerifierIdentity,
    serials: &[String],
) -> Result<(Vec<Answer>, AuditItems)> {
    require_signing(v)?;
    let auth = v.may_use(CaName::Authentication);
    // Registered serials of this verifier among those asked: (id, serial, card).
    let mut mine: HashMap<String, (i64, i64)> = HashMap::with_capacity(serials.len());
    let answers = read.transaction(|c| {
        // Two plain lookups (by serial, then by the registration's key) rather than a join,
        // so that the plan never depends on table statistics.
        for part in serials.chunks(CHUNK) {
            let certs: Vec<(i64, String)> = certificates::table
                .filter(certificates::serial.eq_any(part))
                .select((certificates::id, certificates::serial))
                .load(c)?;
            let ids: Vec<i64> = certs.iter().map(|(id, _)| *id).collect();
            let registered: HashMap<i64, i64> = verifier_serials::table
                .filter(verifier_serials::verifier_id.eq(v.id))
                .filter(verifier_serials::certificate_id.eq_any(&ids))
                .select((verifier_serials::certificate_id, verifier_serials::card_id))
                .load::<(i64, i64)>(c)?
                .into_iter()
                .collect();
            mine.extend(
                certs
                    .into_iter()
                    .filter_map(|(id, s)| registered.get(&id).map(|card| (s, (id, *card)))),
            );
        }
        let ids: Vec<i64> = mine.values().map(|(id, _)| *id).collect();
        let chain = chains(c, &ids)?;
        let mut wanted: Vec<i64> = ids.clone();
        wanted.extend(chain.values().flatten().copied());
        // Authentication certificates of the cards (issued ones; the newest if several).
        let auth_of = if auth {
            let cards: Vec<i64> = mine.values().map(|(_, card)| *card).collect();
            authentication_of(c, &cards)?
        } else {
            HashMap::new()
        };
        wanted.extend(auth_of.values().copied());
        let status = statuses_by_id(c, &wanted)?;
        let get = |id: &i64| status.get(id).map(status_of);
        Ok::<_, Error>(
            serials
                .iter()
                .map(|s| match mine.get(s) {
                    None => Answer::unknown(s.clone()),
                    Some((id, card)) => {
                        let after = chain.get(id).cloned().unwrap_or_default();
                        let newest = after.last().unwrap_or(id);
                        let renewals = after
                            .iter()
                            .filter_map(|i| status.get(i).map(|r| r.1.clone()))
                            .collect();
                        Answer {
                            serial: s.clone(),
                            found: true,
                            certificate: get(id),
                            authentication: auth_of.get(card).and_then(get),
                            newest_signing: get(newest),
                            renewals: Some(renewals),
                        }
                    }
                })
                .collect::<Vec<_>>(),
        )
    })?;
    let unanswered: Vec<&String> = answers
        .iter()
        .filter(|a| !a.found)
        .map(|a| &a.serial)
        .collect();
    let mut entries = vec![(
        "linkage.query",
        format!("verifier:{}", v.id),
        format!(
            "asked={} answered={}",
            serials.len(),
            serials.len() - unanswered.len()
        ),
    )];
    if !unanswered.is_empty() {
        // Which of them exist (registered by another verifier, or never registered): the
        // verifier is told nothing, the auditor is.
        let mut existing = 0usize;
        for part in unanswered.chunks(CHUNK) {
            let n: i64 = certificates::table
                .filter(certificates::serial.eq_any(part.iter().copied()))
                .count()
                .get_result(read)?;
            existing += usize::try_from(n)?;
        }
        let shown: Vec<&str> = unanswered
            .iter()
            .take(AUDIT_SERIALS)
            .map(|s| s.as_str())
            .collect();
        entries.push((
            "linkage.unregistered",
            format!("verifier:{}", v.id),
            format!(
                "count={} existing={existing} serials={}{}",
                unanswered.len(),
                shown.join(","),
                if unanswered.len() > AUDIT_SERIALS {
                    ",…"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok((answers, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_lists() {
        let ok = parse_serials(&["01:ab".into(), " 7F ".into()]).unwrap();
        assert_eq!(ok, vec!["01AB", "7F"]);
        match parse_serials(&["zz".into(), "01".into(), "80".into()]) {
            Err(Error::Invalid(list)) => {
                let fields: Vec<&str> = list.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, vec!["serials[0]", "serials[2]"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_serials(&[]).is_err());
        let many = vec!["01".to_string(); MAX_SERIALS + 1];
        match parse_serials(&many) {
            Err(Error::BadInput { field, message }) => {
                assert_eq!(field, "serials");
                assert!(message.contains("10000"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
