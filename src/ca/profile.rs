//! Certificate profiles (SPEC §3) and the encoding of the to-be-signed certificate.
//!
//! The CA builds every field itself from checked inputs: the holder profiles take the key
//! from a CSR or card and the four fields from a checked [`Identity`]; the infrastructure
//! profiles take a key and a host or client name.

use crate::ca::config::CaConfig;
use crate::ca::identity::Identity;
use crate::ca::serial::Serial;
use crate::error::{Error, Result};
use chrono::{DateTime, Datelike, Utc};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{BitString, Ia5String, Null, OctetString, PrintableString, Utf8StringRef};
use der::{Any, Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::str::FromStr;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::FreshestCrl;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName, OtherName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, Extensions};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

/// id-kp-serverAuth.
pub const KP_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
/// id-kp-clientAuth.
pub const KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
/// id-kp-OCSPSigning.
pub const KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// id-pkix-ocsp-nocheck.
pub const OCSP_NOCHECK: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// id-ad-ocsp.
pub const AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
/// id-ad-caIssuers.
pub const AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");

/// The CAs of the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaName {
    /// The root.
    Root,
    /// Issues signing certificates.
    Signing,
    /// Issues authentication certificates.
    Authentication,
    /// Issues staff and infrastructure certificates.
    Infrastructure,
}

impl CaName {
    /// All CAs, root first.
    pub const ALL: [CaName; 4] = [
        CaName::Root,
        CaName::Signing,
        CaName::Authentication,
        CaName::Infrastructure,
    ];

    /// Stable name used in files, URLs and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CaName::Root => "root",
            CaName::Signing => "signing",
            CaName::Authentication => "authentication",
            CaName::Infrastructure => "infrastructure",
        }
    }

    /// Parse a stable name.
    pub fn parse(s: &str) -> Result<Self> {
        CaName::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                Error::bad(
                    "ca",
                    format!(
                        "unknown CA {s:?}; expected root, signing, authentication or infrastructure"
                    ),
                )
            })
    }
}

/// End-entity profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// 署名用: the four fields in subjectAltName otherNames, nonRepudiation.
    Signing,
    /// 利用者証明用: nothing personal, clientAuth.
    Authentication,
    /// Delegated OCSP responder of one issuing CA (ocsp-nocheck).
    Ocsp,
    /// A verifier's client certificate for mutual TLS.
    VerifierClient,
    /// The service's TLS server certificate.
    TlsServer,
}

impl Profile {
    /// All profiles.
    pub const ALL: [Profile; 5] = [
        Profile::Signing,
        Profile::Authentication,
        Profile::Ocsp,
        Profile::VerifierClient,
        Profile::TlsServer,
    ];

    /// Stable name (CLI, API, database).
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Signing => "signing",
            Profile::Authentication => "authentication",
            Profile::Ocsp => "ocsp",
            Profile::VerifierClient => "verifier-client",
            Profile::TlsServer => "tls-server",
        }
    }

    /// Parse a profile name; the error lists the known ones.
    pub fn parse(s: &str) -> Result<Self> {
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Profile::ALL.iter().map(|p| p.as_str()).collect();
                Error::bad(
                    "profile",
                    format!(
                        "unknown profile {s:?}; known profiles: {}",
                        known.join(", ")
                    ),
                )
            })
    }

    /// Whether the profile is for a card holder (needs an identity).
    pub fn is_holder(self) -> bool {
        matches!(self, Profile::Signing | Profile::Authentication)
    }

    /// The CA that issues this profile. OCSP responders are issued by the CA they answer
    /// for (`requested`, default infrastructure); the others have a fixed issuer.
    pub fn issuer(self, requested: Option<CaName>) -> Result<CaName> {
        match (self, requested) {
            (Profile::Signing, None | Some(CaName::Signing)) => Ok(CaName::Signing),
            (Profile::Authentication, None | Some(CaName::Authentication)) => {
                Ok(CaName::Authentication)
            }
            (Profile::Ocsp, None) => Ok(CaName::Infrastructure),
            (Profile::Ocsp, Some(CaName::Root)) => Err(Error::bad(
                "ca",
                "the root is offline; its status comes from its CRL, not OCSP",
            )),
            (Profile::Ocsp, Some(ca)) => Ok(ca),
            (Profile::VerifierClient | Profile::TlsServer, None | Some(CaName::Infrastructure)) => {
                Ok(CaName::Infrastructure)
            }
            (p, Some(ca)) => Err(Error::bad(
                "ca",
                format!(
                    "profile {} is not issued by the {} CA",
                    p.as_str(),
                    ca.as_str()
                ),
            )),
        }
    }
}

