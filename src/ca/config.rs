//! The CA set-up read from `ca-config/ca.toml`: names, key algorithms, lifetimes and the
//! OID arcs. Strict: unknown keys are errors.

use crate::ca::signer::KeyAlgorithm;
use crate::error::{Error, Result};
use const_oid::ObjectIdentifier;
use serde::Deserialize;
use std::path::Path;

/// One CA of the hierarchy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSpec {
    /// Subject common name.
    pub common_name: String,
    /// Key algorithm.
    pub key: KeyAlgorithm,
    /// Lifetime in years.
    pub validity_years: u32,
}

/// Lifetimes of the infrastructure profiles, in days.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfraLifetimes {
    /// OCSP responder certificates (short: they carry ocsp-nocheck).
    pub ocsp_days: u32,
    /// Verifier client certificates.
    pub verifier_client_days: u32,
    /// The service's TLS server certificate.
    pub tls_server_days: u32,
}

/// CRL publication (SPEC §4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrlConfig {
    /// Partitions of each CA's CRL (IssuingDistributionPoint); 0 = one CRL per CA. Fixed in
    /// each certificate at issuance: a change applies to certificates issued afterwards.
    pub shards: u16,
    /// nextUpdate of full CRLs, in hours.
    pub next_update_hours: u32,
    /// nextUpdate of delta CRLs, in hours.
    pub delta_next_update_hours: u32,
    /// Revocations are published this many seconds after the first of them (coalescing).
    pub publish_delay_seconds: u64,
    /// Revoked certificates stay on full CRLs this long after they expire.
    pub expired_retention_days: u32,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            shards: 0,
            next_update_hours: 24,
            delta_next_update_hours: 1,
            publish_delay_seconds: 60,
            expired_retention_days: 90,
        }
    }
}

impl CrlConfig {
    /// The shard a certificate with this serial points at (None when not partitioned).
    /// Serials end in random octets, so shards fill evenly.
    pub fn shard_of(&self, serial: &[u8]) -> Option<u16> {
        if self.shards == 0 {
            return None;
        }
        let n = serial.len();
        let tail = u16::from_be_bytes([
            serial.get(n.wrapping_sub(2)).copied().unwrap_or(0),
            serial.last().copied().unwrap_or(0),
        ]);
        Some(tail % self.shards)
    }
}

/// OCSP responses (SPEC §4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcspConfig {
    /// nextUpdate of a response, in hours after it is signed.
    pub validity_hours: u32,
    /// Cached responses older than this are signed again before they are served.
    pub refresh_hours: u32,
    /// At most this many pre-signed responses are kept (about 1.6 KB each); beyond it,
    /// answers are signed per request.
    pub cache_entries: usize,
}

impl Default for OcspConfig {
    fn default() -> Self {
        OcspConfig {
            validity_hours: 24,
            refresh_hours: 8,
            cache_entries: 500_000,
        }
    }
}

/// Who may fetch CRLs and ask OCSP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RevocationAccess {
    /// Registered verifiers only (the default: the signing CRL is personal data).
    #[default]
    Verifiers,
    /// Anyone.
    Public,
}

/// The whole CA configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// Country of every subject (always JP for this scheme).
    pub country: String,
    /// Organisation in CA and infrastructure subjects.
    pub organization: String,
    /// Arc under which the six holder-field otherName OIDs live (`.1` … `.6`).
    pub holder_fields_arc: String,
    /// Arc of the certificate policies (`.1` signing, `.2` authentication, `.3` infrastructure).
    pub policy_arc: String,
    /// Minimum age for a signing certificate.
    pub signing_min_age: u32,
    /// Key algorithm expected of end-entity keys (cards, CSRs); stronger keys are accepted.
    pub end_entity_key: KeyAlgorithm,
    /// The offline-style root.
    pub root: CaSpec,
    /// Issuing CA for signing certificates.
    pub signing: CaSpec,
    /// Issuing CA for authentication certificates.
    pub authentication: CaSpec,
    /// Issuing CA for staff and infrastructure certificates.
    pub infrastructure: CaSpec,
    /// Infrastructure profile lifetimes.
    pub infrastructure_lifetimes: InfraLifetimes,
    /// Who may fetch CRLs and ask OCSP.
    #[serde(default)]
    pub revocation_access: RevocationAccess,
    /// CRL publication.
    #[serde(default)]
    pub crl: CrlConfig,
    /// OCSP responses.
    #[serde(default)]
    pub ocsp: OcspConfig,
}

impl CaConfig {
    /// Whether a holder born on `birth` is old enough for a signing certificate on `now`'s
    /// date in Japan: the one test of `signing_min_age`, used by the signing profile and by
    /// the batch runner that decides which keys a card gets.
    pub fn signing_age_reached(
        &self,
        birth: chrono::NaiveDate,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        crate::ca::validity::age_on(birth, crate::ca::validity::jst_date(now))
            >= self.signing_min_age
    }

    /// Read and check the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read CA config {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parse and check TOML text.
    pub fn parse(text: &str) -> Result<Self> {
        let cfg: CaConfig = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        cfg.fields_arc()?;
        cfg.policies_arc()?;
        if cfg.country.len() != 2 || !cfg.country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(Error::Config(format!(
                "country must be two capital letters, got {:?}",
                cfg.country
            )));
        }
        if cfg.root.key.rsa_bits().is_some_and(|b| b < 3072) {
            return Err(Error::Config(
                "root key must be at least RSA-3072 (default RSA-4096)".into(),
            ));
        }
        if cfg.crl.next_update_hours == 0 || cfg.crl.delta_next_update_hours == 0 {
            return Err(Error::Config(
                "crl.next_update_hours and crl.delta_next_update_hours must be at least 1".into(),
            ));
        }
        if cfg.ocsp.refresh_hours == 0 || cfg.ocsp.refresh_hours >= cfg.ocsp.validity_hours {
            return Err(Error::Config(
                "ocsp.refresh_hours must be at least 1 and less than ocsp.validity_hours".into(),
            ));
        }
        Ok(cfg)
    }

    fn arc(field: &str, s: &str) -> Result<ObjectIdentifier> {
        ObjectIdentifier::new(s)
            .map_err(|e| Error::Config(format!("{field}: not an OID ({s:?}): {e}")))
    }

    /// The holder-fields arc as an OID.
    pub fn fields_arc(&self) -> Result<ObjectIdentifier> {
        Self::arc("holder_fields_arc", &self.holder_fields_arc)
    }

    /// The policy arc as an OID.
    pub fn policies_arc(&self) -> Result<ObjectIdentifier> {
        Self::arc("policy_arc", &self.policy_arc)
    }

    /// `<arc>.<n>`.
    pub fn child(arc: ObjectIdentifier, n: u32) -> Result<ObjectIdentifier> {
        arc.push_arc(n)
            .map_err(|e| Error::Config(format!("OID arc {arc} too long: {e}")))
    }
}
