//! Pure CA code: configuration, profiles, serials, lint, the issuer, key holders. Nothing here
//! touches the database or HTTP; service::ca and service::issuance wire it to storage.

pub mod config;
pub mod crl;
pub mod csr;
pub mod der_write;
pub mod identity;
pub mod issuer;
pub mod keyfile;
pub mod lint;
pub mod ocsp;
pub mod profile;
pub mod serial;
pub mod signer;
pub mod validity;

use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use config::CaConfig;
use der::{Decode, Encode};
use lint::LintContext;
use profile::{CaName, IssuerView, Profile, Urls};
use signer::KeySigner;
use std::collections::BTreeMap;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

/// A CA whose key is available for signing.
pub struct LoadedCa {
    /// Its certificate.
    pub cert_der: Vec<u8>,
    /// What issuing needs to know.
    pub view: IssuerView,
    /// Its key.
    pub signer: Box<dyn KeySigner>,
    /// Its public key, parsed once, to check every signature it makes.
    pub public_key: openssl::pkey::PKey<openssl::pkey::Public>,
}

impl LoadedCa {
    /// Load from a certificate and its key; checks that they belong together.
    pub fn new(name: CaName, cert_der: Vec<u8>, signer: Box<dyn KeySigner>) -> Result<Self> {
        let view = view_of(name, &cert_der)?;
        if view.spki_der != signer.public_key_der() {
            return Err(Error::Config(format!(
                "the {} CA key does not match its certificate",
                name.as_str()
            )));
        }
        let public_key = openssl::pkey::PKey::public_key_from_der(&view.spki_der)?;
        Ok(LoadedCa {
            cert_der,
            view,
            signer,
            public_key,
        })
    }

    /// Lint context for an end entity of `profile` issued by this CA.
    pub fn ee_lint_context(&self, profile: Profile) -> Result<LintContext> {
        Ok(LintContext {
            is_ca: false,
            self_signed: false,
            profile: Some(profile),
            issuer_subject_der: self.view.subject.to_der()?,
            issuer_ski: Some(self.view.ski.clone()),
            issuer_not_after: Some(self.view.not_after),
            issuer_algorithm_der: self.view.algorithm.to_der()?,
        })
    }
}

/// Read what the issuer needs from a CA certificate.
pub fn view_of(name: CaName, cert_der: &[u8]) -> Result<IssuerView> {
    let cert = Certificate::from_der(cert_der)?;
    let tbs = cert.tbs_certificate();
    let (_, ski) = tbs
        .get_extension::<SubjectKeyIdentifier>()?
        .ok_or_else(|| {
            Error::Config(format!(
                "{} CA certificate has no subjectKeyIdentifier",
                name.as_str()
            ))
        })?;
    let spki_der = tbs.subject_public_key_info().to_der()?;
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(&spki_der)?;
    let alg = if spki.algorithm.oid == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY {
        signer::KeyAlgorithm::EcP256
    } else {
        signer::KeyAlgorithm::Rsa2048
    };
    Ok(IssuerView {
        name,
        subject: tbs.subject().clone(),
        ski: ski.0.as_bytes().to_vec(),
        not_after: DateTime::<Utc>::from(tbs.validity().not_after.to_system_time()),
        algorithm: alg.signature_algorithm(),
        spki_der,
    })
}

/// The issuing CAs available to this process, with the configuration and URLs.
pub struct Hierarchy {
    /// CA configuration.
    pub config: CaConfig,
    /// Public URLs.
    pub urls: Urls,
    /// Issuing CAs (the root's key is not loaded for service).
    pub cas: BTreeMap<CaName, LoadedCa>,
    /// DER certificates of every CA, root included.
    pub certs: BTreeMap<CaName, Vec<u8>>,
}

impl Hierarchy {
    /// A loaded issuing CA.
    pub fn ca(&self, name: CaName) -> Result<&LoadedCa> {
        self.cas
            .get(&name)
            .ok_or_else(|| Error::Config(format!("the {} CA is not loaded", name.as_str())))
    }

    /// PEM chain of a CA up to the root (issuing CA first).
    pub fn chain_pem(&self, name: CaName) -> Result<String> {
        let mut out = String::new();
        for n in [name, CaName::Root] {
            if let Some(der) = self.certs.get(&n) {
                out.push_str(&der_to_pem(der)?);
            }
            if n == CaName::Root {
                break;
            }
        }
        Ok(out)
    }
}

/// PEM of a DER certificate.
pub fn der_to_pem(der: &[u8]) -> Result<String> {
    let x = openssl::x509::X509::from_der(der)?;
    String::from_utf8(x.to_pem()?).map_err(|e| Error::Internal(e.to_string()))
}
