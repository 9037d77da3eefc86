//! Running an issuance batch (SPEC §2.4): for each ordered application, a card number, PINs,
//! key pairs on the card, the two certificates, everything written to the card and read back.
//!
//! Crash safety: every step that touches the card or the CA is preceded by a database record
//! that lets a rerun resume it, never repeat it.
//! - The card number and sealed PINs are stored (`allocated`) before the card is touched;
//!   a rerun takes the same number for the same application.
//! - Personalising wipes and initialises the card; a rerun of an `allocated` card redoes
//!   it on the same card (it carries the number as its label) or on a blank one. A token
//!   that carries the number but will not be personalised again (`card::readers` lists the
//!   states an interrupted `C_InitToken` leaves) is set aside and the card spoiled: the
//!   application gets a new number on the next blank card, in the same run.
//! - Every run starts with a survey of the card stack (`service::card_stack`): tokens that
//!   are not what kofu expects are set aside and listed for the operator to pull.
//! - Key pairs are found on the card by id before any is generated.
//! - Certificates go through the issuer, which records the intent to sign before signing;
//!   an intent whose certificate never got stored (the process died in between; the
//!   signature never left memory) is marked abandoned on rerun and a new certificate
//!   issued; a stored certificate is reused, never issued again.
//! - Writing replaces objects by id, so it can be repeated; the card counts as written
//!   only after reading it back matches.
//! - A personalised card that no longer opens is set aside and spoiled, and the sweep at
//!   the end of every run revokes whatever certificate is left on a card that is not its
//!   application's written card.
//!
//! One run of a batch at a time across every instance sharing the database: a run holds
//! the batch's lease (`service::lease`), renewed while it runs; a second start anywhere is
//! refused naming the instance that holds it, and a run whose instance was killed can be
//! taken over once its lease has run out, and resumes as a rerun does.

use crate::audit::{self, Actor};
use crate::ca::Hierarchy;
use crate::ca::profile::Profile;
use crate::ca::validity;
use crate::card::pin::{self, Pins};
use crate::card::readers::{AsideReason, NotOpened, Readers, SetAside, Taken, step};
use crate::card::token::{Card, Keygen, Origin, Purpose};
use crate::card::{FaceData, label, number};
use crate::clock::Clock;
use crate::db::models::application::{ApplicationRow, state as app_state};
use crate::db::models::ca::state as cert_state;
use crate::db::models::card::{CardRow, NewCard, state};
use crate::db::schema::{applications, cards, certificates, issuance_batches};
use crate::db::{DbConn, DbPool};
use crate::error::{Error, Result};
use crate::pii::DataKey;
use crate::service::card_stack;
use crate::service::intake;
use crate::service::issuance::{self, ConnSource};
use crate::service::lease::Lease;
use diesel::prelude::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

mod allocation;
mod write;
pub use allocation::allocate;
pub(crate) use write::{face_json, spki_of};

/// The sealing domain of card PINs.
const PINS_TABLE: &str = "cards.pins";

/// What the runner needs besides the database.
pub struct Runner<'a> {
    /// The write pool.
    pub db: &'a DbPool,
    /// The CA.
    pub ca: &'a Hierarchy,
    /// The personal-data key (applicant data, PIN sealing, SO PIN derivation).
    pub key: &'a DataKey,
    /// The card readers.
    pub readers: &'a Readers,
    /// How key pairs are made.
    pub keygen: Keygen,
    /// Cards written at once.
    pub workers: usize,
    /// This instance's serial prefix.
    pub prefix: u16,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Who runs the batch.
    pub actor: Actor,
    /// The run's lease (taken with [`claim`]): one run of a batch across every instance.
    pub lease: &'a Lease,
}

/// How far a run got.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Progress {
    /// Cards written.
    pub written: usize,
    /// Cards in the batch.
    pub total: usize,
}

/// The end of a run.
#[derive(Debug, serde::Serialize)]
pub struct RunSummary {
    /// Batch reference.
    pub reference: String,
    /// Cards written (in this run and before).
    pub written: usize,
    /// Cards in the batch.
    pub total: usize,
    /// Cards that failed in this run: application reference and what went wrong.
    pub failed: Vec<(String, String)>,
}

