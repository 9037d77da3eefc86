//! RFC 5280 checks made on every to-be-signed certificate before it is signed. Each rule has
//! a name; the first failing rule stops issuance and is reported by name.

use crate::ca::profile::{KP_CLIENT_AUTH, KP_OCSP_SIGNING, KP_SERVER_AUTH, OCSP_NOCHECK, Profile};
use crate::error::{Error, Result};
use chrono::{DateTime, Datelike, Utc};
use const_oid::AssociatedOid;
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use std::collections::HashSet;
use x509_cert::TbsCertificate;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::time::Time;

/// What the certificate is meant to be.
#[derive(Debug, Clone)]
pub struct LintContext {
    /// A CA certificate (root or issuing CA)?
    pub is_ca: bool,
    /// Self-signed (the root)?
    pub self_signed: bool,
    /// End-entity profile, if an end entity.
    pub profile: Option<Profile>,
    /// DER of the issuer's subject name.
    pub issuer_subject_der: Vec<u8>,
    /// The issuer's subject key identifier (None for the root itself).
    pub issuer_ski: Option<Vec<u8>>,
    /// The issuer's notAfter (None for the root itself).
    pub issuer_not_after: Option<DateTime<Utc>>,
    /// DER of the issuer key's signature AlgorithmIdentifier.
    pub issuer_algorithm_der: Vec<u8>,
}

/// The names of all rules, in the order they run (documentation and tests).
pub const RULES: &[&str] = &[
    "der_canonical",
    "version_is_v3",
    "serial_positive",
    "serial_at_most_20_octets",
    "serial_has_64_random_bits",
    "signature_algorithm_matches_issuer",
    "issuer_matches_ca_subject",
    "validity_ordered",
    "validity_time_encoding",
    "validity_within_issuer",
    "subject_present_or_san_critical",
    "country_is_two_letters",
    "no_unique_identifiers",
    "extensions_unique",
    "ski_present_not_critical",
    "aki_present_not_critical_matches_issuer",
    "key_usage_present_critical",
    "key_usage_matches_ca_flag",
    "basic_constraints_for_ca",
    "san_not_empty",
    "eku_matches_profile",
    "public_key_strength",
    "authentication_has_no_personal_data",
    "revocation_pointers_present",
];

pub(crate) fn fail(rule: &'static str, message: impl Into<String>) -> Error {
    Error::Lint {
        rule,
        message: message.into(),
    }
}

pub(crate) fn ensure(cond: bool, rule: &'static str, message: impl Into<String>) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(fail(rule, message))
    }
}

fn time_utc(t: &Time) -> DateTime<Utc> {
    DateTime::<Utc>::from(t.to_system_time())
}

