//! Encrypted key files: PKCS#8 `EncryptedPrivateKeyInfo` (RFC 5958) under PBES2 (RFC 8018),
//! with PBKDF2-HMAC-SHA256 at [`ITERATIONS`] and AES-256-CBC, written as an `ENCRYPTED PRIVATE
//! KEY` PEM that `openssl pkey` reads. openssl's own PKCS#8 writer uses 2,048 iterations,
//! which a stolen file's passphrase would not survive for long; reading stays openssl's, so
//! files of any work factor load.

use crate::error::{Error, Result};
use der::asn1::{Null, OctetString};
use der::{Any, Encode, Sequence};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::symm::Cipher;
use spki::AlgorithmIdentifierOwned;

/// PBKDF2 iterations for new and re-wrapped key files: OWASP's figure for PBKDF2-HMAC-SHA256
/// (600,000), about 0.12 s a file here.
pub const ITERATIONS: u32 = 600_000;

const PBES2: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const PBKDF2: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.12");
const HMAC_WITH_SHA256: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.2.9");
const AES256_CBC: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");

#[derive(Sequence)]
struct Pbkdf2Params {
    salt: OctetString,
    iteration_count: u32,
    prf: AlgorithmIdentifierOwned,
}

#[derive(Sequence)]
struct Pbes2Params {
    key_derivation_func: AlgorithmIdentifierOwned,
    encryption_scheme: AlgorithmIdentifierOwned,
}

#[derive(Sequence)]
struct EncryptedPrivateKeyInfo {
    encryption_algorithm: AlgorithmIdentifierOwned,
    encrypted_data: OctetString,
}

fn alg<T: der::EncodeValue + der::Tagged>(
    oid: const_oid::ObjectIdentifier,
    params: &T,
) -> Result<AlgorithmIdentifierOwned> {
    Ok(AlgorithmIdentifierOwned {
        oid,
        parameters: Some(Any::encode_from(params).map_err(der_error)?),
    })
}

fn der_error(e: der::Error) -> Error {
    Error::Crypto(format!("encoding a key file: {e}"))
}

/// `key` as an encrypted PKCS#8 PEM under `passphrase`, at `iterations`.
pub fn encrypt_pem(key: &PKey<Private>, passphrase: &str, iterations: u32) -> Result<Vec<u8>> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt)?;
    openssl::rand::rand_bytes(&mut iv)?;
    let mut kek = [0u8; 32];
    openssl::pkcs5::pbkdf2_hmac(
        passphrase.as_bytes(),
        &salt,
        iterations as usize,
        MessageDigest::sha256(),
        &mut kek,
    )?;
    let plain = Wiped(key.private_key_to_pkcs8()?);
    let sealed = openssl::symm::encrypt(Cipher::aes_256_cbc(), &kek, Some(&iv), &plain.0)?;
    kek.fill(0);
    let kdf = alg(
        PBKDF2,
        &Pbkdf2Params {
            salt: OctetString::new(salt.to_vec()).map_err(der_error)?,
            iteration_count: iterations,
            prf: AlgorithmIdentifierOwned {
                oid: HMAC_WITH_SHA256,
                parameters: Some(Any::from(Null)),
            },
        },
    )?;
    let scheme = alg(
        AES256_CBC,
        &OctetString::new(iv.to_vec()).map_err(der_error)?,
    )?;
    let info = EncryptedPrivateKeyInfo {
        encryption_algorithm: alg(
            PBES2,
            &Pbes2Params {
                key_derivation_func: kdf,
                encryption_scheme: scheme,
            },
        )?,
        encrypted_data: OctetString::new(sealed).map_err(der_error)?,
    };
    let der = info.to_der().map_err(der_error)?;
    Ok(pem("ENCRYPTED PRIVATE KEY", &der))
}

/// A buffer wiped when dropped (the plain PKCS#8 of a CA key).
struct Wiped(Vec<u8>);

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// Decrypt an encrypted PKCS#8 PEM (any PBES2 work factor openssl reads).
pub fn decrypt_pem(pem: &[u8], passphrase: &str) -> Result<PKey<Private>> {
    Ok(PKey::private_key_from_pem_passphrase(
        pem,
        passphrase.as_bytes(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_reads_what_is_written_and_refuses_a_wrong_passphrase() {
        let key = PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let pem = encrypt_pem(&key, "correct horse", 1_000).unwrap();
        assert!(pem.starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        let back = decrypt_pem(&pem, "correct horse").unwrap();
        assert!(back.public_eq(&key));
        assert!(decrypt_pem(&pem, "wrong").is_err());
    }
}
