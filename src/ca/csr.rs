//! Certificate signing requests from card-writing stations and infrastructure hosts: parsed
//! (PEM or DER), signature checked, key strength checked. Only the public key and, for
//! infrastructure profiles, the common name and requested DNS names are used; the CA builds
//! every other part of the certificate itself.

use crate::error::{Error, Result};
use const_oid::AssociatedOid;
use der::Decode;
use openssl::x509::X509Req;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::request::{CertReq, ExtensionReq};

/// A checked CSR.
#[derive(Debug, Clone)]
pub struct CheckedCsr {
    /// DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// Subject common name, if any.
    pub common_name: Option<String>,
    /// DNS names from an extensionRequest's subjectAltName.
    pub dns_names: Vec<String>,
}

/// The signature algorithms a request may be signed with: SHA-2 with RSA (PKCS #1 v1.5) or
/// ECDSA. SHA-1 and MD5 signatures prove nothing about who holds the key (collisions are
/// practical), and RSASSA-PSS parameters are not worth trusting from a request.
fn check_signature_algorithm(oid: &const_oid::ObjectIdentifier) -> Result<()> {
    use const_oid::db::rfc5912 as a;
    const ALLOWED: [const_oid::ObjectIdentifier; 6] = [
        a::SHA_256_WITH_RSA_ENCRYPTION,
        a::SHA_384_WITH_RSA_ENCRYPTION,
        a::SHA_512_WITH_RSA_ENCRYPTION,
        a::ECDSA_WITH_SHA_256,
        a::ECDSA_WITH_SHA_384,
        a::ECDSA_WITH_SHA_512,
    ];
    if ALLOWED.contains(oid) {
        return Ok(());
    }
    let name = const_oid::db::DB
        .by_oid(oid)
        .unwrap_or("an unknown algorithm");
    Err(Error::bad(
        "csr",
        format!(
            "the request is signed with {name} ({oid}); sign it with SHA-256 or stronger \
             (sha256WithRSAEncryption or ecdsa-with-SHA256)"
        ),
    ))
}

/// Parse and check a CSR. Accepts PEM or DER.
pub fn check(input: &[u8]) -> Result<CheckedCsr> {
    let trimmed = input.trim_ascii_start();
    let req = if trimmed.starts_with(b"-----BEGIN") {
        X509Req::from_pem(trimmed)
    } else {
        X509Req::from_der(input)
    }
    .map_err(|_| Error::bad("csr", "not a PKCS#10 certificate request (PEM or DER)"))?;
    let key = req
        .public_key()
        .map_err(|_| Error::bad("csr", "the request's public key cannot be read"))?;
    if !req.verify(&key).unwrap_or(false) {
        return Err(Error::bad(
            "csr",
            "the request's signature does not verify (damaged or forged request)",
        ));
    }
    match key.id() {
        openssl::pkey::Id::RSA => {
            if key.bits() < 2048 {
                return Err(Error::bad(
                    "csr",
                    format!(
                        "RSA key of {} bits is too weak; at least 2048 needed",
                        key.bits()
                    ),
                ));
            }
            if key.bits() > 8192 {
                return Err(Error::bad(
                    "csr",
                    "RSA keys above 8192 bits are not accepted",
                ));
            }
        }
        openssl::pkey::Id::EC => {
            let ec = key.ec_key()?;
            if ec.group().curve_name() != Some(openssl::nid::Nid::X9_62_PRIME256V1) {
                return Err(Error::bad(
                    "csr",
                    "only the P-256 curve is accepted for EC keys",
                ));
            }
        }
        _ => {
            return Err(Error::bad(
                "csr",
                "only RSA and ECDSA P-256 keys are accepted",
            ));
        }
    }
    let der = req.to_der()?;
    let parsed = CertReq::from_der(&der)
        .map_err(|e| Error::bad("csr", format!("malformed request: {e}")))?;
    check_signature_algorithm(&parsed.algorithm.oid)?;
    let common_name = parsed
        .info
        .subject
        .common_name()
        .ok()
        .flatten()
        .map(|cn| cn.value().into_owned());
    let mut dns_names = Vec::new();
    for attr in parsed.info.attributes.iter() {
        if attr.oid != ExtensionReq::OID {
            continue;
        }
        for value in attr.values.iter() {
            let req: ExtensionReq = value
                .decode_as()
                .map_err(|e| Error::bad("csr", format!("malformed extension request: {e}")))?;
            for ext in req.0.iter().filter(|e| e.extn_id == SubjectAltName::OID) {
                let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| Error::bad("csr", format!("malformed subjectAltName: {e}")))?;
                for gn in san.0 {
                    if let GeneralName::DnsName(n) = gn {
                        dns_names.push(n.to_string());
                    }
                }
            }
        }
    }
    Ok(CheckedCsr {
        spki_der: key.public_key_to_der()?,
        common_name,
        dns_names,
    })
}
