//! Issuing one end-entity certificate, in the order that leaves a record of intent before any
//! signature exists (after boulder): reserve and store the serial → encode and lint the TBS
//! → store the TBS → audit "about to sign" → sign → check the signed TBS → store the
//! certificate → audit "issued". A crash between any two steps leaves a `reserved` or
//! `tbs_stored` row, never an unrecorded signed certificate.
//!
//! Who may get what (issue 13): a holder certificate (signing, authentication) is issued only
//! by [`issue_holder`], for the card being written for an application a clerk verified and a
//! second person ordered (or a verified renewal of the holder's own active card), with the
//! identity taken from that application — checked again inside the transactions that record
//! the intent and store the certificate. [`issue`] and [`issue_batch`] issue infrastructure
//! profiles only. A holder's key is certified at most once (a unique index on the key hash);
//! an infrastructure key may be certified again only for the same profile and CA, and only
//! where the service renews its own certificates with the key it keeps (OCSP responders, the
//! TLS server).

use crate::audit::{self, Actor};
use crate::ca::Hierarchy;
use crate::ca::csr::CheckedCsr;
use crate::ca::identity::Identity;
use crate::ca::issuer;
use crate::ca::profile::{CaName, EeRequest, Profile, ee_parts};
use crate::ca::serial::Serial;
use crate::db::DbConn;
use crate::db::models::application::{ApplicationRow, state as app_state};
use crate::db::models::ca::{CertificateRow, NewCertificate, state};
use crate::db::models::card::{CardRow, state as card_state};
use crate::db::schema::{cards, certificates, issuance_batches};
use crate::error::{Error, Result};
use crate::pii::DataKey;
use crate::service::cert_store;
use crate::service::lease::Lease;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// A request to issue, already parsed and checked at the edges.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// Profile.
    pub profile: Profile,
    /// Issuing CA, when the profile allows a choice (OCSP responders).
    pub ca: Option<CaName>,
    /// The checked CSR.
    pub csr: CheckedCsr,
    /// Holder identity (holder profiles).
    pub identity: Option<Identity>,
}

/// An issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Serial, upper-case hex.
    pub serial: String,
    /// DER.
    pub der: Vec<u8>,
    /// Issuing CA.
    pub ca: CaName,
}

/// Issue one infrastructure certificate (OCSP responder, verifier client, TLS server).
/// `prefix` is this instance's serial prefix.
pub fn issue(
    conn: &mut impl ConnSource,
    h: &Hierarchy,
    req: &IssueRequest,
    actor: &Actor,
    prefix: u16,
    now: DateTime<Utc>,
) -> Result<Issued> {
    issue_batch(conn, h, std::slice::from_ref(req), actor, prefix, now)?
        .pop()
        .ok_or_else(|| Error::Internal("empty issuance result".into()))
}

/// Where issuance takes a database connection for each of its two transactions. A plain
/// connection serves both; a pool lends one per transaction, so concurrent callers (the
/// SQLite write pool has one connection) queue for the short store phases and sign in
/// parallel instead of holding a connection while they sign.
pub trait ConnSource {
    /// Run `f` on a connection.
    fn with<T>(&mut self, f: impl FnOnce(&mut DbConn) -> Result<T>) -> Result<T>;
}

impl ConnSource for DbConn {
    fn with<T>(&mut self, f: impl FnOnce(&mut DbConn) -> Result<T>) -> Result<T> {
        f(self)
    }
}

impl ConnSource for crate::db::PooledConn {
    fn with<T>(&mut self, f: impl FnOnce(&mut DbConn) -> Result<T>) -> Result<T> {
        f(self)
    }
}

impl ConnSource for &crate::db::DbPool {
    fn with<T>(&mut self, f: impl FnOnce(&mut DbConn) -> Result<T>) -> Result<T> {
        let mut c = self.get()?;
        f(&mut c)
    }
}

/// One certificate on its way: where it is stored and what will be signed.
struct Pending {
    row_id: i64,
    ca: CaName,
    prepared: issuer::Prepared,
}

/// Below this many certificates a batch is signed on the calling thread.
const PARALLEL_SIGNING_FROM: usize = 16;

/// Issue several infrastructure certificates: every input is checked and every TBS linted
/// first (one bad request stores nothing), then all serials, TBS and intents are stored in
/// one transaction, signed (across the machine's cores for larger batches), and all
/// certificates stored in one transaction. A crash in between leaves `tbs_stored` rows.
pub fn issue_batch(
    conn: &mut impl ConnSource,
    h: &Hierarchy,
    reqs: &[IssueRequest],
    actor: &Actor,
    prefix: u16,
    now: DateTime<Utc>,
) -> Result<Vec<Issued>> {
    if let Some(r) = reqs.iter().find(|r| r.profile.is_holder()) {
        return Err(holder_refusal(r.profile));
    }
    issue_guarded(
        conn,
        h,
        reqs,
        &vec![None; reqs.len()],
        &|_, _| Ok(()),
        None,
        actor,
        prefix,
        now,
    )
}