/// The name of batch `id`'s run lease.
pub fn lease_name(id: i64) -> String {
    format!("batch:{id}")
}

/// Take the run lease of batch `id` for `instance`: refused (409) naming the instance that
/// runs it, unless that run's lease has run out (its instance stopped), when this one takes
/// the run over.
pub fn claim(
    conn: &mut DbConn,
    id: i64,
    instance: &str,
    ttl_s: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Lease> {
    crate::service::orders::show(conn, id)?;
    match Lease::acquire(conn, &lease_name(id), instance, ttl_s, now.timestamp())? {
        Ok(lease) => Ok(lease),
        Err(busy) => Err(Error::Running(format!(
            "batch {id} is being run on instance {} (lease until {} JST); wait for it to finish, \
             or for its lease to run out if that instance has stopped",
            busy.instance,
            crate::jp::time::written(busy.expires_at)
        ))),
    }
}

/// The security-officer PIN of a card, derived from its number with the data key: the office
/// can re-derive it to unblock a card, and it is stored nowhere.
pub fn so_pin(key: &DataKey, card_number: &str) -> String {
    key.index(&["card-so-pin", card_number])
}

/// A card's PINs, while they are still kept for the PIN mailer.
pub fn pins(key: &DataKey, card: &CardRow) -> Result<Option<Pins>> {
    card.pins
        .as_ref()
        .map(|sealed| key.open_json(PINS_TABLE, sealed))
        .transpose()
}

impl Runner<'_> {
    /// Run batch `id` to the end under its run lease (see [`claim`]): every card not yet
    /// written is written. Progress is reported after each card. The lease is renewed in
    /// the background while the run lasts and released at its end; a run that loses it (its
    /// instance stalled past the lease's time and another took over) stops before the next
    /// card, and its writes after the loss are refused by the fence in their WHERE clause.
    pub fn run(&self, id: i64, progress: &(dyn Fn(Progress) + Sync)) -> Result<RunSummary> {
        let out = self.run_leased(id, progress);
        let mut db = self.db;
        if let Err(e) = db.with(|c| self.lease.release(c)) {
            tracing::warn!(batch = id, error = %e, "the run lease was not released; it runs out by itself");
        }
        out
    }

    fn run_leased(&self, id: i64, progress: &(dyn Fn(Progress) + Sync)) -> Result<RunSummary> {
        let lease = self.lease;
        if lease.name != lease_name(id) {
            return Err(Error::Internal(format!(
                "the lease {} is not batch {id}'s",
                lease.name
            )));
        }
        let now = self.clock.now().timestamp();
        let mut db = self.db;
        let (reference, apps) = db.with(|c| {
            c.transaction(|c| {
                let (batch, _) = crate::service::orders::show(c, id)?;
                let started = diesel::update(
                    issuance_batches::table
                        .find(id)
                        .filter(
                            issuance_batches::state
                                .eq(crate::db::models::batch::BatchState::Ordered.as_str()),
                        )
                        .filter(diesel::dsl::exists(lease.held(now))),
                )
                .set(
                    issuance_batches::state
                        .eq(crate::db::models::batch::BatchState::Running.as_str()),
                )
                .execute(c)?;
                if started == 1 {
                    audit::append(
                        c,
                        now,
                        &self.actor,
                        "batch.started",
                        &format!("batch:{}", batch.reference),
                        &format!(
                            "cards={} instance={}",
                            batch.application_count, lease.instance
                        ),
                    )?;
                }
                let apps: Vec<ApplicationRow> = applications::table
                    .filter(applications::batch_id.eq(id))
                    .order(applications::id)
                    .select(ApplicationRow::as_select())
                    .load(c)?;
                Ok::<_, Error>((batch.reference, apps))
            })
        })?;
        self.survey(id)?;
        let total = apps.len();
        let todo: Vec<&ApplicationRow> = apps
            .iter()
            .filter(|a| a.state == app_state::ORDERED)
            .collect();
        let written = AtomicUsize::new(total - todo.len());
        progress(Progress {
            written: written.load(Ordering::SeqCst),
            total,
        });
        let next = AtomicUsize::new(0);
        let failed = Mutex::new(Vec::new());
        let lost_flag = AtomicBool::new(false);
        let lost = &lost_flag;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            // The heartbeat: renew the lease a few times per its lifetime until the workers
            // are done (the channel closes).
            s.spawn(move || {
                let every = std::time::Duration::from_secs((lease.ttl_s / 3).max(1) as u64);
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    let mut db = self.db;
                    let now = self.clock.now().timestamp();
                    match db.with(|c| lease.renew(c, now)) {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(batch = id, "the batch run's lease was lost");
                            lost.store(true, Ordering::SeqCst);
                            break;
                        }
                        Err(e) => tracing::warn!(batch = id, error = %e, "lease renewal failed"),
                    }
                }
            });
            let workers: Vec<_> = (0..self.workers.clamp(1, 64))
                .map(|_| s.spawn(|| {
                    loop {
                        if lost.load(Ordering::SeqCst) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(app) = todo.get(i) else { break };
                        match self.card(id, app) {
                            Ok(()) => {
                                let w = written.fetch_add(1, Ordering::SeqCst) + 1;
                                progress(Progress { written: w, total });
                            }
                            Err(e) => {
                                tracing::warn!(application = app.id, error = %e, "card not written");
                                if let Ok(mut f) = failed.lock() {
                                    f.push((app.reference.clone(), e.to_string()));
                                }
                            }
                        }
                    }
                }))
                .collect();
            for w in workers {
                let _ = w.join();
            }
            drop(stop);
        });
        if lost.load(Ordering::SeqCst) {
            return Err(lease.lost());
        }
        let failed = failed
            .into_inner()
            .map_err(|_| Error::Internal("failure list poisoned".into()))?;
        let swept = db.with(|c| card_stack::sweep(c, &self.actor, self.clock.now()))?;
        if !swept.is_empty() {
            tracing::warn!(
                certificates = swept.len(),
                "certificates on spoiled cards revoked"
            );
        }
        let written = written.load(Ordering::SeqCst);
        if failed.is_empty() && written == total {
            let now = self.clock.now().timestamp();
            db.with(|c| {
                c.transaction(|c| {
                    let done = diesel::update(
                        issuance_batches::table
                            .find(id)
                            .filter(
                                issuance_batches::state
                                    .eq(crate::db::models::batch::BatchState::Running.as_str()),
                            )
                            .filter(diesel::dsl::exists(lease.held(now))),
                    )
                    .set(
                        issuance_batches::state
                            .eq(crate::db::models::batch::BatchState::Completed.as_str()),
                    )
                    .execute(c)?;
                    if done == 1 {
                        audit::append(
                            c,
                            now,
                            &self.actor,
                            "batch.completed",
                            &format!("batch:{reference}"),
                            &format!("cards={total}"),
                        )?;
                    }
                    Ok::<_, Error>(())
                })
            })?;
        }
        Ok(RunSummary {
            reference,
            written,
            total,
            failed,
        })
    }

    /// Write one application's card, resuming wherever an earlier run stopped; a card
    /// spoiled by an interrupted write is replaced by a new one.
    fn card(&self, batch_id: i64, app: &ApplicationRow) -> Result<()> {
        for _ in 0..3 {
            if self.write_card(batch_id, app)? {
                return Ok(());
            }
        }
        Err(Error::Unavailable(format!(
            "three cards in a row spoiled for application {}; check the readers",
            app.reference
        )))
    }

    /// Record a token set aside while writing `row` (the card whose number it carries, if it
    /// carries that card's).
    fn record_aside(&self, batch_id: i64, row: &CardRow, t: &SetAside) -> Result<()> {
        let card_id = (t.label == row.card_number).then_some(row.id);
        let now_s = self.clock.now().timestamp();
        let mut db = self.db;
        db.with(|c| card_stack::record(c, batch_id, card_id, t, &self.actor, now_s))?;
        Ok(())
    }

    /// Survey the card stack before writing: the readers skip every chip set aside before,
    /// and tokens that are not what kofu expects are set aside and recorded now.
    fn survey(&self, batch_id: i64) -> Result<()> {
        let tokens = self.readers.survey()?;
        let now_s = self.clock.now().timestamp();
        let mut db = self.db;
        db.with(|c| {
            let known = card_stack::serials(c)?;
            self.readers
                .skip_serials(known.iter().map(String::as_str))?;
            for (t, card_id) in card_stack::classify(c, &tokens)? {
                card_stack::record(c, batch_id, card_id, &t, &self.actor, now_s)?;
                self.readers.set_aside_found(&t)?;
            }
            Ok(())
        })
    }
}

