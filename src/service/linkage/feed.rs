//! The change feed of serial linkage: what happened on the cards whose serials a verifier
//! registered, after a cursor, as JSON lines or CSV.

use super::{
    AuditItems, CHUNK, MAX_CHANGES, authentication_of, current_seq, require_signing, rfc3339,
};
use crate::ca::crl::Reason;
use crate::ca::profile::CaName;
use crate::db::DbConn;
use crate::db::models::verifier::LinkageKind;
use crate::db::schema::{certificates, linkage_events, verifier_serials};
use crate::error::{Error, Result};
use crate::service::verifier_identity::VerifierIdentity;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One entry of the change feed.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Resume after this entry by passing it as `cursor`.
    pub cursor: String,
    /// `linked` (a registration: the signing serial and its authentication serial),
    /// `renewed` (serial → related_serial), `revoked` (reason; certificateHold is a
    /// suspension) or `hold_lifted`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The certificate concerned.
    pub serial: String,
    /// `signing` or `authentication`.
    pub certificate: &'static str,
    /// linked: the authentication serial; renewed: the new signing serial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_serial: Option<String>,
    /// RFC 5280 reason (revoked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// When (RFC 3339).
    pub at: String,
}

/// A page of the change feed.
#[derive(Debug, Clone)]
pub struct Changes {
    /// The entries, in order.
    pub entries: Vec<Change>,
    /// Where the next download starts (after the last entry, or after everything this one
    /// looked at when there were fewer than asked).
    pub next_cursor: String,
}

/// Parse a cursor given back by a verifier.
pub fn parse_cursor(s: Option<&str>) -> Result<i64> {
    match s.map(str::trim) {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                Error::bad(
                    "cursor",
                    format!("{s:?} is not a cursor kofu gave out; start without one or use next_cursor of the last download"),
                )
            }),
    }
}