/// The refusal of a holder profile outside the workflow.
pub fn holder_refusal(profile: Profile) -> Error {
    Error::Forbidden(format!(
        "{} certificates are issued only for an application a clerk verified and a second \
         person ordered, to the card written for it (kofu batch run, or a renewal at the \
         counter); never from a request",
        profile.as_str()
    ))
}

/// The keys of a card to certify, for the application the card is written for.
#[derive(Debug, Clone)]
pub struct HolderRequest {
    /// The card the keys live on.
    pub card_id: i64,
    /// The application: the batch application the card is written for, or the verified
    /// renewal of the holder's own card.
    pub application_id: i64,
    /// (signing or authentication, SPKI DER) per key.
    pub keys: Vec<(Profile, Vec<u8>)>,
}

/// Issue holder certificates for the keys on a card. The identity comes from the
/// application; the card and application must be in a state the workflow issues for
/// ([`holder_target`]), checked again in the transactions that record the intent and store
/// the certificates, together with `fence` (the batch run's lease) when given.
#[allow(clippy::too_many_arguments)]
pub fn issue_holder(
    conn: &mut impl ConnSource,
    h: &Hierarchy,
    key: &DataKey,
    req: &HolderRequest,
    fence: Option<&Lease>,
    actor: &Actor,
    prefix: u16,
    now: DateTime<Utc>,
) -> Result<Vec<Issued>> {
    if let Some((p, _)) = req.keys.iter().find(|(p, _)| !p.is_holder()) {
        return Err(Error::Internal(format!(
            "{} is not a holder profile",
            p.as_str()
        )));
    }
    let (_, app) = conn.with(|c| holder_target(c, req.card_id, req.application_id))?;
    let identity = crate::service::intake::identity(key, &app)?;
    let reqs: Vec<IssueRequest> = req
        .keys
        .iter()
        .map(|(profile, spki)| IssueRequest {
            profile: *profile,
            ca: None,
            csr: CheckedCsr {
                spki_der: spki.clone(),
                common_name: None,
                dns_names: Vec::new(),
            },
            identity: Some(identity.clone()),
        })
        .collect();
    let now_s = now.timestamp();
    // The lease is checked where it matters, before a certificate is stored (one round trip
    // per card); an intent recorded by a run that then lost its lease is abandoned by the
    // next run like any other.
    let guard = |c: &mut DbConn, stage: Stage| -> Result<()> {
        holder_target(c, req.card_id, req.application_id)?;
        match (fence, stage) {
            (Some(lease), Stage::Store) => lease.check(c, now_s),
            _ => Ok(()),
        }
    };
    let card_ids = vec![Some(req.card_id); reqs.len()];
    issue_guarded(
        conn,
        h,
        &reqs,
        &card_ids,
        &guard,
        Some(key),
        actor,
        prefix,
        now,
    )
}

/// The card and application a holder certificate may be issued for, or why not: the card
/// being written (personalised, keys made) in the batch that a second person ordered for
/// the application a clerk verified; or the holder's own active card with a renewal
/// application a clerk verified.
pub fn holder_target(
    conn: &mut DbConn,
    card_id: i64,
    application_id: i64,
) -> Result<(CardRow, ApplicationRow)> {
    let card: CardRow = cards::table
        .find(card_id)
        .select(CardRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("card {card_id}")))?;
    let app = ApplicationRow::get(conn, application_id)?
        .ok_or_else(|| Error::NotFound(format!("application {application_id}")))?;
    let verified = app.decided_by.is_some();
    let batch_write = app.state == app_state::ORDERED
        && verified
        && card.application_id == app.id
        && app.batch_id == Some(card.batch_id)
        && matches!(
            card.state.as_str(),
            card_state::PERSONALISED | card_state::CERTIFIED
        )
        && issuance_batches::table
            .find(card.batch_id)
            .select(issuance_batches::ordered_by)
            .first::<i64>(conn)
            .optional()?
            .is_some_and(|by| by != app.created_by);
    let renewal = app.kind == crate::db::models::application::ApplicationKind::Renewal
        && verified
        && app.state == app_state::VERIFIED
        && app.card_id == Some(card.id)
        && card.status == crate::service::status::card_status::ACTIVE;
    if batch_write || renewal {
        Ok((card, app))
    } else {
        Err(Error::Forbidden(format!(
            "card {} is not being written for application {} (state {}, card {} {}): holder \
             certificates are issued only for a verified application a second person ordered, \
             or a verified renewal of an active card",
            card.card_number, app.reference, app.state, card.state, card.status
        )))
    }
}

