//! The append-only, hash-chained audit log.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and the entry's own fields in
//! a canonical JSON array. Appending first bumps the single `audit_head` row (a write, so
//! concurrent appenders queue on it in both backends), then inserts the entry. [`verify`]
//! walks the chain from the start and names the first entry that does not fit: an altered
//! row breaks its hash, a deleted or reordered row breaks the sequence or the link, and a
//! deleted tail no longer matches the head.

use crate::db::DbConn;
use crate::db::schema::{audit_head, audit_log};
use crate::error::{Error, Result};
use diesel::prelude::*;
use openssl::sha::sha256;
use serde::Serialize;

/// Hash that the first entry links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something: a staff user, a verifier, or the system itself.
#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    /// Username, verifier name, or `system`.
    pub name: String,
    /// Role (`office`, `clerk`, …, `verifier`, `system`, `cli`).
    pub role: String,
}

impl Actor {
    /// The service acting on its own (start-up, schedules).
    pub fn system() -> Self {
        Actor {
            name: "system".into(),
            role: "system".into(),
        }
    }

    /// An operating-system user at the command line.
    pub fn cli() -> Self {
        let name = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        Actor {
            name,
            role: "cli".into(),
        }
    }

    /// A named actor with a role.
    pub fn new(name: impl Into<String>, role: impl Into<String>) -> Self {
        Actor {
            name: name.into(),
            role: role.into(),
        }
    }
}

/// One stored entry.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct Entry {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

fn entry_hash(e: &Entry) -> String {
    // A JSON array of the fields is unambiguous (strings are quoted and escaped).
    let canonical = serde_json::json!([
        e.prev_hash,
        e.seq,
        e.at,
        e.actor,
        e.role,
        e.action,
        e.target,
        e.detail
    ]);
    hex::encode(sha256(canonical.to_string().as_bytes()))
}

/// Append an entry inside the caller's transaction (or on its own). `detail` must hold no
/// personal data beyond what the action needs; targets are ids, not names.
pub fn append(
    conn: &mut DbConn,
    now: i64,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<Entry> {
    append_many(
        conn,
        now,
        actor,
        &[(action, target.to_string(), detail.to_string())],
    )?
    .pop()
    .ok_or_else(|| Error::Internal("audit append returned nothing".into()))
}

/// Rows per multi-row insert (well under SQLite's bound-parameter limit).
const INSERT_CHUNK: usize = 200;

/// Append several entries by one actor at one time, chained in order: the head is bumped
/// once, the hashes are chained in memory, and the rows go in with multi-row inserts. Used
/// by batch work so that each item keeps its own entry without a round trip each.
pub fn append_many(
    conn: &mut DbConn,
    now: i64,
    actor: &Actor,
    items: &[(&str, String, String)],
) -> Result<Vec<Entry>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let n = items.len() as i64;
    conn.transaction(|c| {
        // Write first: the bump takes the write lock (SQLite) or the row lock (PostgreSQL).
        let (last_seq, mut prev_hash): (i64, String) = diesel::update(audit_head::table.find(1))
            .set(audit_head::seq.eq(audit_head::seq + n))
            .returning((audit_head::seq, audit_head::hash))
            .get_result(c)?;
        let first = last_seq - n + 1;
        let mut entries = Vec::with_capacity(items.len());
        for (k, (action, target, detail)) in items.iter().enumerate() {
            let mut e = Entry {
                seq: first + k as i64,
                at: now,
                actor: actor.name.clone(),
                role: actor.role.clone(),
                action: (*action).into(),
                target: target.clone(),
                detail: detail.clone(),
                prev_hash,
                hash: String::new(),
            };
            e.hash = entry_hash(&e);
            prev_hash = e.hash.clone();
            entries.push(e);
        }
        diesel::update(audit_head::table.find(1))
            .set(audit_head::hash.eq(&prev_hash))
            .execute(c)?;
        for chunk in entries.chunks(INSERT_CHUNK) {
            // Multi-row inserts do not build on the multi-backend connection: use the concrete one.
            let insert = diesel::insert_into(audit_log::table).values(chunk);
            match c {
                DbConn::Pg(pg) => insert.execute(pg)?,
                DbConn::Sqlite(lite) => insert.execute(lite)?,
            };
        }
        Ok::<_, diesel::result::Error>(entries)
    })
    .map_err(Error::from)
}

/// Result of a successful verification.
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    /// Number of entries checked.
    pub entries: i64,
}

/// Verify the whole chain. Reads in pages so a long log does not need to fit in memory.
pub fn verify(conn: &mut DbConn) -> Result<Verified> {
    const PAGE: i64 = 10_000;
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_string();
    loop {
        let page: Vec<Entry> = audit_log::table
            .filter(audit_log::seq.ge(expected_seq))
            .order(audit_log::seq.asc())
            .limit(PAGE)
            .select(Entry::as_select())
            .load(conn)?;
        let n = page.len();
        for e in page {
            if e.seq != expected_seq {
                return Err(Error::AuditBroken {
                    seq: expected_seq,
                    message: format!(
                        "entry {expected_seq} is missing (next present is {})",
                        e.seq
                    ),
                });
            }
            if e.prev_hash != prev {
                return Err(Error::AuditBroken {
                    seq: e.seq,
                    message: "does not link to the previous entry (deleted or reordered)".into(),
                });
            }
            if entry_hash(&e) != e.hash {
                return Err(Error::AuditBroken {
                    seq: e.seq,
                    message: "contents do not match the entry's hash (altered)".into(),
                });
            }
            prev = e.hash;
            expected_seq += 1;
        }
        if (n as i64) < PAGE {
            break;
        }
    }
    let (head_seq, head_hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(conn)?;
    let last = expected_seq - 1;
    if head_seq != last || head_hash != prev {
        return Err(Error::AuditBroken {
            seq: last + 1,
            message: format!(
                "the log ends at entry {last} but the head records entry {head_seq} (tail deleted)"
            ),
        });
    }
    Ok(Verified { entries: last })
}

/// Entries in a range, newest first (for the auditor's screen and export).
pub fn list(conn: &mut DbConn, before_seq: Option<i64>, limit: i64) -> Result<Vec<Entry>> {
    let mut q = audit_log::table.into_boxed();
    if let Some(b) = before_seq {
        q = q.filter(audit_log::seq.lt(b));
    }
    Ok(q.order(audit_log::seq.desc())
        .limit(limit)
        .select(Entry::as_select())
        .load(conn)?)
}
