//! OCSP (RFC 6960): reading requests and writing signed responses. Pure: which status a
//! serial has, and which responder signs, are the service's business (service::ocsp).

use crate::ca::crl::Reason;
use crate::ca::der_write::{header, put_generalized_time, put_len};
use crate::ca::signer::KeySigner;
use crate::error::{Error, Result};
use const_oid::ObjectIdentifier;
use der::asn1::{Int, OctetString};
use der::{Any, Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extensions;

/// id-pkix-ocsp-nonce.
pub const OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-basic.
pub const OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-sha1.
pub const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// id-sha256.
pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// Response status codes that carry no response bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStatus {
    /// The request does not parse.
    MalformedRequest = 1,
    /// Something failed inside the responder.
    InternalError = 2,
    /// Try again later.
    TryLater = 3,
    /// The responder does not answer for that issuer.
    Unauthorized = 6,
}

/// An OCSPResponse without responseBytes.
pub fn error_response(status: ErrorStatus) -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

#[derive(Sequence)]
struct CertIdDer {
    hash_algorithm: AlgorithmIdentifierOwned,
    issuer_name_hash: OctetString,
    issuer_key_hash: OctetString,
    serial_number: Int,
}

#[derive(Sequence)]
struct RequestDer {
    req_cert: CertIdDer,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    single_request_extensions: Option<Extensions>,
}

#[derive(Sequence)]
struct TbsRequestDer {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<u8>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    requestor_name: Option<Any>,
    request_list: Vec<RequestDer>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    request_extensions: Option<Extensions>,
}

#[derive(Sequence)]
struct OcspRequestDer {
    tbs_request: TbsRequestDer,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    optional_signature: Option<Any>,
}

/// Hash algorithm of a CertID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdHash {
    /// SHA-1 (what most clients send).
    Sha1,
    /// SHA-256.
    Sha256,
}

/// One certificate asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    /// Hash algorithm of the two issuer hashes.
    pub hash: IdHash,
    /// Hash of the issuer's subject name DER.
    pub name_hash: Vec<u8>,
    /// Hash of the issuer's public key bits.
    pub key_hash: Vec<u8>,
    /// Serial, big-endian as encoded (minimal two's complement).
    pub serial: Vec<u8>,
    /// The CertID DER, echoed in the response.
    pub raw: Vec<u8>,
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct OcspRequest {
    /// Certificates asked about.
    pub ids: Vec<CertId>,
    /// The nonce extension's value, echoed in the response.
    pub nonce: Option<Vec<u8>>,
}

/// Requests with more certificates than this are refused (one card has two).
pub const MAX_IDS: usize = 16;

/// Parse a DER OCSPRequest. Any error means `malformedRequest`.
pub fn parse_request(der_bytes: &[u8]) -> std::result::Result<OcspRequest, String> {
    let req =
        OcspRequestDer::from_der(der_bytes).map_err(|e| format!("not an OCSPRequest: {e}"))?;
    let tbs = req.tbs_request;
    if tbs.version.is_some_and(|v| v != 0) {
        return Err("unsupported OCSP version".into());
    }
    if tbs.request_list.is_empty() || tbs.request_list.len() > MAX_IDS {
        return Err(format!("between 1 and {MAX_IDS} certificates per request"));
    }
    let mut ids = Vec::with_capacity(tbs.request_list.len());
    for r in tbs.request_list {
        let c = r.req_cert;
        let hash = if c.hash_algorithm.oid == SHA1 {
            IdHash::Sha1
        } else if c.hash_algorithm.oid == SHA256 {
            IdHash::Sha256
        } else {
            return Err(format!("unsupported CertID hash {}", c.hash_algorithm.oid));
        };
        let want = if hash == IdHash::Sha1 { 20 } else { 32 };
        if c.issuer_name_hash.as_bytes().len() != want || c.issuer_key_hash.as_bytes().len() != want
        {
            return Err("issuer hashes have the wrong length".into());
        }
        let raw = c.to_der().map_err(|e| e.to_string())?;
        ids.push(CertId {
            hash,
            name_hash: c.issuer_name_hash.as_bytes().to_vec(),
            key_hash: c.issuer_key_hash.as_bytes().to_vec(),
            serial: c.serial_number.as_bytes().to_vec(),
            raw,
        });
    }
    let nonce = tbs
        .request_extensions
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.extn_id == OCSP_NONCE)
        .map(|e| e.extn_value.as_bytes().to_vec());
    if nonce
        .as_ref()
        .is_some_and(|n| n.is_empty() || n.len() > 128)
    {
        return Err("nonce must be 1 to 128 octets".into());
    }
    Ok(OcspRequest { ids, nonce })
}

/// The status of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not revoked.
    Good,
    /// Revoked (or on hold) since `at` (Unix seconds).
    Revoked {
        /// Revocation time.
        at: i64,
        /// Reason (None for unspecified).
        reason: Option<Reason>,
    },
    /// Not issued by this CA.
    Unknown,
}

/// One answer.
#[derive(Debug, Clone)]
pub struct SingleAnswer<'a> {
    /// The CertID as asked.
    pub cert_id: &'a [u8],
    /// Status.
    pub status: Status,
    /// thisUpdate (Unix seconds).
    pub this_update: i64,
    /// nextUpdate (Unix seconds).
    pub next_update: i64,
}

/// The delegated responder that signs for one CA.
pub struct ResponderKey {
    /// Its certificate (sent with every response).
    pub cert_der: Vec<u8>,
    /// Its key.
    pub signer: Box<dyn KeySigner>,
    /// SHA-1 of its public key bits (ResponderID byKey).
    pub key_hash: [u8; 20],
}