/// Public URLs of the repository (CRLs, OCSP, CA certificates).
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// From the configured public base URL.
    pub fn new(base: &str) -> Self {
        Urls {
            base: base.trim_end_matches('/').to_string(),
        }
    }
    /// Full CRL of a CA.
    pub fn crl(&self, ca: CaName) -> String {
        self.crl_scope(ca, None)
    }
    /// Full CRL of a CA's shard (None: the whole CRL).
    pub fn crl_scope(&self, ca: CaName, shard: Option<u16>) -> String {
        format!("{}/crl/{}", self.base, crl_file(ca, shard, false))
    }
    /// Delta CRL of a CA's shard (None: the whole CRL).
    pub fn delta_crl(&self, ca: CaName, shard: Option<u16>) -> String {
        format!("{}/crl/{}", self.base, crl_file(ca, shard, true))
    }
    /// OCSP responder of a CA.
    pub fn ocsp(&self, ca: CaName) -> String {
        format!("{}/ocsp/{}", self.base, ca.as_str())
    }
    /// DER certificate of a CA.
    pub fn ca_cert(&self, ca: CaName) -> String {
        format!("{}/ca/{}.crt", self.base, ca.as_str())
    }
}

/// File name of a CRL under `/crl/`: `signing.crl`, `signing-delta.crl`, `signing-3.crl`,
/// `signing-3-delta.crl`.
pub fn crl_file(ca: CaName, shard: Option<u16>, delta: bool) -> String {
    let shard = shard.map(|s| format!("-{s}")).unwrap_or_default();
    let delta = if delta { "-delta" } else { "" };
    format!("{}{shard}{delta}.crl", ca.as_str())
}

/// What the issuer needs to know about itself.
#[derive(Debug, Clone)]
pub struct IssuerView {
    /// Which CA.
    pub name: CaName,
    /// Its subject (the issued certificate's issuer).
    pub subject: Name,
    /// Its subject key identifier.
    pub ski: Vec<u8>,
    /// Its notAfter.
    pub not_after: DateTime<Utc>,
    /// The signature algorithm of its key.
    pub algorithm: AlgorithmIdentifierOwned,
    /// Its public key (SPKI DER).
    pub spki_der: Vec<u8>,
}

/// Input for an end-entity certificate.
#[derive(Debug, Clone)]
pub struct EeRequest {
    /// Profile.
    pub profile: Profile,
    /// Subject public key (SPKI DER), already checked.
    pub spki_der: Vec<u8>,
    /// Holder identity (holder profiles).
    pub identity: Option<Identity>,
    /// Host or client name (infrastructure profiles).
    pub common_name: Option<String>,
    /// DNS names (TLS server).
    pub dns_names: Vec<String>,
}

/// Escape a value for an RFC 4514 string.
fn rfc4514(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Build a Name from (attribute, value) pairs, most significant first (C, O, L, CN).
pub fn name(parts: &[(&str, &str)]) -> Result<Name> {
    let s: Vec<String> = parts
        .iter()
        .rev()
        .map(|(k, v)| format!("{k}={}", rfc4514(v)))
        .collect();
    Name::from_str(&s.join(",")).map_err(|e| Error::Internal(format!("cannot encode name: {e}")))
}

/// A random opaque common name (32 hex digits) for holder certificates.
pub fn opaque_cn() -> Result<String> {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b)?;
    Ok(hex::encode_upper(b))
}

/// X.509 time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
pub fn x509_time(t: DateTime<Utc>) -> Result<Time> {
    let secs = u64::try_from(t.timestamp()).map_err(|_| Error::bad("time", "before 1970"))?;
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))?;
    Ok(if t.year() < 2050 {
        Time::UtcTime(der::asn1::UtcTime::from_date_time(dt)?)
    } else {
        Time::GeneralTime(der::asn1::GeneralizedTime::from_date_time(dt))
    })
}

