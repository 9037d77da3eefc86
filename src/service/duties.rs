//! The instance duties (SPEC §11): work on shared data that must run once across every
//! instance sharing the database — CRL publication, the registry change feed, the sweep of
//! certificates on spoiled cards, OCSP responder renewal, the mail queue, clearing old
//! idempotency keys. One lease (`duties`) decides which instance does them; each `kofu serve`
//! asks for it every second, renews it while it holds it, and gives it up when it stops, so
//! another takes over at once (or, after a kill, when the lease runs out).
//!
//! What each instance keeps doing itself: answering OCSP from its own cache (it signs only
//! what it is asked), and writing its own counted verifier requests and refusals to the
//! audit log (each instance counts what it saw; the entries name the instance's actor).

use crate::db::DbConn;
use crate::error::Result;
use crate::service::lease::Lease;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The lease's name.
pub const LEASE: &str = "duties";
/// Seconds the duties lease lasts without renewal: how long after a killed holder another
/// instance takes over.
pub const TTL_S: i64 = 15;
/// Renew this often while holding it.
const RENEW_EVERY_S: i64 = 5;

/// This instance's hold on the duties.
#[derive(Debug)]
pub struct Duties {
    instance: String,
    held: AtomicBool,
    lease: Mutex<Option<(Lease, i64)>>,
}

impl Duties {
    /// For instance `instance`, holding nothing yet.
    pub fn new(instance: impl Into<String>) -> Self {
        Duties {
            instance: instance.into(),
            held: AtomicBool::new(false),
            lease: Mutex::new(None),
        }
    }

    /// Whether this instance held the duties at its last [`Duties::tick`].
    pub fn held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    /// Keep the duties (renewing every few seconds) or take them if they are free; returns
    /// whether this instance holds them now.
    pub fn tick(&self, conn: &mut DbConn, now: i64) -> Result<bool> {
        let mut slot = self
            .lease
            .lock()
            .map_err(|_| crate::error::Error::Internal("duties lock poisoned".into()))?;
        let held = match slot.take() {
            Some((lease, renewed)) if now - renewed < RENEW_EVERY_S => {
                *slot = Some((lease, renewed));
                true
            }
            Some((lease, _)) => {
                if lease.keep(conn, now)? {
                    *slot = Some((lease, now));
                    true
                } else {
                    tracing::warn!(instance = %self.instance, "the instance duties were taken over");
                    false
                }
            }
            None => match Lease::acquire(conn, LEASE, &self.instance, TTL_S, now)? {
                Ok(lease) => {
                    tracing::info!(instance = %self.instance, "this instance now runs the instance duties");
                    *slot = Some((lease, now));
                    true
                }
                Err(_) => false,
            },
        };
        self.held.store(held, Ordering::SeqCst);
        Ok(held)
    }

    /// Give the duties up (at shutdown), so another instance takes them at once.
    pub fn release(&self, conn: &mut DbConn) -> Result<()> {
        self.held.store(false, Ordering::SeqCst);
        let taken = self
            .lease
            .lock()
            .map_err(|_| crate::error::Error::Internal("duties lock poisoned".into()))?
            .take();
        if let Some((lease, _)) = taken {
            lease.release(conn)?;
        }
        Ok(())
    }
}
