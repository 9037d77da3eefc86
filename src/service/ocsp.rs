//! The OCSP responder (SPEC §4): one delegated responder certificate per issuing CA
//! (id-kp-OCSPSigning, ocsp-nocheck, from the infrastructure profile), and a cache of
//! pre-signed responses.
//!
//! Requests without a nonce for one certificate (what browsers, libraries and RFC 5019
//! clients send) are answered from the cache: signed once, signed again after
//! `ocsp.refresh_hours` (long before nextUpdate), and signed again at once when the
//! certificate's status changes ([`OcspService::poll`] follows `status_seq`). A request
//! with a nonce gets a fresh signature that echoes it.

use crate::audit::Actor;
use crate::ca::Hierarchy;
use crate::ca::crl::Reason;
use crate::ca::csr::CheckedCsr;
use crate::ca::ocsp::{
    self, CertId, ErrorStatus, ResponderKey, SingleAnswer, Status, error_response,
};
use crate::ca::profile::{CaName, Profile};
use crate::config::Config;
use crate::db::DbConn;
use crate::db::schema::certificates;
use crate::error::{Error, Result};
use crate::service::issuance::{self, IssueRequest};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use der::Decode;
use diesel::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// The CAs an OCSP responder answers for.
pub const ANSWERING: [CaName; 3] = [
    CaName::Signing,
    CaName::Authentication,
    CaName::Infrastructure,
];

/// A responder certificate is replaced when it has less than this left.
const RENEW_BEFORE_DAYS: i64 = 7;

struct CaResponder {
    ca: CaName,
    hashes: ocsp::IssuerHashes,
    key: ResponderKey,
}

struct Cached {
    der: Bytes,
    produced_at: i64,
    serial: Vec<u8>,
    ca: CaName,
}

/// The responder with its cache. Shared by the HTTP handlers and the background worker.
pub struct OcspService {
    responders: RwLock<Vec<Arc<CaResponder>>>,
    cache: RwLock<HashMap<Vec<u8>, Cached>>,
    seen_seq: AtomicI64,
    validity_s: i64,
    refresh_s: i64,
    cache_entries: usize,
}

/// How a request was answered (metrics, benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// From the pre-signed cache.
    Cached,
    /// Signed for this request.
    Signed,
    /// An error status.
    Error,
}

fn lock_err<T>(_: T) -> Error {
    Error::Internal("OCSP cache lock poisoned".into())
}

/// The status of one certificate from its row.
fn status_of(row: Option<(String, Option<i64>, Option<i32>)>) -> Result<Status> {
    Ok(match row {
        Some((state, _, _)) if state != crate::db::models::ca::CertState::Issued => Status::Unknown,
        None => Status::Unknown,
        Some((_, Some(at), Some(code))) => Status::Revoked {
            at,
            reason: Some(Reason::from_code(code)?),
        },
        Some(_) => Status::Good,
    })
}

fn lookup(conn: &mut DbConn, ca: CaName, serial: &[u8]) -> Result<Status> {
    let row = certificates::table
        .filter(certificates::serial.eq(hex::encode_upper(serial)))
        .filter(certificates::issuer.eq(ca.as_str()))
        .select((
            certificates::state,
            certificates::revoked_at,
            certificates::revocation_reason,
        ))
        .first::<(String, Option<i64>, Option<i32>)>(conn)
        .optional()?;
    status_of(row)
}