/// An extension from an encodable value.
pub fn ext<T: Encode + AssociatedOid>(v: &T, critical: bool) -> Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(v.to_der()?)?,
    })
}

/// SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1).
pub fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)?;
    Ok(openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec())
}

fn uri(s: &str) -> Result<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(s)?))
}

fn crl_dp(url: &str) -> Result<Extension> {
    ext(
        &CrlDistributionPoints(vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
            reasons: None,
            crl_issuer: None,
        }]),
        false,
    )
}

fn aia(ocsp: Option<&str>, ca_issuers: &str) -> Result<Extension> {
    let mut v = Vec::new();
    if let Some(o) = ocsp {
        v.push(AccessDescription {
            access_method: AD_OCSP,
            access_location: uri(o)?,
        });
    }
    v.push(AccessDescription {
        access_method: AD_CA_ISSUERS,
        access_location: uri(ca_issuers)?,
    });
    ext(&AuthorityInfoAccessSyntax(v), false)
}

fn policies(oid: ObjectIdentifier) -> Result<Extension> {
    ext(
        &CertificatePolicies(vec![PolicyInformation {
            policy_identifier: oid,
            policy_qualifiers: None,
        }]),
        false,
    )
}

fn key_usage(flags: impl Into<flagset::FlagSet<KeyUsages>>) -> Result<Extension> {
    ext(&KeyUsage(flags.into()), true)
}

fn aki(issuer_ski: &[u8]) -> Result<Extension> {
    ext(
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(issuer_ski)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )
}

fn other_name(oid: ObjectIdentifier, value: Any) -> GeneralName {
    GeneralName::OtherName(OtherName {
        type_id: oid,
        value,
    })
}

/// The six holder-field otherName values of a signing certificate.
pub fn holder_other_names(cfg: &CaConfig, id: &Identity) -> Result<Vec<GeneralName>> {
    let arc = cfg.fields_arc()?;
    let utf8 = |s: &str| -> Result<Any> { Ok(Any::encode_from(&Utf8StringRef::new(s)?)?) };
    let printable = |s: &str| -> Result<Any> { Ok(Any::encode_from(&PrintableString::new(s)?)?) };
    let dob = id.person.birth_date.format("%Y%m%d").to_string();
    Ok(vec![
        other_name(CaConfig::child(arc, 1)?, utf8(&id.person.name)?),
        other_name(CaConfig::child(arc, 2)?, utf8(&id.name_substitute)?),
        other_name(
            CaConfig::child(arc, 3)?,
            printable(id.person.sex.iso5218())?,
        ),
        other_name(CaConfig::child(arc, 4)?, printable(&dob)?),
        other_name(CaConfig::child(arc, 5)?, utf8(&id.person.address)?),
        other_name(CaConfig::child(arc, 6)?, utf8(&id.address_substitute)?),
    ])
}

/// The TBSCertificate as encoded (x509-cert keeps its fields crate-private, so the CA encodes
/// its own and reads it back with x509-cert for linting).
#[derive(Sequence)]
struct TbsOut {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Extensions,
}

/// The Certificate around already-encoded TBS bytes (kept byte for byte).
#[derive(Sequence)]
struct CertOut {
    tbs: Any,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// Parts of a to-be-signed certificate.
pub struct TbsParts {
    /// Serial.
    pub serial: Serial,
    /// Issuer name and key.
    pub issuer: Name,
    /// Signature algorithm (of the issuer's key).
    pub algorithm: AlgorithmIdentifierOwned,
    /// Subject.
    pub subject: Name,
    /// Subject key.
    pub spki_der: Vec<u8>,
    /// Validity.
    pub not_before: DateTime<Utc>,
    /// Validity end.
    pub not_after: DateTime<Utc>,
    /// Extensions.
    pub extensions: Extensions,
}

impl TbsParts {
    /// DER of the TBSCertificate.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let tbs = TbsOut {
            version: Version::V3,
            serial_number: SerialNumber::new(self.serial.as_bytes())?,
            signature: self.algorithm.clone(),
            issuer: self.issuer.clone(),
            validity: Validity::new(x509_time(self.not_before)?, x509_time(self.not_after)?),
            subject: self.subject.clone(),
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&self.spki_der)?,
            extensions: self.extensions.clone(),
        };
        Ok(tbs.to_der()?)
    }
}