/// Cards of a batch with their states, for progress pages.
pub fn cards(conn: &mut DbConn, batch_id: i64) -> Result<Vec<CardRow>> {
    Ok(CardRow::for_batch(conn, batch_id)?)
}

/// What card work (a batch run, a renewal on the card) needs, owned, so it can go to a
/// thread of its own.
#[derive(Clone)]
pub struct CardWork {
    /// The write pool.
    pub db: DbPool,
    /// The CA.
    pub ca: std::sync::Arc<Hierarchy>,
    /// The personal-data key.
    pub key: DataKey,
    /// The configuration (card module, key generation, lease time, instance, serial prefix).
    pub config: std::sync::Arc<crate::config::Config>,
    /// Time.
    pub clock: crate::clock::SharedClock,
}

impl CardWork {
    /// Take the run lease of batch `id` for this instance (see [`claim`]).
    pub fn claim(&self, id: i64) -> Result<Lease> {
        claim(
            &mut *self.db.get()?,
            id,
            &self.config.instance(),
            self.config.cards.lease_s,
            self.clock.now(),
        )
    }

    /// The runner of a batch under `lease`, as configured (workers, serial prefix).
    pub fn runner<'a>(
        &'a self,
        readers: &'a Readers,
        keygen: Keygen,
        actor: Actor,
        lease: &'a Lease,
    ) -> Runner<'a> {
        Runner {
            db: &self.db,
            ca: &self.ca,
            key: &self.key,
            readers,
            keygen,
            workers: self.config.cards.workers(),
            prefix: self.config.instance_prefix,
            clock: self.clock.as_ref(),
            actor,
            lease,
        }
    }
}