/// Make sure every issuing CA has a current responder certificate, issuing one where it is
/// missing, for another key, or close to expiry. Returns the responders.
fn ensure_responders(
    conn: &mut DbConn,
    cfg: &Config,
    h: &Hierarchy,
    now: DateTime<Utc>,
) -> Result<Vec<Arc<CaResponder>>> {
    let mut out = Vec::new();
    for ca in ANSWERING {
        let Ok(loaded) = h.ca(ca) else { continue };
        let signer = crate::service::ca::responder_key(cfg, ca, h.config.end_entity_key)?;
        let spki = signer.public_key_der().to_vec();
        let candidates = crate::db::models::ca::CertificateRow::live_ders(
            conn,
            ca.as_str(),
            Profile::Ocsp.as_str(),
            now.timestamp() + RENEW_BEFORE_DAYS * 86_400,
        )?;
        let mut current = None;
        for der_bytes in candidates {
            let cert = x509_cert::Certificate::from_der(&der_bytes)?;
            if der::Encode::to_der(cert.tbs_certificate().subject_public_key_info())? == spki {
                current = Some(der_bytes);
                break;
            }
        }
        let cert_der = match current {
            Some(d) => d,
            None => {
                let req = IssueRequest {
                    profile: Profile::Ocsp,
                    ca: Some(ca),
                    csr: CheckedCsr {
                        spki_der: spki.clone(),
                        common_name: None,
                        dns_names: Vec::new(),
                    },
                    identity: None,
                };
                issuance::issue(conn, h, &req, &Actor::system(), cfg.instance_prefix, now)?.der
            }
        };
        ocsp::check_responder(&cert_der)?;
        out.push(Arc::new(CaResponder {
            ca,
            hashes: ocsp::issuer_hashes(&loaded.cert_der)?,
            key: ResponderKey {
                key_hash: ocsp::key_hash(&cert_der)?,
                cert_der,
                signer,
            },
        }));
    }
    Ok(out)
}

impl OcspService {
    /// Load (or make) the responders and start with an empty cache.
    pub fn start(
        conn: &mut DbConn,
        cfg: &Config,
        h: &Hierarchy,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let responders = ensure_responders(conn, cfg, h, now)?;
        let seq = crate::service::revocation::current_seq(conn)?;
        Ok(OcspService {
            responders: RwLock::new(responders),
            cache: RwLock::new(HashMap::new()),
            seen_seq: AtomicI64::new(seq),
            validity_s: i64::from(h.config.ocsp.validity_hours) * 3600,
            refresh_s: i64::from(h.config.ocsp.refresh_hours) * 3600,
            cache_entries: h.config.ocsp.cache_entries,
        })
    }

    /// Replace responder certificates close to expiry (the worker calls this hourly).
    pub fn renew_responders(
        &self,
        conn: &mut DbConn,
        cfg: &Config,
        h: &Hierarchy,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let fresh = ensure_responders(conn, cfg, h, now)?;
        *self.responders.write().map_err(lock_err)? = fresh;
        Ok(())
    }

    /// The responder of `ca`, when every certificate asked about is `ca`'s: a responder
    /// answers only for its own CA (a request for another CA's certificate, or for two CAs
    /// at once, is `unauthorized`), so a verifier granted one CA cannot learn another's
    /// statuses by posting to the responder it may use.
    fn responder_for(&self, ca: CaName, ids: &[CertId]) -> Result<Option<Arc<CaResponder>>> {
        let responders = self.responders.read().map_err(lock_err)?;
        let Some(r) = responders.iter().find(|r| r.ca == ca) else {
            return Ok(None);
        };
        let ours = |id: &CertId| {
            r.hashes
                .iter()
                .any(|(h, n, k)| *h == id.hash && *n == id.name_hash && *k == id.key_hash)
        };
        Ok((!ids.is_empty() && ids.iter().all(ours)).then(|| Arc::clone(r)))
    }

    /// Answer from the cache without touching the database, when possible: only with a
    /// response `ca`'s responder signed.
    pub fn cached(&self, ca: CaName, body: &[u8], now: DateTime<Utc>) -> Option<Bytes> {
        let req = ocsp::parse_request(body).ok()?;
        if req.nonce.is_some() || req.ids.len() != 1 {
            return None;
        }
        let cache = self.cache.read().ok()?;
        let hit = cache.get(&req.ids[0].raw)?;
        (hit.ca == ca && now.timestamp() - hit.produced_at < self.refresh_s)
            .then(|| hit.der.clone())
    }

