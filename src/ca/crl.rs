//! CRLs (RFC 5280 §5), encoded as they stream in from the database.
//!
//! [`CrlWriter::new`] encodes the header (version, algorithm, issuer, times) and the CRL
//! extensions, lints them, and reserves room in front of one growing buffer. Each
//! [`CrlWriter::push`] checks one entry and appends its DER to that buffer; nothing else
//! holds the entry list. [`CrlWriter::finish`] writes the headers into the reserved room
//! (right to left, once the lengths are known), signs the contiguous TBSCertList, checks the
//! signature under the CA key, appends the signature and drops the unused room — one
//! buffer from first entry to signed DER.
//!
//! x509-cert's `CrlBuilder` would need every entry as a parsed value (several hundred bytes
//! each) and writes the issuer's *authority* key identifier; this writer uses the CA's own
//! subject key identifier.

use crate::ca::der_write::{header, put_len, put_time};
use crate::ca::lint::{ensure, fail};
use crate::ca::profile::{IssuerView, ext, x509_time};
use crate::ca::signer::KeySigner;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use const_oid::ObjectIdentifier;
use der::asn1::{Ia5String, OctetString, Uint};
use der::{Decode, Encode};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use x509_cert::crl::TbsCertList;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::pkix::crl::dp::{DistributionPoint, IssuingDistributionPoint};
use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber, FreshestCrl};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};

/// id-ce-issuingDistributionPoint (x509-cert 0.3 gives the type a wrong OID).
pub const ID_CE_ISSUING_DISTRIBUTION_POINT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.5.29.28");

/// Revocation reasons used by kofu (SPEC §4), with their RFC 5280 codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Destroyed before delivery. Encoded without a reasonCode (RFC 5280 §5.3.1).
    Unspecified = 0,
    /// Lost or stolen card.
    KeyCompromise = 1,
    /// One of the four fields changed.
    AffiliationChanged = 3,
    /// Renewed: a newer certificate replaces it.
    Superseded = 4,
    /// Death, or the holder's own request.
    CessationOfOperation = 5,
    /// Suspended after a loss report; may be lifted.
    CertificateHold = 6,
    /// Delta CRLs only: a hold that was lifted.
    RemoveFromCrl = 8,
}

impl Reason {
    /// Every reason, for parsing.
    pub const ALL: [Reason; 7] = [
        Reason::Unspecified,
        Reason::KeyCompromise,
        Reason::AffiliationChanged,
        Reason::Superseded,
        Reason::CessationOfOperation,
        Reason::CertificateHold,
        Reason::RemoveFromCrl,
    ];

    /// The RFC 5280 CRLReason code (stored in the database).
    pub fn code(self) -> i32 {
        self as i32
    }

    /// From a stored code.
    pub fn from_code(code: i32) -> Result<Self> {
        Reason::ALL
            .into_iter()
            .find(|r| r.code() == code)
            .ok_or_else(|| Error::Internal(format!("unknown revocation reason code {code}")))
    }

    /// RFC 5280 name (API, audit, screens).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "keyCompromise",
            Reason::AffiliationChanged => "affiliationChanged",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessationOfOperation",
            Reason::CertificateHold => "certificateHold",
            Reason::RemoveFromCrl => "removeFromCRL",
        }
    }
}

/// What a CRL is about.
#[derive(Debug, Clone)]
pub struct CrlSpec<'a> {
    /// The issuing CA.
    pub issuer: &'a IssuerView,
    /// CRL number (monotonic per CA and scope, shared by full and delta CRLs).
    pub number: u64,
    /// Delta CRLs: the number of the full CRL they complete.
    pub base_number: Option<u64>,
    /// thisUpdate.
    pub this_update: DateTime<Utc>,
    /// nextUpdate.
    pub next_update: DateTime<Utc>,
    /// Partitioned CRLs: the shard's URL, carried in IssuingDistributionPoint.
    pub scope_url: Option<String>,
    /// Full CRLs: where the delta CRL is (FreshestCRL).
    pub freshest_url: Option<String>,
}

/// Room kept in front of the entries for the three headers and the fixed fields.
const HEADER_ROOM: usize = 3 * 6;

/// A CRL being encoded. See the module documentation.
pub struct CrlWriter {
    buf: Vec<u8>,
    room: usize,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    count: u64,
    this_update: i64,
    delta: bool,
}

fn uri_point(url: &str) -> Result<DistributionPointName> {
    Ok(DistributionPointName::FullName(vec![
        GeneralName::UniformResourceIdentifier(Ia5String::new(url)?),
    ]))
}

