//! The issuer's two pure steps. [`prepare`] encodes and lints a to-be-signed certificate
//! and returns a one-shot [`Prepared`]; [`Prepared::sign`] consumes it, signs, and checks
//! that the signed certificate carries exactly the linted bytes and verifies under the
//! CA's key. Storing the serial, the TBS and the audit entry between the two is the
//! service's job (service::issuance), in that order.

use crate::ca::lint::{LintContext, lint};
use crate::ca::profile::{TbsParts, assemble};
use crate::ca::serial::Serial;
use crate::ca::signer::KeySigner;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};

/// A linted to-be-signed certificate, ready to sign once.
#[derive(Debug)]
pub struct Prepared {
    tbs_der: Vec<u8>,
    serial: Serial,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
}

impl Prepared {
    /// The linted TBS bytes (stored before signing).
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs_der
    }
    /// Serial.
    pub fn serial(&self) -> &Serial {
        &self.serial
    }
    /// Validity start.
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }
    /// Validity end.
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// Sign. Consumes the token so the same TBS is never signed twice by this path.
    /// `ca_key` is the CA's public key (parsed once by the caller) to check the signature.
    pub fn sign(self, signer: &dyn KeySigner, ca_key: &PKey<Public>) -> Result<Vec<u8>> {
        let algorithm = signer.algorithm();
        let signature = signer.sign(&self.tbs_der)?;
        let der = assemble(&self.tbs_der, &algorithm, &signature)?;
        // The certificate must carry the very bytes that were linted and stored: its first
        // element, read raw, is compared byte for byte.
        if first_element(&der)? != self.tbs_der.as_slice() {
            return Err(Error::Internal(
                "signed TBS differs from the linted TBS".into(),
            ));
        }
        // A faulty signature (hardware or library fault) never leaves the CA.
        let mut v = openssl::sign::Verifier::new(MessageDigest::sha256(), ca_key)?;
        v.update(&self.tbs_der)?;
        if !v.verify(&signature)? {
            return Err(Error::Crypto(
                "signature does not verify under the CA key".into(),
            ));
        }
        Ok(der)
    }
}

/// Encode and lint; nothing is signed when a rule fails.
pub fn prepare(parts: &TbsParts, ctx: &LintContext) -> Result<Prepared> {
    let tbs_der = parts.encode()?;
    lint(&tbs_der, ctx)?;
    Ok(Prepared {
        tbs_der,
        serial: parts.serial.clone(),
        not_before: parts.not_before,
        not_after: parts.not_after,
    })
}

/// The raw bytes (header included) of the first element inside a DER SEQUENCE.
fn first_element(der_bytes: &[u8]) -> Result<&[u8]> {
    use der::{Decode, Encode, Header, Reader, SliceReader};
    let mut outer = SliceReader::new(der_bytes)?;
    let header = Header::decode(&mut outer)?;
    let body = outer.read_slice(header.length())?;
    let mut inner = SliceReader::new(body)?;
    let tbs_header = Header::decode(&mut inner)?;
    let total = (tbs_header.encoded_len()? + tbs_header.length())?;
    Ok(&body[..usize::try_from(total)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_element_is_the_tbs() -> Result<()> {
        // SEQUENCE { SEQUENCE { INTEGER 5 }, NULL }
        let der = [0x30, 0x07, 0x30, 0x03, 0x02, 0x01, 0x05, 0x05, 0x00];
        assert_eq!(first_element(&der)?, &[0x30, 0x03, 0x02, 0x01, 0x05]);
        assert!(first_element(&[0x30, 0x05, 0x30]).is_err());
        Ok(())
    }
}
