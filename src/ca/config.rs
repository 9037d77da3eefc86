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
}

impl CaConfig {
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
