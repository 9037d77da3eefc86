//! Personal data at rest (SPEC §6): AES-256-GCM with a data key from configuration, and a
//! keyed hash (HMAC-SHA-256) for the lookups that need equality. Two sub-keys are derived
//! from the configured key, one per purpose. A sealed value is
//! `0x01 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, bound to its table by the associated data so
//! a value cannot be moved from one table to another.

use crate::error::{Error, Result};
use openssl::cipher_ctx::CipherCtx;
use openssl::sha::Sha256;
use openssl::symm::{Cipher, decrypt_aead};

const VERSION: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 16;

/// Precomputed HMAC-SHA-256 states (inner and outer pads already absorbed), so each keyed
/// hash costs two SHA-256 finishes and no allocation of an OpenSSL context.
#[derive(Clone)]
struct Hmac {
    inner: Sha256,
    outer: Sha256,
}

impl Hmac {
    fn new(key: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&openssl::sha::sha256(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha256::new();
        inner.update(&block.map(|b| b ^ 0x36));
        let mut outer = Sha256::new();
        outer.update(&block.map(|b| b ^ 0x5c));
        Hmac { inner, outer }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut i = self.inner.clone();
        for p in parts {
            // Length-prefixed so ("ab","c") and ("a","bc") differ.
            i.update(&(p.len() as u32).to_be_bytes());
            i.update(p);
        }
        let mut o = self.outer.clone();
        o.update(&i.finish());
        o.finish()
    }
}

/// A keyed AES-256-GCM context; each value gets a fresh random nonce.
pub struct Sealer {
    ctx: CipherCtx,
}

impl Sealer {
    /// Encrypt `plain` for `table` (same format as [`DataKey::seal`]).
    pub fn seal(&mut self, table: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE];
        openssl::rand::rand_bytes(&mut nonce)?;
        self.ctx.encrypt_init(None, None, Some(&nonce))?;
        let mut out = Vec::with_capacity(1 + NONCE + plain.len() + TAG + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        self.ctx.cipher_update(table.as_bytes(), None)?;
        self.ctx.cipher_update_vec(plain, &mut out)?;
        self.ctx.cipher_final_vec(&mut out)?;
        let mut tag = [0u8; TAG];
        self.ctx.tag(&mut tag)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Seal a serialisable value as JSON.
    pub fn seal_json<T: serde::Serialize>(&mut self, table: &str, v: &T) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(v).map_err(|e| Error::Internal(e.to_string()))?;
        self.seal(table, &json)
    }
}

/// The data key and its derived sub-keys.
#[derive(Clone)]
pub struct DataKey {
    enc: [u8; 32],
    index: Hmac,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(***)")
    }
}

impl DataKey {
    /// From 32 bytes of key material.
    pub fn new(master: &[u8; 32]) -> Self {
        let derive = Hmac::new(master);
        DataKey {
            enc: derive.mac(&[b"kofu pii encryption v1"]),
            index: Hmac::new(&derive.mac(&[b"kofu pii index v1"])),
        }
    }

    /// From 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes = hex::decode(s.trim())
            .map_err(|_| Error::Config("data key: expected 64 hex digits".into()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Config("data key: expected 32 bytes (64 hex digits)".into()))?;
        Ok(Self::new(&arr))
    }

    /// A fresh random key as hex (for first start).
    pub fn generate_hex() -> Result<String> {
        let mut b = [0u8; 32];
        openssl::rand::rand_bytes(&mut b)?;
        Ok(hex::encode(b))
    }

    /// Encrypt `plain` for `table`.
    pub fn seal(&self, table: &str, plain: &[u8]) -> Result<Vec<u8>> {
        self.sealer()?.seal(table, plain)
    }

    /// A reusable encryption context for sealing many values on one thread (bulk imports):
    /// the key schedule is set up once instead of per value.
    pub fn sealer(&self) -> Result<Sealer> {
        let mut ctx = CipherCtx::new()?;
        ctx.encrypt_init(
            Some(openssl::cipher::Cipher::aes_256_gcm()),
            Some(&self.enc),
            None,
        )?;
        Ok(Sealer { ctx })
    }

    /// Decrypt a value sealed for `table`; tampering or the wrong key is an error.
    pub fn open(&self, table: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < 1 + NONCE + TAG || sealed[0] != VERSION {
            return Err(Error::Crypto(
                "sealed personal data has an unknown format".into(),
            ));
        }
        let (nonce, rest) = sealed[1..].split_at(NONCE);
        let (ct, tag) = rest.split_at(rest.len() - TAG);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.enc,
            Some(nonce),
            table.as_bytes(),
            ct,
            tag,
        )
        .map_err(|_| {
            Error::Crypto("personal data does not decrypt (wrong data key or altered row)".into())
        })
    }

    /// Seal a serialisable value as JSON.
    pub fn seal_json<T: serde::Serialize>(&self, table: &str, v: &T) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(v).map_err(|e| Error::Internal(e.to_string()))?;
        self.seal(table, &json)
    }

    /// Open a sealed JSON value.
    pub fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        sealed: &[u8],
    ) -> Result<T> {
        serde_json::from_slice(&self.open(table, sealed)?)
            .map_err(|e| Error::Internal(format!("sealed JSON: {e}")))
    }

    /// Keyed hash of the parts for equality lookups on encrypted data: HMAC-SHA-256
    /// truncated to 128 bits, which keeps index entries small.
    pub fn index_bytes(&self, parts: &[&str]) -> Vec<u8> {
        let bytes: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
        self.index.mac(&bytes)[..16].to_vec()
    }

    /// [`DataKey::index_bytes`] as 32 hex digits.
    pub fn index(&self, parts: &[&str]) -> String {
        hex::encode(self.index_bytes(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_openssl() -> Result<()> {
        let key = [7u8; 32];
        let h = Hmac::new(&key);
        let ours = h.mac(&[b"abc"]);
        let pkey = openssl::pkey::PKey::hmac(&key)?;
        let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)?;
        s.update(&3u32.to_be_bytes())?;
        s.update(b"abc")?;
        assert_eq!(ours.to_vec(), s.sign_to_vec()?);
        Ok(())
    }

    #[test]
    fn seal_open_and_tamper() -> Result<()> {
        let k = DataKey::new(&[1u8; 32]);
        let sealed = k.seal("residents", "山田".as_bytes())?;
        assert_eq!(k.open("residents", &sealed)?, "山田".as_bytes());
        assert!(
            k.open("applications", &sealed).is_err(),
            "bound to its table"
        );
        let mut bad = sealed.clone();
        let n = bad.len();
        bad[n / 2] ^= 1;
        assert!(k.open("residents", &bad).is_err());
        assert!(DataKey::new(&[2u8; 32]).open("residents", &sealed).is_err());
        assert_ne!(
            k.seal("residents", b"x")?,
            k.seal("residents", b"x")?,
            "fresh nonce each time"
        );
        assert_eq!(k.index(&["a", "bc"]), k.index(&["a", "bc"]));
        assert_ne!(k.index(&["a", "bc"]), k.index(&["ab", "c"]));
        Ok(())
    }
}
