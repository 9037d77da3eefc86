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

/// The sealing domain of card PINs.
const PINS_TABLE: &str = "cards.pins";
/// Youngest holder who gets a signing key and certificate.
pub const SIGNING_MIN_AGE: u32 = 15;

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
                        .filter(issuance_batches::state.eq("ordered"))
                        .filter(diesel::dsl::exists(lease.held(now))),
                )
                .set(issuance_batches::state.eq("running"))
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
                            .filter(issuance_batches::state.eq("running"))
                            .filter(diesel::dsl::exists(lease.held(now))),
                    )
                    .set(issuance_batches::state.eq("completed"))
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

    /// Write the application's live card; false if it turned out spoiled.
    fn write_card(&self, batch_id: i64, app: &ApplicationRow) -> Result<bool> {
        let now = self.clock.now();
        let now_s = now.timestamp();
        let applicant = intake::applicant(self.key, app)?;
        let signing =
            validity::age_on(applicant.birth_date, validity::jst_date(now)) >= SIGNING_MIN_AGE;
        let mut db = self.db;

        // 1. Card number and PINs, recorded before the card is touched.
        let row = allocate(self.db, self.key, &self.actor, app, now)?;
        let pins: Pins = pins(self.key, &row)?
            .ok_or_else(|| Error::Internal(format!("card {} has no PINs", row.card_number)))?;
        step(&row.card_number, "allocated");

        // 2. Personalise (or reopen) the card.
        let card = if row.state == state::ALLOCATED {
            let taken = self.readers.personalise(
                &row.card_number,
                &so_pin(self.key, &row.card_number),
                &pins.auth,
                &mut |t| self.record_aside(batch_id, &row, t),
            )?;
            let card = match taken {
                Taken::Card(card) => card,
                Taken::NumberBurnt(t) => {
                    self.spoil(&row, &format!("set aside: {}", t.detail), now_s)?;
                    return Ok(false);
                }
            };
            let n = db.with(|c| {
                Ok(diesel::update(
                    cards::table
                        .find(row.id)
                        .filter(cards::state.eq(state::ALLOCATED))
                        .filter(diesel::dsl::exists(self.lease.held(now_s))),
                )
                .set((
                    cards::state.eq(state::PERSONALISED),
                    cards::chip_serial.eq(card.serial()),
                    cards::updated_at.eq(now_s),
                ))
                .execute(c)?)
            })?;
            if n != 1 {
                return Err(self.changed(&row));
            }
            card
        } else {
            let serial = row.chip_serial.as_deref().unwrap_or_default();
            match self
                .readers
                .open_card(&row.card_number, serial, &pins.auth)?
            {
                Ok(card) => card,
                Err(why) => {
                    // Either way the chip is not to be used again: one that refuses its
                    // PIN, or one that no reader shows any more (SoftHSM2 loses a token
                    // whose file a kill tore; a real chip may have died), which the
                    // operator pulls by its serial if it is still in the stack.
                    let t = match why {
                        NotOpened::Refused(t) => t,
                        NotOpened::Missing(detail) => SetAside {
                            slot: 0,
                            chip_serial: serial.to_string(),
                            label: row.card_number.clone(),
                            reason: AsideReason::Unreadable,
                            detail,
                        },
                    };
                    self.record_aside(batch_id, &row, &t)?;
                    self.spoil(&row, &t.detail, now_s)?;
                    return Ok(false);
                }
            }
        };
        let swept = card.sweep()?;
        if swept > 0 {
            tracing::info!(card = %row.card_number, objects = swept, "leftovers of an interrupted write removed");
        }
        step(&row.card_number, "personalised");

        // 3. Key pairs, on the card or written to it.
        let mut purposes = vec![Purpose::Authentication];
        if signing {
            purposes.push(Purpose::Signing);
        }
        let mut keys = Vec::new();
        for p in &purposes {
            keys.push((*p, card.key_pair(*p, self.keygen)?));
        }
        step(&row.card_number, "keys");

        // 4. Certificates: reuse what was issued, abandon intents never completed.
        let certs = self.certificates(&row, app, &keys, now)?;
        if row.state == state::ALLOCATED || row.state == state::PERSONALISED {
            let n = db.with(|c| {
                Ok(diesel::update(
                    cards::table
                        .find(row.id)
                        .filter(cards::state.eq(state::PERSONALISED))
                        .filter(diesel::dsl::exists(self.lease.held(now_s))),
                )
                .set((
                    cards::state.eq(state::CERTIFIED),
                    cards::updated_at.eq(now_s),
                ))
                .execute(c)?)
            })?;
            if n != 1 {
                return Err(self.changed(&row));
            }
        }
        step(&row.card_number, "certified");

        // 5. Write, then read back and compare.
        let expires_on = chrono::NaiveDate::parse_from_str(&row.expires_on, "%Y-%m-%d")
            .map_err(|e| Error::Internal(format!("card expiry: {e}")))?;
        let face = FaceData {
            card_number: row.card_number.clone(),
            name_kana: applicant.name_kana.clone(),
            birth_date: applicant.birth_date,
            sex: applicant.sex,
            expires_on,
        };
        let face_json =
            serde_json::to_vec(&face).map_err(|e| Error::Internal(format!("face data: {e}")))?;
        for c in &certs {
            card.write_certificate(c.purpose, &c.der)?;
        }
        card.write_data(label::CARD_NUMBER, row.card_number.as_bytes(), false)?;
        card.write_data(label::FACE, &face_json, true)?;
        if let Some(sign_pin) = &pins.sign {
            card.write_data(
                label::SIGNING_PIN,
                pin::verifier(sign_pin)?.as_bytes(),
                true,
            )?;
        }
        step(&row.card_number, "written");
        compare(&card, &certs, &keys, &row.card_number, &face_json, &pins)?;
        step(&row.card_number, "read back");

        let origin = keys
            .iter()
            .map(|(_, (_, o))| *o)
            .find(|o| *o == Origin::Software)
            .unwrap_or(Origin::Card);
        let serials: Vec<String> = certs
            .iter()
            .map(|c| format!("{}={}", c.purpose.id(), c.serial))
            .collect();
        db.with(|c| {
            c.transaction(|c| {
                let n = diesel::update(
                    cards::table
                        .find(row.id)
                        .filter(cards::state.eq(state::CERTIFIED))
                        .filter(diesel::dsl::exists(self.lease.held(now_s))),
                )
                .set((
                    cards::state.eq(state::WRITTEN),
                    cards::keygen.eq(origin.as_str()),
                    cards::written_at.eq(now_s),
                    cards::updated_at.eq(now_s),
                ))
                .execute(c)?;
                if n != 1 {
                    return Err(self.changed(&row));
                }
                diesel::update(
                    applications::table
                        .find(app.id)
                        .filter(applications::state.eq(app_state::ORDERED)),
                )
                .set((
                    applications::state.eq(app_state::ISSUED),
                    applications::updated_at.eq(now_s),
                ))
                .execute(c)?;
                // A reissue or a renewal replaces the holder's old card: revoked now that
                // the new one is written.
                for old in replaced_cards(c, app, row.id)? {
                    let serials =
                        crate::service::revocation::supersede_card(c, old.id, &self.actor, now_s)?;
                    audit::append(
                        c,
                        now_s,
                        &self.actor,
                        "card.replaced",
                        &format!("card:{}", old.card_number),
                        &format!(
                            "by card:{} application:{}; certificates revoked: {}",
                            row.card_number,
                            app.reference,
                            if serials.is_empty() {
                                "none".to_string()
                            } else {
                                serials.join(" ")
                            }
                        ),
                    )?;
                }
                if app.delivery == "counter"
                    && let Some(email) = &applicant.email
                {
                    crate::mail::enqueue(
                        c,
                        self.key,
                        email,
                        crate::mail::Notice::CounterReady {
                            name: applicant.name.clone(),
                            reference: app.reference.clone(),
                        },
                        now,
                    )?;
                }
                audit::append(
                    c,
                    now_s,
                    &self.actor,
                    "card.written",
                    &format!("card:{}", row.card_number),
                    &format!(
                        "application:{} keygen={} {}",
                        app.reference,
                        origin.as_str(),
                        serials.join(" ")
                    ),
                )?;
                Ok(())
            })
        })?;
        Ok(true)
    }

    /// Mark a card spoiled: its number is retired, unfinished certificate intents are
    /// abandoned, and certificates already issued for its keys are named in the audit
    /// entry as needing revocation.
    fn spoil(&self, row: &CardRow, why: &str, now_s: i64) -> Result<()> {
        tracing::warn!(card = %row.card_number, reason = why, "card spoiled");
        let mut db = self.db;
        db.with(|c| {
            c.transaction(|c| {
                let n = diesel::update(
                    cards::table
                        .find(row.id)
                        .filter(cards::state.eq(&row.state))
                        .filter(diesel::dsl::exists(self.lease.held(now_s))),
                )
                .set((cards::state.eq(state::SPOILED), cards::updated_at.eq(now_s)))
                .execute(c)?;
                if n != 1 {
                    return Err(self.changed(row));
                }
                self.abandon_intents(c, row, now_s)?;
                let issued = crate::service::revocation::revoke_spoiled_card(
                    c,
                    row.id,
                    &self.actor,
                    chrono::DateTime::from_timestamp(now_s, 0).unwrap_or_default(),
                )?;
                audit::append(
                    c,
                    now_s,
                    &self.actor,
                    "card.spoiled",
                    &format!("card:{}", row.card_number),
                    &format!(
                        "{why}; certificates revoked: {}",
                        if issued.is_empty() {
                            "none".to_string()
                        } else {
                            issued.join(" ")
                        }
                    ),
                )?;
                Ok(())
            })
        })
    }

    /// The error when a fenced update of `row` changed nothing: the card moved on under
    /// another writer, or this run lost its lease.
    fn changed(&self, row: &CardRow) -> Error {
        Error::Changed(format!(
            "card {} changed under this run, or the run's lease ({}) was lost; nothing more is written to it here",
            row.card_number, self.lease.name
        ))
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

    /// Abandon the card's certificate intents that never got their certificate stored.
    fn abandon_intents(&self, c: &mut DbConn, row: &CardRow, now_s: i64) -> Result<()> {
        let stale: Vec<(i64, String)> = certificates::table
            .filter(certificates::card_id.eq(row.id))
            .filter(certificates::state.eq_any([cert_state::RESERVED, cert_state::TBS_STORED]))
            .select((certificates::id, certificates::serial))
            .load(c)?;
        for (id, serial) in &stale {
            diesel::update(certificates::table.find(*id).filter(
                certificates::state.eq_any([cert_state::RESERVED, cert_state::TBS_STORED]),
            ))
            .set(certificates::state.eq(cert_state::ABANDONED))
            .execute(c)?;
            audit::append(
                c,
                now_s,
                &self.actor,
                "certificate.abandoned",
                &format!("serial:{serial}"),
                &format!(
                    "card:{} run interrupted before the certificate was stored",
                    row.card_number
                ),
            )?;
        }
        Ok(())
    }

    /// The card's certificates, one per key: reused when issued before (for the same key),
    /// issued now otherwise. Intents left without a certificate are abandoned first.
    fn certificates(
        &self,
        row: &CardRow,
        app: &ApplicationRow,
        keys: &[(Purpose, (Vec<u8>, Origin))],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<CardCertificate>> {
        let now_s = now.timestamp();
        let mut db = self.db;
        let existing: Vec<CardCert> = db.with(|c| {
            Ok(certificates::table
                .filter(certificates::card_id.eq(row.id))
                .select((
                    certificates::id,
                    certificates::serial,
                    certificates::profile,
                    certificates::state,
                    certificates::cert_der,
                ))
                .load(c)?)
        })?;
        db.with(|c| c.transaction(|c| self.abandon_intents(c, row, now_s)))?;

        let mut out = Vec::new();
        let mut missing = Vec::new();
        for (purpose, (spki, _)) in keys {
            let profile = profile_of(*purpose);
            let issued = existing
                .iter()
                .find(|(_, _, p, st, _)| p == profile.as_str() && st == cert_state::ISSUED);
            match issued {
                Some((_, serial, _, _, Some(der))) => {
                    if spki_of(der)? != *spki {
                        return Err(Error::Conflict(format!(
                            "card {}: certificate {serial} does not match the {} key on the card; \
                             the card must be destroyed and its certificate revoked",
                            row.card_number,
                            purpose.id()
                        )));
                    }
                    out.push(CardCertificate {
                        purpose: *purpose,
                        serial: serial.clone(),
                        der: der.clone(),
                    });
                }
                _ => missing.push((*purpose, profile, spki.clone())),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let req = issuance::HolderRequest {
            card_id: row.id,
            application_id: app.id,
            keys: missing
                .iter()
                .map(|(_, profile, spki)| (*profile, spki.clone()))
                .collect(),
        };
        let issued = issuance::issue_holder(
            &mut db,
            self.ca,
            self.key,
            &req,
            Some(self.lease),
            &self.actor,
            self.prefix,
            now,
        )?;
        for ((purpose, _, _), cert) in missing.into_iter().zip(issued) {
            out.push(CardCertificate {
                purpose,
                serial: cert.serial,
                der: cert.der,
            });
        }
        out.sort_by_key(|c| c.purpose == Purpose::Signing);
        Ok(out)
    }
}

/// The first step of writing a card, before any card is touched: the application's live card
/// if it has one, or else a card number (unique, never one a set-aside token carries; a
/// collision draws another) with the PINs drawn and sealed, recorded as `allocated`.
pub fn allocate(
    db: &DbPool,
    key: &DataKey,
    actor: &Actor,
    app: &ApplicationRow,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<CardRow> {
    let mut db = db;
    if let Some(row) = db.with(|c| Ok(CardRow::for_application(c, app.id)?))? {
        return Ok(row);
    }
    let batch_id = app
        .batch_id
        .ok_or_else(|| Error::Conflict(format!("application {} is in no batch", app.reference)))?;
    let batch_ref: String = db.with(|c| {
        Ok(issuance_batches::table
            .find(batch_id)
            .select(issuance_batches::reference)
            .first(c)?)
    })?;
    let applicant = intake::applicant(key, app)?;
    let signing =
        validity::age_on(applicant.birth_date, validity::jst_date(now)) >= SIGNING_MIN_AGE;
    let pins = Pins::generate(signing)?;
    let sealed = key.seal_json(PINS_TABLE, &pins)?;
    let expires_on = validity::card_expiry(applicant.birth_date, now)
        .format("%Y-%m-%d")
        .to_string();
    let now_s = now.timestamp();
    for _ in 0..8 {
        let number = number::generate()?;
        if db.with(|c| card_stack::number_carried(c, &number))? {
            continue;
        }
        let stored = db.with(|c| {
            c.transaction(|c| {
                CardRow::insert(
                    c,
                    &NewCard {
                        card_number: &number,
                        application_id: app.id,
                        batch_id,
                        state: state::ALLOCATED,
                        pins: Some(&sealed),
                        expires_on: &expires_on,
                        created_at: now_s,
                        updated_at: now_s,
                    },
                )?;
                audit::append(
                    c,
                    now_s,
                    actor,
                    "card.allocated",
                    &format!("card:{number}"),
                    &format!("application:{} batch:{batch_ref}", app.reference),
                )?;
                CardRow::for_application(c, app.id)?
                    .ok_or_else(|| Error::Internal("card vanished".into()))
            })
        });
        match stored {
            Err(Error::Duplicate(_)) => {
                // Either the number is taken (draw again) or the application got its
                // card from another run meanwhile (take that one).
                if let Some(row) = db.with(|c| Ok(CardRow::for_application(c, app.id)?))? {
                    return Ok(row);
                }
            }
            other => return other,
        }
    }
    Err(Error::Internal("no free card number after 8 draws".into()))
}

/// The cards a `reissue` or `renewal` application's new card replaces: the card it was
/// opened for, and any other live card of the same resident (never `new_card` itself).
fn replaced_cards(c: &mut DbConn, app: &ApplicationRow, new_card: i64) -> Result<Vec<CardRow>> {
    if !matches!(app.kind.as_str(), "reissue" | "renewal") {
        return Ok(Vec::new());
    }
    use crate::service::revocation::card_status;
    let mut ids: Vec<i64> = app.card_id.into_iter().collect();
    if let Some(k) = &app.resident_key {
        ids.extend(
            cards::table
                .inner_join(applications::table.on(applications::id.eq(cards::application_id)))
                .filter(applications::resident_key.eq(k))
                .filter(cards::state.ne(state::SPOILED))
                .filter(cards::status.eq_any([card_status::ACTIVE, card_status::SUSPENDED]))
                .select(cards::id)
                .load::<i64>(c)?,
        );
    }
    ids.retain(|id| *id != new_card);
    ids.sort_unstable();
    ids.dedup();
    Ok(cards::table
        .filter(cards::id.eq_any(ids))
        .select(CardRow::as_select())
        .load(c)?)
}

/// A certificate that belongs on a card.
struct CardCertificate {
    purpose: Purpose,
    serial: String,
    der: Vec<u8>,
}

/// A certificate row of a card: id, serial, profile, state, DER once issued.
type CardCert = (i64, String, String, String, Option<Vec<u8>>);

fn profile_of(p: Purpose) -> Profile {
    match p {
        Purpose::Authentication => Profile::Authentication,
        Purpose::Signing => Profile::Signing,
    }
}

fn spki_of(cert_der: &[u8]) -> Result<Vec<u8>> {
    Ok(openssl::x509::X509::from_der(cert_der)?
        .public_key()?
        .public_key_to_der()?)
}

/// Read the card back and compare it with what was meant to be written.
fn compare(
    card: &Card,
    certs: &[CardCertificate],
    keys: &[(Purpose, (Vec<u8>, Origin))],
    card_number: &str,
    face: &[u8],
    pins: &Pins,
) -> Result<()> {
    let got = card.read_back()?;
    let bad = |what: String| {
        Err(Error::Crypto(format!(
            "card {card_number} read back wrong: {what}"
        )))
    };
    for CardCertificate {
        purpose: p, der, ..
    } in certs
    {
        if got.certificate(*p) != Some(der.as_slice()) {
            return bad(format!("{} certificate", p.id()));
        }
        let Some(public) = got.public_key(*p) else {
            return bad(format!("{} public key missing", p.id()));
        };
        if spki_of(der)? != public {
            return bad(format!(
                "{} public key differs from its certificate",
                p.id()
            ));
        }
        match got.private_key(*p) {
            Some(f) if f.sensitive && !f.extractable => {}
            _ => return bad(format!("{} private key missing or extractable", p.id())),
        }
    }
    if keys.len() != certs.len() || got.private_keys.len() != certs.len() {
        return bad("unexpected keys on the card".into());
    }
    if got.data(label::CARD_NUMBER) != Some(card_number.as_bytes()) {
        return bad("card number".into());
    }
    if got.data(label::FACE) != Some(face) {
        return bad("face data".into());
    }
    match (&pins.sign, got.data(label::SIGNING_PIN)) {
        (None, None) => {}
        (Some(p), Some(v)) if pin::check(&String::from_utf8_lossy(v), p)? => {}
        _ => return bad("signing PIN".into()),
    }
    Ok(())
}

/// Cards of a batch with their states, for progress pages.
pub fn cards(conn: &mut DbConn, batch_id: i64) -> Result<Vec<CardRow>> {
    Ok(CardRow::for_batch(conn, batch_id)?)
}