impl CrlWriter {
    /// Encode and lint the header and extensions. `expected` entries size the buffer once.
    pub fn new(spec: &CrlSpec<'_>, expected: usize) -> Result<Self> {
        ensure(
            spec.next_update > spec.this_update,
            "crl_next_update_after_this_update",
            "nextUpdate must be later than thisUpdate",
        )?;
        let mut prefix = Vec::with_capacity(512);
        prefix.extend_from_slice(&[0x02, 0x01, 0x01]); // version v2
        spec.issuer.algorithm.encode_to_vec(&mut prefix)?;
        spec.issuer.subject.encode_to_vec(&mut prefix)?;
        x509_time(spec.this_update)?.encode_to_vec(&mut prefix)?;
        x509_time(spec.next_update)?.encode_to_vec(&mut prefix)?;

        let mut exts = vec![
            ext(
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(spec.issuer.ski.clone())?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
                false,
            )?,
            ext(&CrlNumber(Uint::new(&spec.number.to_be_bytes())?), false)?,
        ];
        if let Some(base) = spec.base_number {
            exts.push(ext(&BaseCrlNumber(Uint::new(&base.to_be_bytes())?), true)?);
        }
        if let Some(url) = &spec.scope_url {
            let idp = IssuingDistributionPoint {
                distribution_point: Some(uri_point(url)?),
                only_contains_user_certs: true,
                only_contains_ca_certs: false,
                only_some_reasons: None,
                indirect_crl: false,
                only_contains_attribute_certs: false,
            };
            exts.push(Extension {
                extn_id: ID_CE_ISSUING_DISTRIBUTION_POINT,
                critical: true,
                extn_value: OctetString::new(idp.to_der()?)?,
            });
        }
        if let Some(url) = &spec.freshest_url {
            exts.push(ext(
                &FreshestCrl(vec![DistributionPoint {
                    distribution_point: Some(uri_point(url)?),
                    reasons: None,
                    crl_issuer: None,
                }]),
                false,
            )?);
        }
        let exts_der = exts.to_der()?;
        let mut suffix = header(0xa0, exts_der.len());
        suffix.extend_from_slice(&exts_der);

        lint_header(spec, &prefix, &suffix)?;

        let room = HEADER_ROOM + prefix.len();
        // An entry with a 16-octet serial and a reason is 49 bytes; room for 20-octet serials
        // means the buffer is never reallocated (a reallocation copies every entry).
        let mut buf = Vec::with_capacity(room + expected.saturating_mul(54) + suffix.len() + 600);
        buf.resize(room, 0);
        Ok(CrlWriter {
            buf,
            room,
            prefix,
            suffix,
            count: 0,
            this_update: spec.this_update.timestamp(),
            delta: spec.base_number.is_some(),
        })
    }

    /// Append one entry after checking it: a positive serial of at most 20 octets in minimal
    /// form, a revocation time not after thisUpdate, removeFromCRL only in delta CRLs.
    pub fn push(&mut self, serial: &[u8], revoked_at: i64, reason: Reason) -> Result<()> {
        encode_entry(
            &mut self.buf,
            serial,
            revoked_at,
            reason,
            self.this_update,
            self.delta,
        )?;
        self.count += 1;
        Ok(())
    }

    /// Entries so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sign and return the DER CertificateList.
    pub fn finish(self, signer: &dyn KeySigner, ca_key: &PKey<Public>) -> Result<Vec<u8>> {
        let CrlWriter {
            mut buf,
            room,
            prefix,
            suffix,
            count,
            ..
        } = self;
        let entries_len = buf.len() - room;
        buf.extend_from_slice(&suffix);
        let revoked = if count > 0 {
            header(0x30, entries_len)
        } else {
            Vec::new()
        };
        let mut pos = room - revoked.len();
        buf[pos..room].copy_from_slice(&revoked);
        buf[pos - prefix.len()..pos].copy_from_slice(&prefix);
        pos -= prefix.len();
        let tbs_header = header(0x30, buf.len() - pos);
        buf[pos - tbs_header.len()..pos].copy_from_slice(&tbs_header);
        let tbs_start = pos - tbs_header.len();

        let signature = signer.sign(&buf[tbs_start..])?;
        let mut v = openssl::sign::Verifier::new(MessageDigest::sha256(), ca_key)?;
        v.update(&buf[tbs_start..])?;
        if !v.verify(&signature)? {
            return Err(Error::Crypto(
                "CRL signature does not verify under the CA key".into(),
            ));
        }
        signer.algorithm().encode_to_vec(&mut buf)?;
        buf.push(0x03);
        put_len(&mut buf, signature.len() + 1);
        buf.push(0x00);
        buf.extend_from_slice(&signature);
        let outer = header(0x30, buf.len() - tbs_start);
        if outer.len() > tbs_start {
            return Err(Error::Internal("CRL header room too small".into()));
        }
        let start = tbs_start - outer.len();
        buf[start..tbs_start].copy_from_slice(&outer);
        buf.drain(..start);
        Ok(buf)
    }
}

