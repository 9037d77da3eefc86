//! Refusals counted, not chained one by one (issue 13): a staff credential that keeps
//! calling a route its role may not use, or logins that keep failing, would otherwise grow
//! the hash-chained audit log as fast as requests arrive. Each source of refusals (a staff
//! credential, an account and address) gets its first few refusals of every minute audited
//! one by one; beyond them they are only counted, and [`Refusals::flush`] (once a minute,
//! and when `kofu serve` stops) writes one summary entry per source with the count. Sources
//! are bounded too: past [`MAX_SOURCES`] in a minute, refusals of new sources are counted in
//! one overflow entry. So no one can grow the chain faster than a bounded rate.

use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Mutex;

/// Sources tracked in one minute before new ones share the overflow count.
pub const MAX_SOURCES: usize = 1000;

#[derive(Debug, Clone)]
struct Source {
    minute: i64,
    audited: u32,
    counted: u64,
    actor: Actor,
    action: String,
    target: String,
}

/// The refusal counters of one process.
#[derive(Debug)]
pub struct Refusals {
    per_minute: u32,
    sources: Mutex<HashMap<String, Source>>,
    overflow: Mutex<u64>,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals::new(10)
    }
}

impl Refusals {
    /// Audit the first `per_minute` refusals of each source in each minute.
    pub fn new(per_minute: u32) -> Self {
        Refusals {
            per_minute,
            sources: Mutex::new(HashMap::new()),
            overflow: Mutex::new(0),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Source>>> {
        self.sources
            .lock()
            .map_err(|_| Error::Internal("refusal counters poisoned".into()))
    }

    /// A refusal from `source` at `now`: true if it is to be audited on its own now (the
    /// caller writes the entry), false if it was counted for the next summary.
    pub fn admit(
        &self,
        source: &str,
        actor: &Actor,
        action: &str,
        target: &str,
        now: i64,
    ) -> Result<bool> {
        let minute = now.div_euclid(60);
        let mut sources = self.lock()?;
        if !sources.contains_key(source) && sources.len() >= MAX_SOURCES {
            drop(sources);
            *self
                .overflow
                .lock()
                .map_err(|_| Error::Internal("refusal counters poisoned".into()))? += 1;
            return Ok(false);
        }
        let s = sources.entry(source.to_string()).or_insert_with(|| Source {
            minute,
            audited: 0,
            counted: 0,
            actor: actor.clone(),
            action: action.to_string(),
            target: target.to_string(),
        });
        if s.minute != minute {
            // A new minute: the count so far waits for the flush; the allowance starts again.
            s.minute = minute;
            s.audited = 0;
        }
        if s.audited < self.per_minute {
            s.audited += 1;
            return Ok(true);
        }
        s.counted += 1;
        s.target = target.to_string();
        Ok(false)
    }

    /// Write one `<action>.counted` entry per source with refusals counted since the last
    /// flush (and one for the overflow), and forget sources that were quiet this minute.
    pub fn flush(&self, conn: &mut DbConn, now: i64) -> Result<usize> {
        let minute = now.div_euclid(60);
        let taken: Vec<Source> = {
            let mut sources = self.lock()?;
            let out = sources
                .values_mut()
                .filter(|s| s.counted > 0)
                .map(|s| {
                    let copy = s.clone();
                    s.counted = 0;
                    copy
                })
                .collect();
            sources.retain(|_, s| s.minute == minute);
            out
        };
        let overflow = std::mem::take(
            &mut *self
                .overflow
                .lock()
                .map_err(|_| Error::Internal("refusal counters poisoned".into()))?,
        );
        let mut entries: Vec<(Actor, String, String, String)> = taken
            .into_iter()
            .map(|s| {
                (
                    s.actor,
                    format!("{}.counted", s.action),
                    s.target,
                    format!(
                        "refusals={} (beyond {} a minute audited one by one)",
                        s.counted, self.per_minute
                    ),
                )
            })
            .collect();
        if overflow > 0 {
            entries.push((
                Actor::system(),
                "refusals.counted".into(),
                "sources:overflow".into(),
                format!("refusals={overflow} from more than {MAX_SOURCES} sources in a minute"),
            ));
        }
        for (actor, action, target, detail) in &entries {
            audit::append(conn, now, actor, action, target, detail)?;
        }
        Ok(entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_audited_a_few_times_then_counted() {
        let r = Refusals::new(10);
        let actor = Actor::new("cc1", "callcenter");
        let t0 = 1_800_000_000;
        let audited = (0..3000)
            .filter(|i| {
                r.admit(
                    "user:7",
                    &actor,
                    "access.denied",
                    "GET /audit",
                    t0 + i / 100,
                )
                .unwrap_or(false)
            })
            .count();
        // 3,000 refusals over 30 s: one minute boundary at most.
        assert!(audited <= 20, "{audited}");
        let counted: u64 = r
            .lock()
            .map(|s| s.values().map(|s| s.counted).sum())
            .unwrap_or(0);
        assert_eq!(audited as u64 + counted, 3000);
    }

    #[test]
    fn new_sources_beyond_the_bound_share_one_count() {
        let r = Refusals::new(1);
        let actor = Actor::new("x", "anonymous");
        for i in 0..(MAX_SOURCES + 50) {
            let _ = r.admit(&format!("login:{i}"), &actor, "login.failed", "", 60);
        }
        assert_eq!(r.lock().map(|s| s.len()).unwrap_or(0), MAX_SOURCES);
        assert_eq!(r.overflow.lock().map(|o| *o).unwrap_or(0), 50);
    }
}
