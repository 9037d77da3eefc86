//! Verifiers' traffic kept in memory: rate limits and counted requests.

use super::VerifierIdentity;
use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Requests and refusals of verifiers kept in memory: the rate limit's token buckets, and
/// OCSP answers and rate-limited requests counted per verifier and written to the audit
/// log in one entry per verifier by the worker (an entry per OCSP answer would make the
/// hash chain the responder's bottleneck).
#[derive(Debug, Default)]
pub struct Traffic {
    buckets: std::sync::Mutex<HashMap<i64, (f64, std::time::Instant)>>,
    counts: std::sync::Mutex<HashMap<i64, Counted>>,
}

#[derive(Debug, Default, Clone)]
struct Counted {
    name: String,
    ocsp: u64,
    limited: u64,
}

impl Traffic {
    /// Take one request from the verifier's bucket (`rate_limit` per minute, as a burst of
    /// that size refilled evenly). Refused: the seconds until one is free.
    pub fn admit(&self, v: &VerifierIdentity, at: std::time::Instant) -> Result<()> {
        let cap = v.rate_limit as f64;
        let per_sec = cap / 60.0;
        let mut b = self
            .buckets
            .lock()
            .map_err(|_| Error::Internal("rate-limit lock poisoned".into()))?;
        let (tokens, last) = b.entry(v.id).or_insert((cap, at));
        let refill = at.saturating_duration_since(*last).as_secs_f64() * per_sec;
        *tokens = (*tokens + refill).min(cap);
        *last = at;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64;
        drop(b);
        self.count(v, |c| c.limited += 1)?;
        Err(Error::RateLimited {
            message: format!(
                "verifier {} may make {} requests a minute; try again in {wait} s",
                v.name, v.rate_limit
            ),
            retry_after: wait,
        })
    }

    fn count(&self, v: &VerifierIdentity, f: impl FnOnce(&mut Counted)) -> Result<()> {
        let mut c = self
            .counts
            .lock()
            .map_err(|_| Error::Internal("traffic lock poisoned".into()))?;
        let e = c.entry(v.id).or_insert_with(|| Counted {
            name: v.name.clone(),
            ..Counted::default()
        });
        f(e);
        Ok(())
    }

    /// Count an OCSP request of a verifier.
    pub fn count_ocsp(&self, v: &VerifierIdentity) -> Result<()> {
        self.count(v, |c| c.ocsp += 1)
    }

    /// Write what was counted to the audit log (one entry per verifier) and start again.
    pub fn flush(&self, conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize> {
        let taken: Vec<(i64, Counted)> = {
            let mut c = self
                .counts
                .lock()
                .map_err(|_| Error::Internal("traffic lock poisoned".into()))?;
            c.drain().collect()
        };
        for (id, c) in &taken {
            audit::append(
                conn,
                now.timestamp(),
                &Actor::new(format!("verifier:{}", c.name), "verifier"),
                "verifier.requests",
                &format!("verifier:{id}"),
                &format!("ocsp={} rate_limited={}", c.ocsp, c.limited),
            )?;
        }
        Ok(taken.len())
    }
}
