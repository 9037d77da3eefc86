//! Issuing one end-entity certificate, in the order that leaves a record of intent before any
//! signature exists (after boulder): reserve and store the serial → encode and lint the TBS
//! → store the TBS → audit "about to sign" → sign → check the signed TBS → store the
//! certificate → audit "issued". A crash between any two steps leaves a `reserved` or
//! `tbs_stored` row, never an unrecorded signed certificate.

use crate::audit::{self, Actor};
use crate::ca::Hierarchy;
use crate::ca::csr::CheckedCsr;
use crate::ca::identity::Identity;
use crate::ca::issuer;
use crate::ca::profile::{CaName, EeRequest, Profile, ee_parts};
use crate::ca::serial::Serial;
use crate::db::DbConn;
use crate::db::models::ca::{CertificateRow, NewCertificate, state};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use diesel::Connection;

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

/// Issue one certificate. `prefix` is this instance's serial prefix.
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

/// Issue several certificates: every input is checked and every TBS linted first (one bad
/// request stores nothing), then all serials, TBS and intents are stored in one
/// transaction, signed (across the machine's cores for larger batches), and all
/// certificates stored in one transaction. A crash in between leaves `tbs_stored` rows.
pub fn issue_batch(
    conn: &mut impl ConnSource,
    h: &Hierarchy,
    reqs: &[IssueRequest],
    actor: &Actor,
    prefix: u16,
    now: DateTime<Utc>,
) -> Result<Vec<Issued>> {
    issue_for_cards(conn, h, reqs, &vec![None; reqs.len()], actor, prefix, now)
}

/// [`issue_batch`], with each certificate row linked to the card its key lives on
/// (`card_ids[i]` for `reqs[i]`), in the same transaction that records the intent to sign.
pub fn issue_for_cards(
    conn: &mut impl ConnSource,
    h: &Hierarchy,
    reqs: &[IssueRequest],
    card_ids: &[Option<i64>],
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
    for req in reqs {
        let ca_name = req.profile.issuer(req.ca)?;
        if req.profile.is_holder() && req.identity.is_none() {
            return Err(Error::bad(
                "identity",
                format!("profile {} needs --identity", req.profile.as_str()),
            ));
        }
        drafts.push((req, ca_name, prepare_one(h, req, ca_name, prefix, now)?));
    }

    // 3. Store serials, TBS and the intent to sign. The unique index on the serial is the
    // reservation; a collision (astronomically unlikely) draws a new serial and retries.
    let mut attempts = 0;
    let pending = loop {
        let serials: Vec<String> = drafts.iter().map(|(_, _, p)| p.serial().to_hex()).collect();
        let stored = conn.with(|db| {
            db.transaction(|c| {
                let rows: Vec<NewCertificate<'_>> = drafts
                    .iter()
                    .zip(&serials)
                    .zip(card_ids)
                    .map(
                        |(((req, ca_name, prepared), serial), card_id)| NewCertificate {
                            serial,
                            issuer: ca_name.as_str(),
                            profile: req.profile.as_str(),
                            state: state::TBS_STORED,
                            tbs_der: Some(prepared.tbs_der()),
                            not_before: prepared.not_before().timestamp(),
                            not_after: prepared.not_after().timestamp(),
                            created_at: now_s,
                            card_id: *card_id,
                            crl_shard: h
                                .config
                                .crl
                                .shard_of(prepared.serial().as_bytes())
                                .map(i32::from),
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
            Err(Error::Conflict(_)) if attempts < 3 => {
                attempts += 1;
                for (req, ca_name, prepared) in drafts.iter_mut() {
                    if conn.with(|db| serial_taken(db, &prepared.serial().to_hex()))? {
                        *prepared = prepare_one(h, req, *ca_name, prefix, now)?;
                    }
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

    // 5. Store the certificates and record the issuance.
    conn.with(|db| {
        db.transaction(|c| {
            for (row_id, _, serial_hex, der) in &signed {
                if CertificateRow::store_certificate(c, *row_id, der, now_s)? != 1 {
                    return Err(Error::Conflict(format!(
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