/// Start running batch `id` as `actor`: the run lease is taken first (refused with 409
/// naming the instance that holds it), then the run goes on in a thread of its own and
/// shows its progress in the batch's card states. A start that fails after the lease was
/// taken gives it back.
pub fn start(work: CardWork, actor: Actor, id: i64) -> Result<()> {
    let lease = work.claim(id)?;
    let release = lease.clone();
    let db = work.db.clone();
    match spawn_run(work, actor, id, lease) {
        Ok(()) => Ok(()),
        Err(e) => {
            release.release(&mut *db.get()?)?;
            Err(e)
        }
    }
}

fn spawn_run(work: CardWork, actor: Actor, id: i64, lease: Lease) -> Result<()> {
    let readers = Readers::open(&work.config.cards.module)?;
    let keygen = work.config.cards.keygen()?;
    std::thread::Builder::new()
        .name(format!("batch-{id}"))
        .spawn(move || {
            let runner = work.runner(&readers, keygen, actor.clone(), &lease);
            match runner.run(id, &|_| {}) {
                Ok(s) => tracing::info!(
                    batch = id,
                    written = s.written,
                    total = s.total,
                    failed = s.failed.len(),
                    "batch run ended"
                ),
                Err(e) => {
                    tracing::warn!(batch = id, error = %e, "batch run failed");
                    if let Ok(mut c) = work.db.get() {
                        let _ = audit::append(
                            &mut c,
                            work.clock.now().timestamp(),
                            &actor,
                            "batch.run_failed",
                            &format!("batch:{id}"),
                            &e.to_string(),
                        );
                    }
                }
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the batch thread: {e}")))?;
    Ok(())
}