/// SHA-256 of a SubjectPublicKeyInfo: what `certificates.key_hash` holds.
pub fn key_hash(spki_der: &[u8]) -> Vec<u8> {
    openssl::sha::sha256(spki_der).to_vec()
}

/// Refuse a key certified before, unless it is an infrastructure key the service renews
/// with the same key, for the same profile and CA. Every certificate of one key has the same
/// profile and CA (anything else is refused here), so one row says it: one indexed lookup,
/// however often a responder's or the TLS server's key was certified.
fn check_key(conn: &mut DbConn, hash: &[u8], profile: Profile, ca: CaName) -> Result<()> {
    let seen: Option<(String, String, String)> = certificates::table
        .filter(certificates::key_hash.eq(hash))
        .filter(certificates::state.ne(state::ABANDONED))
        .select((
            certificates::serial,
            certificates::profile,
            certificates::issuer,
        ))
        .first(conn)
        .optional()?;
    let keeps_key = matches!(profile, Profile::Ocsp | Profile::TlsServer);
    match seen {
        None => Ok(()),
        Some((_, p, i)) if keeps_key && p == profile.as_str() && i == ca.as_str() => Ok(()),
        Some((serial, p, _)) => Err(Error::Duplicate(format!(
            "this public key is already certified (serial {serial}, profile {p}); a new \
             certificate needs a new key"
        ))),
    }
}

/// Which of issuance's two transactions a guard runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Recording the intent to sign.
    Intent,
    /// Storing the signed certificates.
    Store,
}