/// A signed, successful OCSPResponse.
pub fn response(
    responder: &ResponderKey,
    produced_at: i64,
    answers: &[SingleAnswer<'_>],
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let mut singles = Vec::with_capacity(answers.len() * 96);
    for a in answers {
        let mut s = Vec::with_capacity(96);
        s.extend_from_slice(a.cert_id);
        match a.status {
            Status::Good => s.extend_from_slice(&[0x80, 0x00]),
            Status::Unknown => s.extend_from_slice(&[0x82, 0x00]),
            Status::Revoked { at, reason } => {
                let mut r = Vec::with_capacity(24);
                put_generalized_time(&mut r, at)?;
                if let Some(reason) = reason.filter(|r| *r != Reason::Unspecified) {
                    r.extend_from_slice(&[0xa0, 0x03, 0x0a, 0x01, reason.code() as u8]);
                }
                s.extend_from_slice(&header(0xa1, r.len()));
                s.extend_from_slice(&r);
            }
        }
        put_generalized_time(&mut s, a.this_update)?;
        let mut next = Vec::with_capacity(17);
        put_generalized_time(&mut next, a.next_update)?;
        s.extend_from_slice(&header(0xa0, next.len()));
        s.extend_from_slice(&next);
        singles.extend_from_slice(&header(0x30, s.len()));
        singles.extend_from_slice(&s);
    }
    let mut data = Vec::with_capacity(singles.len() + 128);
    data.extend_from_slice(&[0xa2, 0x16, 0x04, 0x14]);
    data.extend_from_slice(&responder.key_hash);
    put_generalized_time(&mut data, produced_at)?;
    data.extend_from_slice(&header(0x30, singles.len()));
    data.extend_from_slice(&singles);
    if let Some(n) = nonce {
        // [1] EXPLICIT Extensions { Extension { id-pkix-ocsp-nonce, OCTET STRING n } }
        let mut e = Vec::with_capacity(n.len() + 20);
        OCSP_NONCE.encode_to_vec(&mut e)?;
        e.push(0x04);
        put_len(&mut e, n.len());
        e.extend_from_slice(n);
        let ext = [header(0x30, e.len()), e].concat();
        let exts = [header(0x30, ext.len()), ext].concat();
        data.extend_from_slice(&header(0xa1, exts.len()));
        data.extend_from_slice(&exts);
    }
    let tbs = [header(0x30, data.len()), data].concat();
    let signature = responder.signer.sign(&tbs)?;
    let mut basic = tbs;
    responder.signer.algorithm().encode_to_vec(&mut basic)?;
    basic.push(0x03);
    put_len(&mut basic, signature.len() + 1);
    basic.push(0x00);
    basic.extend_from_slice(&signature);
    let certs = [
        header(0x30, responder.cert_der.len()),
        responder.cert_der.clone(),
    ]
    .concat();
    basic.extend_from_slice(&header(0xa0, certs.len()));
    basic.extend_from_slice(&certs);
    let basic = [header(0x30, basic.len()), basic].concat();

    let mut bytes = Vec::with_capacity(basic.len() + 32);
    OCSP_BASIC.encode_to_vec(&mut bytes)?;
    bytes.push(0x04);
    put_len(&mut bytes, basic.len());
    bytes.extend_from_slice(&basic);
    let bytes = [header(0x30, bytes.len()), bytes].concat();
    let mut body = vec![0x0a, 0x01, 0x00];
    body.extend_from_slice(&header(0xa0, bytes.len()));
    body.extend_from_slice(&bytes);
    Ok([header(0x30, body.len()), body].concat())
}

/// (hash algorithm, issuer name hash, issuer key hash) for SHA-1 and SHA-256.
pub type IssuerHashes = [(IdHash, Vec<u8>, Vec<u8>); 2];

/// The issuer hashes a CertID must carry for a CA: (SHA-1, SHA-256) of its subject name and
/// of its public key bits.
pub fn issuer_hashes(cert_der: &[u8]) -> Result<IssuerHashes> {
    let cert = x509_cert::Certificate::from_der(cert_der)?;
    let name = cert.tbs_certificate().subject().to_der()?;
    let key = cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    Ok([
        (
            IdHash::Sha1,
            openssl::sha::sha1(&name).to_vec(),
            openssl::sha::sha1(&key).to_vec(),
        ),
        (
            IdHash::Sha256,
            openssl::sha::sha256(&name).to_vec(),
            openssl::sha::sha256(&key).to_vec(),
        ),
    ])
}

/// SHA-1 of a certificate's public key bits (ResponderID byKey).
pub fn key_hash(cert_der: &[u8]) -> Result<[u8; 20]> {
    let cert = x509_cert::Certificate::from_der(cert_der)?;
    Ok(openssl::sha::sha1(
        cert.tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
    ))
}

/// Refuse a responder certificate that is not for OCSP signing.
pub fn check_responder(cert_der: &[u8]) -> Result<()> {
    let cert = x509_cert::Certificate::from_der(cert_der)?;
    let eku = cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()?
        .map(|(_, e)| e.0.contains(&crate::ca::profile::KP_OCSP_SIGNING))
        .unwrap_or(false);
    if eku {
        Ok(())
    } else {
        Err(Error::Config(
            "the OCSP responder certificate lacks id-kp-OCSPSigning".into(),
        ))
    }
}