/// The changes after `cursor` for a verifier, at most `limit`.
pub fn changes(
    read: &mut DbConn,
    v: &VerifierIdentity,
    cursor: i64,
    limit: i64,
) -> Result<(Changes, AuditItems)> {
    require_signing(v)?;
    if !(1..=MAX_CHANGES).contains(&limit) {
        return Err(Error::bad("limit", format!("between 1 and {MAX_CHANGES}")));
    }
    let auth = v.may_use(CaName::Authentication);
    let page = read.transaction(|c| {
        // The counter first: everything up to it is committed (see the module comment).
        let upto = current_seq(c)?;
        if cursor > upto {
            return Err(Error::bad(
                "cursor",
                format!("{cursor} is ahead of the feed; use next_cursor of the last download"),
            ));
        }
        let regs: Vec<(i64, i64, i64, i64)> = verifier_serials::table
            .filter(verifier_serials::verifier_id.eq(v.id))
            .filter(verifier_serials::seq.gt(cursor))
            .filter(verifier_serials::seq.le(upto))
            .select((
                verifier_serials::seq,
                verifier_serials::certificate_id,
                verifier_serials::card_id,
                verifier_serials::created_at,
            ))
            .order(verifier_serials::seq.asc())
            .limit(limit)
            .load(c)?;
        type EventRow = (i64, String, i64, i64, Option<i64>, Option<i32>, i64);
        let events: Vec<EventRow> = linkage_events::table
            .filter(linkage_events::seq.gt(cursor))
            .filter(linkage_events::seq.le(upto))
            .filter(diesel::dsl::exists(
                verifier_serials::table
                    .filter(verifier_serials::verifier_id.eq(v.id))
                    .filter(verifier_serials::card_id.eq(linkage_events::card_id)),
            ))
            .select((
                linkage_events::seq,
                linkage_events::kind,
                linkage_events::card_id,
                linkage_events::certificate_id,
                linkage_events::new_certificate_id,
                linkage_events::reason,
                linkage_events::at,
            ))
            .order(linkage_events::seq.asc())
            .limit(limit)
            .load(c)?;
        // Merge the two by seq and keep the first `limit`.
        enum Item {
            Reg((i64, i64, i64, i64)),
            Ev(EventRow),
        }
        let mut items: Vec<(i64, Item)> = regs
            .into_iter()
            .map(|r| (r.0, Item::Reg(r)))
            .chain(events.into_iter().map(|e| (e.0, Item::Ev(e))))
            .collect();
        items.sort_by_key(|(seq, _)| *seq);
        let full = items.len() >= usize::try_from(limit)?;
        items.truncate(usize::try_from(limit)?);
        // Serials and profiles of every certificate mentioned.
        let mut ids: HashSet<i64> = HashSet::new();
        let mut cards: Vec<i64> = Vec::new();
        for (_, it) in &items {
            match it {
                Item::Reg((_, cert, card, _)) => {
                    ids.insert(*cert);
                    cards.push(*card);
                }
                Item::Ev(e) => {
                    ids.insert(e.3);
                    if let Some(n) = e.4 {
                        ids.insert(n);
                    }
                }
            }
        }
        let auth_of = if auth {
            authentication_of(c, &cards)?
        } else {
            HashMap::new()
        };
        ids.extend(auth_of.values().copied());
        let ids: Vec<i64> = ids.into_iter().collect();
        let mut info: HashMap<i64, (String, String)> = HashMap::new();
        for part in ids.chunks(CHUNK) {
            let rows: Vec<(i64, String, String)> = certificates::table
                .filter(certificates::id.eq_any(part))
                .select((
                    certificates::id,
                    certificates::serial,
                    certificates::profile,
                ))
                .load(c)?;
            info.extend(rows.into_iter().map(|(id, s, p)| (id, (s, p))));
        }
        let serial = |id: i64| info.get(&id).map(|x| x.0.clone()).unwrap_or_default();
        let which = |id: i64| match info.get(&id).map(|x| x.1.as_str()) {
            Some("authentication") => "authentication",
            _ => "signing",
        };
        let mut entries = Vec::with_capacity(items.len());
        let mut last = cursor;
        for (seq, it) in items {
            last = seq;
            let change = match it {
                Item::Reg((_, cert, card, at)) => Change {
                    cursor: seq.to_string(),
                    kind: "linked",
                    serial: serial(cert),
                    certificate: "signing",
                    related_serial: auth_of.get(&card).map(|a| serial(*a)),
                    reason: None,
                    at: rfc3339(at).unwrap_or_default(),
                },
                Item::Ev((_, kind, _, cert, new, reason, at)) => {
                    let which = which(cert);
                    if which == "authentication" && !auth {
                        continue;
                    }
                    let kind = match LinkageKind::parse(&kind) {
                        Some(k) => k.as_str(),
                        None => LinkageKind::Revoked.as_str(),
                    };
                    Change {
                        cursor: seq.to_string(),
                        kind,
                        serial: serial(cert),
                        certificate: which,
                        related_serial: new.map(serial),
                        reason: reason
                            .and_then(|r| Reason::from_code(r).ok())
                            .map(Reason::as_str),
                        at: rfc3339(at).unwrap_or_default(),
                    }
                }
            };
            entries.push(change);
        }
        let next = if full { last } else { upto };
        Ok(Changes {
            entries,
            next_cursor: next.to_string(),
        })
    })?;
    let items = vec![(
        "linkage.changes",
        format!("verifier:{}", v.id),
        format!(
            "cursor={cursor} entries={} next={}",
            page.entries.len(),
            page.next_cursor
        ),
    )];
    Ok((page, items))
}

/// The feed as CSV (header line first).
pub fn to_csv(changes: &[Change]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "cursor",
        "type",
        "serial",
        "certificate",
        "related_serial",
        "reason",
        "at",
    ])
    .map_err(|e| Error::Internal(e.to_string()))?;
    for ch in changes {
        w.write_record([
            ch.cursor.as_str(),
            ch.kind,
            ch.serial.as_str(),
            ch.certificate,
            ch.related_serial.as_deref().unwrap_or(""),
            ch.reason.unwrap_or(""),
            ch.at.as_str(),
        ])
        .map_err(|e| Error::Internal(e.to_string()))?;
    }
    w.into_inner().map_err(|e| Error::Internal(e.to_string()))
}

/// The feed as JSON lines.
pub fn to_json_lines(changes: &[Change]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(changes.len() * 160);
    for ch in changes {
        serde_json::to_writer(&mut out, ch).map_err(|e| Error::Internal(e.to_string()))?;
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(None).unwrap(), 0);
        assert_eq!(parse_cursor(Some("42")).unwrap(), 42);
        assert!(parse_cursor(Some("-1")).is_err());
        assert!(parse_cursor(Some("abc")).is_err());
    }
}
