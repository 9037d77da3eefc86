//! Leases (SPEC §11): work that must run once across every instance sharing the database —
//! one run of a batch, the instance duties (CRL publication, the mail queue, the registry
//! feed, the sweep, responder renewal) — holds a row in `leases` while it runs. Taking one
//! is a single conditional statement (insert, or take over a row whose time has run out), so
//! two instances asking at once cannot both win; the holder renews it while it works and
//! loses it if it stops (killed, hung) for longer than the lease's time. Writes that must
//! not happen after losing it carry [`Lease::held`] in their own WHERE clause, so they are
//! fenced without another round trip.
//!
//! The same code serves SQLite and PostgreSQL: the statements are plain, and both decide a
//! conditional update or a primary-key insert atomically.

use crate::db::DbConn;
use crate::db::schema::leases;
use crate::error::{Error, Result};
use diesel::prelude::*;

/// A lease this process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What it is for (`batch:17`, `duties`).
    pub name: String,
    /// This holder's id: process id and a random part (a second holder in the same
    /// instance is another holder).
    pub holder: String,
    /// The instance, as others are told who holds it.
    pub instance: String,
    /// Seconds it lasts without renewal.
    pub ttl_s: i64,
}

/// Someone else holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// The instance holding it.
    pub instance: String,
    /// Until when (Unix seconds), unless renewed.
    pub expires_at: i64,
    /// The holder's id.
    holder: String,
}

/// A holder id: this process's id and a random part. The process id lets a rerun on the
/// same instance take over at once from a holder that is no longer running (killed),
/// instead of waiting for its lease to run out.
fn new_holder() -> Result<String> {
    Ok(format!(
        "{}.{}",
        std::process::id(),
        &crate::service::auth::random_secret()?[..16]
    ))
}

/// Whether the process that took `holder` on this machine has ended (false if unknown).
fn holder_gone(holder: &str) -> bool {
    let Some(pid) = holder.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Rows of `leases` held by `lease` and not run out at `now`: the fence that writes put in
/// their WHERE clause (`.filter(diesel::dsl::exists(lease.held(now)))`).
pub type Held = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<leases::table, diesel::dsl::Eq<leases::name, String>>,
        diesel::dsl::Eq<leases::holder, String>,
    >,
    diesel::dsl::Gt<leases::expires_at, i64>,
>;

impl Lease {
    /// Take lease `name` for `instance` for `ttl_s` seconds: free, run out, or held by a
    /// process of this same instance that has ended. Otherwise says who holds it.
    pub fn acquire(
        conn: &mut DbConn,
        name: &str,
        instance: &str,
        ttl_s: i64,
        now: i64,
    ) -> Result<std::result::Result<Lease, Busy>> {
        let lease = Lease {
            name: name.to_string(),
            holder: new_holder()?,
            instance: instance.to_string(),
            ttl_s,
        };
        let busy = match lease.try_take(conn, now)? {
            None => return Ok(Ok(lease)),
            Some(busy) => busy,
        };
        // Same instance name, same machine: a holder whose process has ended (kill -9) is
        // taken over now. Another machine's holder is only ever taken over when it runs out.
        if busy.instance == instance && holder_gone(&busy.holder) {
            let taken = diesel::update(
                leases::table
                    .filter(leases::name.eq(&lease.name))
                    .filter(leases::holder.eq(&busy.holder)),
            )
            .set((
                leases::holder.eq(&lease.holder),
                leases::acquired_at.eq(now),
                leases::expires_at.eq(now + ttl_s),
            ))
            .execute(conn)?;
            if taken == 1 {
                tracing::info!(
                    lease = name,
                    "lease of an ended process of this instance taken over"
                );
                return Ok(Ok(lease));
            }
        }
        Ok(Err(busy))
    }

    /// Take it as this holder; None if taken, else who holds it.
    fn try_take(&self, conn: &mut DbConn, now: i64) -> Result<Option<Busy>> {
        let inserted = diesel::insert_into(leases::table)
            .values((
                leases::name.eq(&self.name),
                leases::holder.eq(&self.holder),
                leases::instance.eq(&self.instance),
                leases::acquired_at.eq(now),
                leases::expires_at.eq(now + self.ttl_s),
            ))
            .execute(conn);
        match inserted {
            Ok(_) => return Ok(None),
            Err(e) if crate::db::is_unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let taken = diesel::update(
            leases::table.filter(leases::name.eq(&self.name)).filter(
                leases::expires_at
                    .le(now)
                    .or(leases::holder.eq(&self.holder)),
            ),
        )
        .set((
            leases::holder.eq(&self.holder),
            leases::instance.eq(&self.instance),
            leases::acquired_at.eq(now),
            leases::expires_at.eq(now + self.ttl_s),
        ))
        .execute(conn)?;
        if taken == 1 {
            return Ok(None);
        }
        let row: Option<(String, i64, String)> = leases::table
            .find(&self.name)
            .select((leases::instance, leases::expires_at, leases::holder))
            .first(conn)
            .optional()?;
        Ok(Some(match row {
            Some((instance, expires_at, holder)) => Busy {
                instance,
                expires_at,
                holder,
            },
            // Released between the two statements: whoever asks again gets it.
            None => Busy {
                instance: "(released just now)".into(),
                expires_at: now,
                holder: String::new(),
            },
        }))
    }

    /// Extend it from `now`; false if it was lost (run out and taken by another).
    pub fn renew(&self, conn: &mut DbConn, now: i64) -> Result<bool> {
        let n = diesel::update(
            leases::table
                .filter(leases::name.eq(&self.name))
                .filter(leases::holder.eq(&self.holder)),
        )
        .set(leases::expires_at.eq(now + self.ttl_s))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Renew it, or take it again if it ran out and nobody else took it; false if another
    /// holder has it.
    pub fn keep(&self, conn: &mut DbConn, now: i64) -> Result<bool> {
        Ok(self.renew(conn, now)? || self.try_take(conn, now)?.is_none())
    }

    /// Give it up (others may take it at once).
    pub fn release(&self, conn: &mut DbConn) -> Result<()> {
        diesel::delete(
            leases::table
                .filter(leases::name.eq(&self.name))
                .filter(leases::holder.eq(&self.holder)),
        )
        .execute(conn)?;
        Ok(())
    }

    /// The fence: this lease's row, held and not run out at `now`.
    pub fn held(&self, now: i64) -> Held {
        leases::table
            .filter(leases::name.eq(self.name.clone()))
            .filter(leases::holder.eq(self.holder.clone()))
            .filter(leases::expires_at.gt(now))
    }

    /// Fail unless still held at `now` (inside a transaction, before work that must not
    /// outlive the lease).
    pub fn check(&self, conn: &mut DbConn, now: i64) -> Result<()> {
        let held: bool = diesel::select(diesel::dsl::exists(self.held(now))).get_result(conn)?;
        if held { Ok(()) } else { Err(self.lost()) }
    }

    /// The error of work whose lease was lost.
    pub fn lost(&self) -> Error {
        Error::Running(format!(
            "{}: this instance ({}) no longer holds the lease; another instance took over",
            self.name, self.instance
        ))
    }
}

/// Who holds lease `name` now, if anyone (for pages: "running on instance …").
pub fn holder_of(conn: &mut DbConn, name: &str, now: i64) -> Result<Option<Busy>> {
    Ok(leases::table
        .find(name)
        .filter(leases::expires_at.gt(now))
        .select((leases::instance, leases::expires_at, leases::holder))
        .first::<(String, i64, String)>(conn)
        .optional()?
        .map(|(instance, expires_at, holder)| Busy {
            instance,
            expires_at,
            holder,
        }))
}