/// Wrap TBS bytes and a signature into a Certificate.
pub fn assemble(
    tbs_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    signature: &[u8],
) -> Result<Vec<u8>> {
    let cert = CertOut {
        tbs: Any::from_der(tbs_der)?,
        signature_algorithm: algorithm.clone(),
        signature: BitString::from_bytes(signature)?,
    };
    Ok(cert.to_der()?)
}

/// Extensions of a CA certificate. `issuer_ski` is None for the self-signed root.
pub fn ca_extensions(
    spki_der: &[u8],
    issuer_ski: Option<&[u8]>,
    path_len: Option<u8>,
    urls: &Urls,
    policy: Option<ObjectIdentifier>,
) -> Result<Extensions> {
    let mut v = vec![
        ext(
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
            true,
        )?,
        key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature)?,
        ext(
            &SubjectKeyIdentifier(OctetString::new(key_identifier(spki_der)?)?),
            false,
        )?,
    ];
    if let Some(aki_bytes) = issuer_ski {
        v.push(aki(aki_bytes)?);
        v.push(crl_dp(&urls.crl(CaName::Root))?);
        v.push(aia(None, &urls.ca_cert(CaName::Root))?);
    }
    if let Some(p) = policy {
        v.push(policies(p)?);
    }
    Ok(v)
}

