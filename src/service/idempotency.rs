//! `Idempotency-Key` (issue 13): a client that retries a POST after a connection reset gets
//! the first answer again instead of creating a second application or batch. The key is
//! claimed, the work done and its answer stored in one transaction, so a retry that races
//! the first request waits for it (the primary key) and then replays it. A refusal of the
//! caller's (4xx) is an answer too, stored and replayed with what the work recorded (its
//! audit entry); a failure of ours (5xx) stores nothing and may be retried. A key reused for
//! a different request is refused. Keys are per user and operation, forgotten after a day.

use crate::db::DbConn;
use crate::db::schema::idempotency_keys;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// How long a key is remembered (seconds).
pub const KEEP_S: i64 = 24 * 3600;

/// An answer to replay: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
    /// Whether this is a replay of an earlier answer.
    pub replayed: bool,
}

/// The request a key is claimed for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The caller.
    pub user_id: i64,
    /// The operation (`POST /api/v1/batches`).
    pub scope: &'a str,
    /// The `Idempotency-Key` header, if sent.
    pub key: Option<&'a str>,
    /// The request body as parsed (a retry must send the same).
    pub body: &'a [u8],
}

/// Check a key as sent: 1–200 visible ASCII characters.
pub fn check_key(key: &str) -> Result<()> {
    if (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(Error::bad(
            "Idempotency-Key",
            "1–200 visible ASCII characters (a UUID, for example)",
        ))
    }
}

/// Do `work` once per (`user_id`, `scope`, `key`): without a key it just runs; with one, a
/// request already answered gets that answer again (`replayed`), and a different request
/// under the same key is refused.
pub fn once(
    conn: &mut DbConn,
    req: &Request,
    now: DateTime<Utc>,
    status_of: fn(&Error) -> u16,
    work: impl FnOnce(&mut DbConn) -> Result<(u16, serde_json::Value)>,
) -> Result<Answer> {
    let Request {
        user_id,
        scope,
        key,
        body: request,
    } = *req;
    let Some(key) = key else {
        let (status, body) = work(conn)?;
        return Ok(Answer {
            status,
            body,
            replayed: false,
        });
    };
    check_key(key)?;
    let hash = hex::encode(openssl::sha::sha256(request));
    let mut claimed = false;
    let first = conn.transaction(|c| {
        // The claim comes first: a concurrent request with the same key waits here.
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::user_id.eq(user_id),
                idempotency_keys::scope.eq(scope),
                idempotency_keys::idem_key.eq(key),
                idempotency_keys::request_hash.eq(&hash),
                idempotency_keys::status.eq(0),
                idempotency_keys::body.eq(""),
                idempotency_keys::created_at.eq(now.timestamp()),
            ))
            .execute(c)?;
        claimed = true;
        let (status, body, refused) = match work(c) {
            Ok((status, body)) => (status, body, None),
            Err(e) if e.is_client_error() => {
                let body = serde_json::json!({"code": e.code(), "error": e.to_string()});
                (status_of(&e), body, Some(e))
            }
            Err(e) => return Err(e),
        };
        diesel::update(idempotency_keys::table.find((user_id, scope.to_string(), key.to_string())))
            .set((
                idempotency_keys::status.eq(i32::from(status)),
                idempotency_keys::body.eq(body.to_string()),
            ))
            .execute(c)?;
        Ok::<_, Error>((
            Answer {
                status,
                body,
                replayed: false,
            },
            refused,
        ))
    });
    match first {
        Ok((_, Some(refused))) => Err(refused),
        Ok((answer, None)) => Ok(answer),
        // The key was taken: by this same request before, or by one racing it.
        Err(Error::Duplicate(_)) if !claimed => replay(conn, user_id, scope, key, &hash),
        Err(e) => Err(e),
    }
}

fn replay(conn: &mut DbConn, user_id: i64, scope: &str, key: &str, hash: &str) -> Result<Answer> {
    let (stored_hash, status, body): (String, i32, String) = idempotency_keys::table
        .find((user_id, scope.to_string(), key.to_string()))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::status,
            idempotency_keys::body,
        ))
        .first(conn)?;
    if stored_hash != hash {
        return Err(Error::bad(
            "Idempotency-Key",
            "this key was used for a different request; use a new key for a new request",
        ));
    }
    Ok(Answer {
        status: u16::try_from(status)?,
        body: serde_json::from_str(&body)
            .map_err(|e| Error::Internal(format!("stored answer: {e}")))?,
        replayed: true,
    })
}

/// Forget keys older than a day (the duty holder, every few seconds).
pub fn forget_old(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::delete(
        idempotency_keys::table.filter(idempotency_keys::created_at.lt(now.timestamp() - KEEP_S)),
    )
    .execute(conn)?)
}