/// Check and encode one revokedCertificates entry. The messages are built only on failure:
/// this runs once per entry.
fn encode_entry(
    b: &mut Vec<u8>,
    serial: &[u8],
    revoked_at: i64,
    reason: Reason,
    this_update: i64,
    delta: bool,
) -> Result<()> {
    ensure(
        !serial.is_empty() && serial.len() <= 20,
        "crl_serial_at_most_20_octets",
        "serial must have 1 to 20 octets",
    )?;
    if serial[0] & 0x80 != 0 || (serial.len() > 1 && serial[0] == 0 && serial[1] & 0x80 == 0) {
        return Err(fail(
            "crl_serial_positive_minimal",
            format!(
                "serial {} is negative or not minimal",
                hex::encode_upper(serial)
            ),
        ));
    }
    if revoked_at > this_update {
        return Err(fail(
            "crl_revocation_date_not_future",
            format!(
                "serial {} revoked after thisUpdate",
                hex::encode_upper(serial)
            ),
        ));
    }
    ensure(
        reason != Reason::RemoveFromCrl || delta,
        "crl_remove_from_crl_only_in_delta",
        "removeFromCRL belongs in delta CRLs only",
    )?;
    let ext_len = if reason == Reason::Unspecified { 0 } else { 14 };
    let time_len = if revoked_at >= 2_524_608_000 { 17 } else { 15 };
    let body = 2 + serial.len() + time_len + ext_len;
    b.push(0x30);
    put_len(b, body);
    b.push(0x02);
    b.push(serial.len() as u8);
    b.extend_from_slice(serial);
    put_time(b, revoked_at)?;
    if reason != Reason::Unspecified {
        // Extensions ::= SEQUENCE { Extension { id-ce-cRLReasons, OCTET STRING { ENUMERATED } } }
        b.extend_from_slice(&[
            0x30,
            0x0c,
            0x30,
            0x0a,
            0x06,
            0x03,
            0x55,
            0x1d,
            0x15,
            0x04,
            0x03,
            0x0a,
            0x01,
            reason.code() as u8,
        ]);
    }
    Ok(())
}

/// Lint the header and extensions, encoded as a TBSCertList without entries and read back
/// with x509-cert (the entries are checked one by one in [`CrlWriter::push`]).
fn lint_header(spec: &CrlSpec<'_>, prefix: &[u8], suffix: &[u8]) -> Result<()> {
    let mut tbs = header(0x30, prefix.len() + suffix.len());
    tbs.extend_from_slice(prefix);
    tbs.extend_from_slice(suffix);
    let list = TbsCertList::<x509_cert::certificate::Rfc5280>::from_der(&tbs)
        .map_err(|e| fail("crl_der_canonical", format!("does not decode: {e}")))?;
    ensure(
        list.to_der()? == tbs,
        "crl_der_canonical",
        "re-encoding changes the bytes (not DER)",
    )?;
    ensure(
        list.version == x509_cert::Version::V2,
        "crl_version_is_v2",
        "CRLs with extensions are version 2",
    )?;
    ensure(
        list.signature.to_der()? == spec.issuer.algorithm.to_der()?,
        "crl_signature_algorithm_matches_issuer",
        "signature algorithm differs from the CA key's",
    )?;
    ensure(
        list.issuer == spec.issuer.subject,
        "crl_issuer_matches_ca_subject",
        "issuer differs from the CA subject",
    )?;
    ensure(
        list.next_update.is_some(),
        "crl_next_update_present",
        "conforming CAs include nextUpdate",
    )?;
    let exts = list.crl_extensions.unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for e in &exts {
        ensure(
            seen.insert(e.extn_id),
            "crl_extensions_unique",
            format!("extension {} twice", e.extn_id),
        )?;
    }
    let find = |oid: ObjectIdentifier| exts.iter().find(|e| e.extn_id == oid);
    let aki = find(const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER)
        .ok_or_else(|| fail("crl_aki_present", "authorityKeyIdentifier missing"))?;
    let aki_v = AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes())?;
    ensure(
        !aki.critical
            && aki_v.key_identifier.as_ref().map(|k| k.as_bytes()) == Some(&spec.issuer.ski[..]),
        "crl_aki_matches_ca_ski",
        "authorityKeyIdentifier must be the CA's subject key identifier, non-critical",
    )?;
    let number = find(const_oid::db::rfc5280::ID_CE_CRL_NUMBER)
        .ok_or_else(|| fail("crl_number_present", "cRLNumber missing"))?;
    let n = CrlNumber::from_der(number.extn_value.as_bytes())?;
    ensure(
        !number.critical && n.0.as_bytes().len() <= 20,
        "crl_number_non_critical_20_octets",
        "cRLNumber must be non-critical and at most 20 octets",
    )?;
    match (
        find(const_oid::db::rfc5280::ID_CE_DELTA_CRL_INDICATOR),
        spec.base_number,
    ) {
        (Some(d), Some(base)) => ensure(
            d.critical && base < spec.number,
            "crl_delta_indicator_critical_and_older",
            "deltaCRLIndicator must be critical and name an older CRL",
        )?,
        (None, None) => {}
        _ => {
            return Err(fail(
                "crl_delta_indicator_consistent",
                "delta flag mismatch",
            ));
        }
    }
    if let Some(idp) = find(ID_CE_ISSUING_DISTRIBUTION_POINT) {
        ensure(
            idp.critical,
            "crl_idp_critical",
            "issuingDistributionPoint must be critical",
        )?;
    }
    ensure(
        !(spec.base_number.is_some() && spec.freshest_url.is_some()),
        "crl_freshest_not_in_delta",
        "a delta CRL does not point at a fresher CRL",
    )?;
    Ok(())
}