/// Subject, validity end and extensions of an end-entity certificate.
pub fn ee_parts(
    cfg: &CaConfig,
    urls: &Urls,
    issuer: &IssuerView,
    req: &EeRequest,
    serial: Serial,
    now: DateTime<Utc>,
) -> Result<TbsParts> {
    let policy_arc = cfg.policies_arc()?;
    let ski = ext(
        &SubjectKeyIdentifier(OctetString::new(key_identifier(&req.spki_der)?)?),
        false,
    )?;
    let mut exts = vec![aki(&issuer.ski)?, ski];
    let lifetimes = &cfg.infrastructure_lifetimes;
    let days = |d: u32| now + chrono::Duration::days(i64::from(d));
    let (subject, not_after) = match req.profile {
        Profile::Signing | Profile::Authentication => {
            let id = req.identity.as_ref().ok_or_else(|| {
                Error::bad("identity", "holder profiles need the holder's identity")
            })?;
            let not_after = crate::ca::validity::certificate_not_after(id.person.birth_date, now);
            if req.profile == Profile::Signing {
                if !cfg.signing_age_reached(id.person.birth_date, now) {
                    let age = crate::ca::validity::age_on(
                        id.person.birth_date,
                        crate::ca::validity::jst_date(now),
                    );
                    return Err(Error::bad(
                        "birth_date",
                        format!(
                            "the holder is {age}; signing certificates are not issued under {}",
                            cfg.signing_min_age
                        ),
                    ));
                }
                exts.push(key_usage(
                    KeyUsages::DigitalSignature | KeyUsages::NonRepudiation,
                )?);
                exts.push(ext(&SubjectAltName(holder_other_names(cfg, id)?), false)?);
                exts.push(policies(CaConfig::child(policy_arc, 1)?)?);
                let cn = opaque_cn()?;
                (
                    name(&[
                        ("C", &cfg.country),
                        ("L", &id.municipality_code),
                        ("CN", &cn),
                    ])?,
                    not_after,
                )
            } else {
                exts.push(key_usage(KeyUsages::DigitalSignature)?);
                exts.push(ext(&ExtendedKeyUsage(vec![KP_CLIENT_AUTH]), false)?);
                exts.push(policies(CaConfig::child(policy_arc, 2)?)?);
                let cn = opaque_cn()?;
                (name(&[("C", &cfg.country), ("CN", &cn)])?, not_after)
            }
        }
        Profile::Ocsp => {
            exts.push(key_usage(KeyUsages::DigitalSignature)?);
            exts.push(ext(&ExtendedKeyUsage(vec![KP_OCSP_SIGNING]), false)?);
            exts.push(Extension {
                extn_id: OCSP_NOCHECK,
                critical: false,
                extn_value: OctetString::new(Null.to_der()?)?,
            });
            exts.push(policies(CaConfig::child(policy_arc, 3)?)?);
            let cn = format!("{} OCSP Responder", issuer_cn(issuer)?);
            (
                name(&[("C", &cfg.country), ("O", &cfg.organization), ("CN", &cn)])?,
                days(lifetimes.ocsp_days),
            )
        }
        Profile::VerifierClient | Profile::TlsServer => {
            let cn = req
                .common_name
                .as_deref()
                .ok_or_else(|| Error::bad("csr", "the request needs a subject common name"))?;
            check_host_or_client_name(cn, req.profile == Profile::TlsServer)?;
            let (eku, lifetime) = if req.profile == Profile::TlsServer {
                let mut dns: Vec<String> = req.dns_names.clone();
                if dns.is_empty() {
                    dns.push(cn.to_string());
                }
                let mut names = Vec::new();
                for d in &dns {
                    check_host_or_client_name(d, true)?;
                    names.push(GeneralName::DnsName(Ia5String::new(d)?));
                }
                exts.push(ext(&SubjectAltName(names), false)?);
                (KP_SERVER_AUTH, lifetimes.tls_server_days)
            } else {
                (KP_CLIENT_AUTH, lifetimes.verifier_client_days)
            };
            let ku = if req.spki_der_is_rsa()? {
                KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
            } else {
                KeyUsages::DigitalSignature.into()
            };
            exts.push(key_usage(ku)?);
            exts.push(ext(&ExtendedKeyUsage(vec![eku]), false)?);
            exts.push(policies(CaConfig::child(policy_arc, 3)?)?);
            (
                name(&[("C", &cfg.country), ("O", &cfg.organization), ("CN", cn)])?,
                days(lifetime),
            )
        }
    };
    if req.profile != Profile::Ocsp {
        let shard = cfg.crl.shard_of(serial.as_bytes());
        exts.push(crl_dp(&urls.crl_scope(issuer.name, shard))?);
        exts.push(ext(
            &FreshestCrl(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(
                    &urls.delta_crl(issuer.name, shard)
                )?])),
                reasons: None,
                crl_issuer: None,
            }]),
            false,
        )?);
        exts.push(aia(
            Some(&urls.ocsp(issuer.name)),
            &urls.ca_cert(issuer.name),
        )?);
    } else {
        exts.push(aia(None, &urls.ca_cert(issuer.name))?);
    }
    // Never outlive the issuer.
    let not_after = not_after.min(issuer.not_after);
    Ok(TbsParts {
        serial,
        issuer: issuer.subject.clone(),
        algorithm: issuer.algorithm.clone(),
        subject,
        spki_der: req.spki_der.clone(),
        not_before: now,
        not_after,
        extensions: exts,
    })
}

impl EeRequest {
    fn spki_der_is_rsa(&self) -> Result<bool> {
        let spki = SubjectPublicKeyInfoOwned::from_der(&self.spki_der)?;
        Ok(spki.algorithm.oid == const_oid::db::rfc5912::RSA_ENCRYPTION)
    }
}

fn issuer_cn(issuer: &IssuerView) -> Result<String> {
    Ok(issuer
        .subject
        .common_name()?
        .map(|c| c.value().into_owned())
        .unwrap_or_else(|| issuer.name.as_str().into()))
}

/// Host names and client names: letters, digits, '-', '.', at most 64 characters.
fn check_host_or_client_name(s: &str, dns: bool) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || (!dns && c == ' ');
    if s.is_empty() || s.len() > 64 || !s.chars().all(ok_char) || s.starts_with(['-', '.']) {
        return Err(Error::bad(
            "csr",
            format!(
                "{s:?} is not an acceptable {} (letters, digits, '-', '.', at most 64)",
                if dns { "host name" } else { "client name" }
            ),
        ));
    }
    Ok(())
}