/// Issue with `guard` run first in both transactions (the intent, and the certificates):
/// a guard that fails stores nothing, or leaves the intents to be abandoned.
#[allow(clippy::too_many_arguments)]
fn issue_guarded(
    conn: &mut impl ConnSource,
    h: &Hierarchy,
    reqs: &[IssueRequest],
    card_ids: &[Option<i64>],
    guard: &dyn Fn(&mut DbConn, Stage) -> Result<()>,
    seal_key: Option<&DataKey>,
    actor: &Actor,
    prefix: u16,
    now: DateTime<Utc>,
) -> Result<Vec<Issued>> {
    if card_ids.len() != reqs.len() {
        return Err(Error::Internal("one card id per request".into()));
    }
    let now_s = now.timestamp();

    // 1–2. Check and lint everything before storing anything.
    let mut drafts = Vec::with_capacity(reqs.len());
    let mut hashes: Vec<Vec<u8>> = Vec::with_capacity(reqs.len());
    for req in reqs {
        let ca_name = req.profile.issuer(req.ca)?;
        if req.profile.is_holder() && req.identity.is_none() {
            return Err(Error::bad(
                "identity",
                format!("profile {} needs an identity", req.profile.as_str()),
            ));
        }
        let hash = key_hash(&req.csr.spki_der);
        if hashes.contains(&hash) {
            return Err(Error::bad(
                "csr",
                "the same public key twice in one request",
            ));
        }
        hashes.push(hash);
        drafts.push((req, ca_name, prepare_one(h, req, ca_name, prefix, now)?));
    }

    // 3. Store serials, TBS and the intent to sign. The unique index on the serial is the
    // reservation; a collision (astronomically unlikely) draws a new serial and retries.
    let mut attempts = 0;
    let pending = loop {
        let serials: Vec<String> = drafts.iter().map(|(_, _, p)| p.serial().to_hex()).collect();
        // The TBS of a signing certificate names the holder: stored sealed.
        let tbs_stored: Vec<Vec<u8>> = drafts
            .iter()
            .map(|(req, _, p)| cert_store::seal(seal_key, req.profile, p.tbs_der()))
            .collect::<Result<_>>()?;
        let stored = conn.with(|db| {
            db.transaction(|c| {
                crate::db::lock_for_write(c)?;
                guard(c, Stage::Intent)?;
                for ((req, ca_name, _), hash) in drafts.iter().zip(&hashes) {
                    check_key(c, hash, req.profile, *ca_name)?;
                }
                let rows: Vec<NewCertificate<'_>> = drafts
                    .iter()
                    .zip(&serials)
                    .zip(card_ids)
                    .zip(&hashes)
                    .zip(&tbs_stored)
                    .map(
                        |(((((req, ca_name, prepared), serial), card_id), hash), tbs)| {
                            NewCertificate {
                                serial,
                                issuer: ca_name.as_str(),
                                profile: req.profile.as_str(),
                                state: state::TBS_STORED,
                                tbs_der: Some(tbs),
                                not_before: prepared.not_before().timestamp(),
                                not_after: prepared.not_after().timestamp(),
                                created_at: now_s,
                                card_id: *card_id,
                                key_hash: Some(hash),
                                crl_shard: h
                                    .config
                                    .crl
                                    .shard_of(prepared.serial().as_bytes())
                                    .map(i32::from),
                            }
                        },
                    )
                    .collect();
                let ids = CertificateRow::reserve_many(c, &rows)?;
                let intents: Vec<(&str, String, String)> = drafts
                    .iter()
                    .zip(&serials)
                    .map(|((req, ca_name, _), serial)| {
                        (
                            "certificate.sign_intent",
                            format!("serial:{serial}"),
                            format!("ca={} profile={}", ca_name.as_str(), req.profile.as_str()),
                        )
                    })
                    .collect();
                audit::append_many(c, now_s, actor, &intents)?;
                Ok::<_, Error>(ids)
            })
        });
        match stored {
            Ok(ids) => break ids,
            Err(e @ Error::Duplicate(_)) if attempts < 3 => {
                // A serial drawn twice is drawn again; any other duplicate (a key already
                // certified) is the answer.
                attempts += 1;
                let mut redrawn = false;
                for (req, ca_name, prepared) in drafts.iter_mut() {
                    if conn.with(|db| serial_taken(db, &prepared.serial().to_hex()))? {
                        *prepared = prepare_one(h, req, *ca_name, prefix, now)?;
                        redrawn = true;
                    }
                }
                if !redrawn {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    };
    let pending: Vec<Pending> = drafts
        .into_iter()
        .zip(pending)
        .map(|((_, ca, prepared), row_id)| Pending {
            row_id,
            ca,
            prepared,
        })
        .collect();

    // 4. Sign. Each signature is checked against the stored TBS and the CA key.
    let signed = sign_all(h, pending)?;

    // 5. Store the certificates (a signing certificate sealed) and record the issuance.
    let stored: Vec<Vec<u8>> = signed
        .iter()
        .zip(reqs)
        .map(|((_, _, _, der), req)| cert_store::seal(seal_key, req.profile, der))
        .collect::<Result<_>>()?;
    conn.with(|db| {
        db.transaction(|c| {
            crate::db::lock_for_write(c)?;
            guard(c, Stage::Store)?;
            for ((row_id, _, serial_hex, _), der) in signed.iter().zip(&stored) {
                if CertificateRow::store_certificate(c, *row_id, der, now_s)? != 1 {
                    return Err(Error::Changed(format!(
                        "serial {serial_hex} was not awaiting its certificate"
                    )));
                }
            }
            let issued: Vec<(&str, String, String)> = signed
                .iter()
                .map(|(_, ca, serial, _)| {
                    (
                        "certificate.issued",
                        format!("serial:{serial}"),
                        format!("ca={}", ca.as_str()),
                    )
                })
                .collect();
            audit::append_many(c, now_s, actor, &issued)?;
            Ok(())
        })
    })?;
    Ok(signed
        .into_iter()
        .map(|(_, ca, serial, der)| Issued { serial, der, ca })
        .collect())
}

fn prepare_one(
    h: &Hierarchy,
    req: &IssueRequest,
    ca_name: CaName,
    prefix: u16,
    now: DateTime<Utc>,
) -> Result<issuer::Prepared> {
    let ca = h.ca(ca_name)?;
    let ee = EeRequest {
        profile: req.profile,
        spki_der: req.csr.spki_der.clone(),
        identity: req.identity.clone(),
        common_name: req.csr.common_name.clone(),
        dns_names: req.csr.dns_names.clone(),
    };
    let parts = ee_parts(
        &h.config,
        &h.urls,
        &ca.view,
        &ee,
        Serial::generate(prefix)?,
        now,
    )?;
    issuer::prepare(&parts, &ca.ee_lint_context(req.profile)?)
}

type Signed = (i64, CaName, String, Vec<u8>);

fn sign_one(h: &Hierarchy, p: Pending) -> Result<Signed> {
    let ca = h.ca(p.ca)?;
    let serial = p.prepared.serial().to_hex();
    Ok((
        p.row_id,
        p.ca,
        serial,
        p.prepared.sign(ca.signer.as_ref(), &ca.public_key)?,
    ))
}

fn sign_all(h: &Hierarchy, pending: Vec<Pending>) -> Result<Vec<Signed>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    if pending.len() < PARALLEL_SIGNING_FROM || workers < 2 {
        return pending.into_iter().map(|p| sign_one(h, p)).collect();
    }
    let chunk = pending.len().div_ceil(workers);
    let mut chunks: Vec<Vec<Pending>> = Vec::new();
    let mut it = pending.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(chunk).collect());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    c.into_iter()
                        .map(|p| sign_one(h, p))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut out = Vec::new();
        for handle in handles {
            out.extend(
                handle
                    .join()
                    .map_err(|_| Error::Internal("signing thread panicked".into()))??,
            );
        }
        Ok(out)
    })
}

fn serial_taken(conn: &mut DbConn, serial_hex: &str) -> Result<bool> {
    Ok(CertificateRow::by_serial(conn, serial_hex)?.is_some())
}