    /// Answer a request (DER body) to `ca`'s responder, reading statuses from the database
    /// and signing. Callers try [`OcspService::cached`] first, which needs no database.
    pub fn answer(
        &self,
        conn: &mut DbConn,
        ca: CaName,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(Bytes, Answered)> {
        let req = match ocsp::parse_request(body) {
            Ok(r) => r,
            Err(_) => {
                return Ok((
                    Bytes::from(error_response(ErrorStatus::MalformedRequest)),
                    Answered::Error,
                ));
            }
        };
        let Some(responder) = self.responder_for(ca, &req.ids)? else {
            return Ok((
                Bytes::from(error_response(ErrorStatus::Unauthorized)),
                Answered::Error,
            ));
        };
        let now_s = now.timestamp();
        let mut statuses = Vec::with_capacity(req.ids.len());
        for id in &req.ids {
            statuses.push(lookup(conn, responder.ca, &id.serial)?);
        }
        let answers: Vec<SingleAnswer<'_>> = req
            .ids
            .iter()
            .zip(&statuses)
            .map(|(id, status)| SingleAnswer {
                cert_id: &id.raw,
                status: *status,
                this_update: now_s,
                next_update: now_s + self.validity_s,
            })
            .collect();
        let der = Bytes::from(ocsp::response(
            &responder.key,
            now_s,
            &answers,
            req.nonce.as_deref(),
        )?);
        if req.nonce.is_none() && req.ids.len() == 1 {
            let mut cache = self.cache.write().map_err(lock_err)?;
            // A response already cached is replaced; a new one only while there is room.
            if cache.len() < self.cache_entries || cache.contains_key(&req.ids[0].raw) {
                cache.insert(
                    req.ids[0].raw.clone(),
                    Cached {
                        der: der.clone(),
                        produced_at: now_s,
                        serial: req.ids[0].serial.clone(),
                        ca: responder.ca,
                    },
                );
            }
        }
        Ok((der, Answered::Signed))
    }

    fn resign(&self, conn: &mut DbConn, keys: Vec<Vec<u8>>, now: DateTime<Utc>) -> Result<usize> {
        let now_s = now.timestamp();
        let responders: HashMap<CaName, Arc<CaResponder>> = self
            .responders
            .read()
            .map_err(lock_err)?
            .iter()
            .map(|r| (r.ca, Arc::clone(r)))
            .collect();
        let mut done = 0;
        for raw in keys {
            let (serial, ca) = match self.cache.read().map_err(lock_err)?.get(&raw) {
                Some(c) => (c.serial.clone(), c.ca),
                None => continue,
            };
            let Some(responder) = responders.get(&ca) else {
                self.cache.write().map_err(lock_err)?.remove(&raw);
                continue;
            };
            let status = lookup(conn, ca, &serial)?;
            let der = ocsp::response(
                &responder.key,
                now_s,
                &[SingleAnswer {
                    cert_id: &raw,
                    status,
                    this_update: now_s,
                    next_update: now_s + self.validity_s,
                }],
                None,
            )?;
            self.cache.write().map_err(lock_err)?.insert(
                raw,
                Cached {
                    der: Bytes::from(der),
                    produced_at: now_s,
                    serial,
                    ca,
                },
            );
            done += 1;
        }
        Ok(done)
    }

    /// Sign again, at once, the cached responses of certificates whose status changed since
    /// the last poll. Returns how many were refreshed.
    pub fn poll(&self, conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize> {
        let seen = self.seen_seq.load(Ordering::Acquire);
        let changed: Vec<(String, Option<i64>)> = certificates::table
            .filter(certificates::status_seq.gt(seen))
            .select((certificates::serial, certificates::status_seq))
            .load(conn)?;
        if changed.is_empty() {
            return Ok(0);
        }
        let top = changed.iter().filter_map(|(_, s)| *s).max().unwrap_or(seen);
        let serials: HashSet<Vec<u8>> = changed
            .iter()
            .filter_map(|(s, _)| hex::decode(s).ok())
            .collect();
        let keys: Vec<Vec<u8>> = self
            .cache
            .read()
            .map_err(lock_err)?
            .iter()
            .filter(|(_, c)| serials.contains(&c.serial))
            .map(|(k, _)| k.clone())
            .collect();
        let n = self.resign(conn, keys, now)?;
        self.seen_seq.fetch_max(top, Ordering::AcqRel);
        Ok(n)
    }

    /// Sign again the cached responses older than `refresh_hours`, before they go stale.
    pub fn refresh(&self, conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize> {
        let keys: Vec<Vec<u8>> = self
            .cache
            .read()
            .map_err(lock_err)?
            .iter()
            .filter(|(_, c)| now.timestamp() - c.produced_at >= self.refresh_s)
            .map(|(k, _)| k.clone())
            .collect();
        self.resign(conn, keys, now)
    }
}