/// Run every rule over `tbs_der`.
pub fn lint(tbs_der: &[u8], ctx: &LintContext) -> Result<()> {
    let tbs = TbsCertificate::from_der(tbs_der)
        .map_err(|e| fail("der_canonical", format!("does not decode: {e}")))?;
    ensure(
        tbs.to_der()? == tbs_der,
        "der_canonical",
        "re-encoding changes the bytes (not DER)",
    )?;
    ensure(
        tbs.version() == Version::V3,
        "version_is_v3",
        "extensions require version 3",
    )?;

    let serial = tbs.serial_number().as_bytes();
    ensure(
        !serial.is_empty() && serial[0] & 0x80 == 0 && serial.iter().any(|b| *b != 0),
        "serial_positive",
        "serial must be positive",
    )?;
    ensure(
        serial.len() <= 20,
        "serial_at_most_20_octets",
        format!("serial has {} octets", serial.len()),
    )?;
    ensure(
        serial.len() >= 9,
        "serial_has_64_random_bits",
        "serial too short to hold 64 random bits",
    )?;

    ensure(
        tbs.signature().to_der()? == ctx.issuer_algorithm_der,
        "signature_algorithm_matches_issuer",
        "signature field does not match the issuer key's algorithm",
    )?;
    ensure(
        tbs.issuer().to_der()? == ctx.issuer_subject_der,
        "issuer_matches_ca_subject",
        "issuer name differs from the CA's subject",
    )?;

    let nb = time_utc(&tbs.validity().not_before);
    let na = time_utc(&tbs.validity().not_after);
    ensure(
        nb < na,
        "validity_ordered",
        "notBefore is not before notAfter",
    )?;
    for (label, t, dt) in [
        ("notBefore", &tbs.validity().not_before, nb),
        ("notAfter", &tbs.validity().not_after, na),
    ] {
        let utc = matches!(t, Time::UtcTime(_));
        ensure(
            utc == (dt.year() < 2050),
            "validity_time_encoding",
            format!("{label} must be UTCTime before 2050 and GeneralizedTime after"),
        )?;
    }
    if let Some(limit) = ctx.issuer_not_after {
        ensure(
            na <= limit,
            "validity_within_issuer",
            "certificate would outlive its issuer",
        )?;
    }

    let exts = tbs.extensions().cloned().unwrap_or_default();
    let find = |oid| exts.iter().find(|e| e.extn_id == oid);
    let san = find(SubjectAltName::OID);
    ensure(
        !tbs.subject().is_empty() || san.is_some_and(|e| e.critical),
        "subject_present_or_san_critical",
        "an empty subject needs a critical subjectAltName",
    )?;
    if let Some(c) = tbs.subject().country()? {
        ensure(
            c.as_str().len() == 2,
            "country_is_two_letters",
            "countryName must be two letters",
        )?;
    }
    ensure(
        tbs.issuer_unique_id().is_none() && tbs.subject_unique_id().is_none(),
        "no_unique_identifiers",
        "CAs must not generate unique identifiers",
    )?;
    let mut seen = HashSet::new();
    for e in &exts {
        ensure(
            seen.insert(e.extn_id),
            "extensions_unique",
            format!("extension {} appears twice", e.extn_id),
        )?;
    }

    let ski = find(SubjectKeyIdentifier::OID);
    ensure(
        ski.is_some_and(|e| !e.critical),
        "ski_present_not_critical",
        "subjectKeyIdentifier missing or critical",
    )?;
    if !ctx.self_signed {
        let aki = find(AuthorityKeyIdentifier::OID).ok_or_else(|| {
            fail(
                "aki_present_not_critical_matches_issuer",
                "authorityKeyIdentifier missing",
            )
        })?;
        ensure(
            !aki.critical,
            "aki_present_not_critical_matches_issuer",
            "authorityKeyIdentifier must not be critical",
        )?;
        let v = AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes())?;
        ensure(
            v.key_identifier.as_ref().map(|k| k.as_bytes().to_vec()) == ctx.issuer_ski,
            "aki_present_not_critical_matches_issuer",
            "authorityKeyIdentifier does not match the issuer's subjectKeyIdentifier",
        )?;
    }

    let ku_ext = find(KeyUsage::OID)
        .ok_or_else(|| fail("key_usage_present_critical", "keyUsage missing"))?;
    ensure(
        ku_ext.critical,
        "key_usage_present_critical",
        "keyUsage should be critical",
    )?;
    let ku = KeyUsage::from_der(ku_ext.extn_value.as_bytes())?;
    ensure(
        !ku.0.is_empty(),
        "key_usage_present_critical",
        "keyUsage has no bits set",
    )?;
    let signs_certs = ku.0.contains(KeyUsages::KeyCertSign) || ku.0.contains(KeyUsages::CRLSign);
    ensure(
        signs_certs == ctx.is_ca,
        "key_usage_matches_ca_flag",
        "keyCertSign/cRLSign only and always on CA certificates",
    )?;

    let bc = find(BasicConstraints::OID);
    if ctx.is_ca {
        let bc = bc.ok_or_else(|| {
            fail(
                "basic_constraints_for_ca",
                "CA certificate without basicConstraints",
            )
        })?;
        ensure(
            bc.critical,
            "basic_constraints_for_ca",
            "basicConstraints must be critical in a CA certificate",
        )?;
        ensure(
            BasicConstraints::from_der(bc.extn_value.as_bytes())?.ca,
            "basic_constraints_for_ca",
            "cA must be TRUE",
        )?;
    } else if let Some(bc) = bc {
        ensure(
            !BasicConstraints::from_der(bc.extn_value.as_bytes())?.ca,
            "basic_constraints_for_ca",
            "end entity marked as CA",
        )?;
    }

    if let Some(s) = san {
        ensure(
            !SubjectAltName::from_der(s.extn_value.as_bytes())?
                .0
                .is_empty(),
            "san_not_empty",
            "subjectAltName is empty",
        )?;
    }

    let eku: Vec<_> = match find(ExtendedKeyUsage::OID) {
        Some(e) => ExtendedKeyUsage::from_der(e.extn_value.as_bytes())?.0,
        None => Vec::new(),
    };
    let want: &[const_oid::ObjectIdentifier] = match ctx.profile {
        None | Some(Profile::Signing) => &[],
        Some(Profile::Authentication | Profile::VerifierClient) => &[KP_CLIENT_AUTH],
        Some(Profile::Ocsp) => &[KP_OCSP_SIGNING],
        Some(Profile::TlsServer) => &[KP_SERVER_AUTH],
    };
    ensure(
        eku == want,
        "eku_matches_profile",
        "extendedKeyUsage does not fit the profile",
    )?;
    if ctx.profile == Some(Profile::Ocsp) {
        ensure(
            find(OCSP_NOCHECK).is_some(),
            "eku_matches_profile",
            "OCSP responder certificate without ocsp-nocheck",
        )?;
    }

    let spki = SubjectPublicKeyInfoOwned::from_der(&tbs.subject_public_key_info().to_der()?)?;
    ensure(
        key_is_strong(&spki),
        "public_key_strength",
        "RSA keys need 2048 bits or more, EC keys P-256",
    )?;

    if ctx.profile == Some(Profile::Authentication) {
        ensure(
            san.is_none(),
            "authentication_has_no_personal_data",
            "authentication certificate must not carry subjectAltName",
        )?;
        let attrs: Vec<_> = tbs.subject().iter().map(|a| a.oid).collect();
        ensure(
            attrs == [const_oid::db::rfc4519::C, const_oid::db::rfc4519::CN]
                || attrs == [const_oid::db::rfc4519::CN, const_oid::db::rfc4519::C],
            "authentication_has_no_personal_data",
            "authentication subject must hold only the country and an opaque name",
        )?;
    }

    if !ctx.is_ca {
        ensure(
            find(const_oid::db::rfc5280::ID_PE_AUTHORITY_INFO_ACCESS).is_some()
                && (ctx.profile == Some(Profile::Ocsp)
                    || find(const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS).is_some()),
            "revocation_pointers_present",
            "end-entity certificates need CRL distribution point and AIA",
        )?;
    }
    Ok(())
}

/// RSAPublicKey (PKCS #1).
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: der::asn1::UintRef<'a>,
    public_exponent: der::asn1::UintRef<'a>,
}

/// Key strength from the SPKI alone (no OpenSSL decoder on the hot path): RSA with a
/// modulus of at least 2048 bits and an odd exponent above 1, or EC on P-256.
pub fn key_is_strong(spki: &SubjectPublicKeyInfoOwned) -> bool {
    const P256: const_oid::ObjectIdentifier =
        const_oid::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    if spki.algorithm.oid == const_oid::db::rfc5912::RSA_ENCRYPTION {
        let Some(bytes) = spki.subject_public_key.as_bytes() else {
            return false;
        };
        let Ok(key) = RsaPublicKey::from_der(bytes) else {
            return false;
        };
        let n = key.modulus.as_bytes();
        let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
        let e = key.public_exponent.as_bytes();
        bits >= 2048 && e.last().is_some_and(|b| b & 1 == 1) && e != [1]
    } else if spki.algorithm.oid == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
        curve == Some(P256)
            && spki
                .subject_public_key
                .as_bytes()
                .is_some_and(|b| b.len() == 65 && b[0] == 4)
    } else {
        false
    }
}
