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
use der::{Decode, Encode};
use x509_cert::Certificate;

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
    pub fn sign(self, signer: &dyn KeySigner) -> Result<Vec<u8>> {
        let algorithm = signer.algorithm();
        let signature = signer.sign(&self.tbs_der)?;
        let der = assemble(&self.tbs_der, &algorithm, &signature)?;
        // The certificate must carry the very bytes that were linted and stored.
        let parsed = Certificate::from_der(&der)?;
        if parsed.tbs_certificate().to_der()? != self.tbs_der {
            return Err(Error::Internal(
                "signed TBS differs from the linted TBS".into(),
            ));
        }
        let x = openssl::x509::X509::from_der(&der)?;
        let key = openssl::pkey::PKey::public_key_from_der(signer.public_key_der())?;
        if !x.verify(&key)? {
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
