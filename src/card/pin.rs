//! The holder's PINs: a 4-digit authentication PIN (利用者証明用) and a 6–16 character
//! signing password (署名用), drawn at random for each card. kofu never stores them in clear:
//! they are sealed with the data key until the PIN mailer has gone out, and the card keeps
//! only what it needs to check them.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Characters of the signing password: upper-case letters and digits as JPKI allows, less
/// those a holder confuses on paper (0/O, 1/I).
const SIGNING_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Length of a generated signing password (JPKI allows 6–16).
pub const SIGNING_LEN: usize = 8;
/// PBKDF2 rounds of the signing-password verifier written to the card.
const VERIFIER_ROUNDS: usize = 10_000;

/// A card's PINs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pins {
    /// Authentication PIN, 4 digits.
    pub auth: String,
    /// Signing password (holders aged 15 and over).
    pub sign: Option<String>,
}

impl std::fmt::Debug for Pins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pins(<redacted>)")
    }
}

/// A uniformly random index below `n` (rejection sampling, no modulo bias).
fn random_below(n: u8) -> Result<u8> {
    let limit = u8::MAX - (u8::MAX % n);
    loop {
        let mut b = [0u8; 1];
        openssl::rand::rand_bytes(&mut b)?;
        if b[0] < limit {
            return Ok(b[0] % n);
        }
    }
}

/// Whether a 4-digit PIN is one that people guess first: all the same digit, or a run
/// up or down (1234, 9876).
pub fn is_weak(pin: &str) -> bool {
    let d: Vec<i16> = pin.bytes().map(|b| i16::from(b) - 48).collect();
    let steps: Vec<i16> = d.windows(2).map(|w| w[1] - w[0]).collect();
    steps.iter().all(|s| *s == 0) || steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1)
}

impl Pins {
    /// Fresh PINs; a signing password only when the card gets a signing key.
    pub fn generate(signing: bool) -> Result<Self> {
        let auth = loop {
            let mut pin = String::with_capacity(4);
            for _ in 0..4 {
                pin.push(char::from(b'0' + random_below(10)?));
            }
            if !is_weak(&pin) {
                break pin;
            }
        };
        let sign = if signing {
            let mut pw = String::with_capacity(SIGNING_LEN);
            for _ in 0..SIGNING_LEN {
                let i = random_below(SIGNING_ALPHABET.len() as u8)?;
                pw.push(char::from(SIGNING_ALPHABET[usize::from(i)]));
            }
            Some(pw)
        } else {
            None
        };
        Ok(Pins { auth, sign })
    }
}

/// The reference data a card keeps to check a password: PBKDF2-HMAC-SHA256 with a random
/// salt, as `pbkdf2-sha256$ROUNDS$SALT$HASH` (hex).
pub fn verifier(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt)?;
    let hash = derive(password, &salt, VERIFIER_ROUNDS)?;
    Ok(format!(
        "pbkdf2-sha256${VERIFIER_ROUNDS}${}${}",
        hex::encode(salt),
        hex::encode(hash)
    ))
}

fn derive(password: &str, salt: &[u8], rounds: usize) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    openssl::pkcs5::pbkdf2_hmac(
        password.as_bytes(),
        salt,
        rounds,
        openssl::hash::MessageDigest::sha256(),
        &mut out,
    )?;
    Ok(out)
}

/// Whether `password` matches a verifier made by [`verifier`].
pub fn check(verifier: &str, password: &str) -> Result<bool> {
    let bad = || Error::Crypto("malformed PIN verifier".into());
    let parts: Vec<&str> = verifier.split('$').collect();
    let [alg, rounds, salt, hash] = parts.as_slice() else {
        return Err(bad());
    };
    if *alg != "pbkdf2-sha256" {
        return Err(bad());
    }
    let rounds: usize = rounds.parse().map_err(|_| bad())?;
    let salt = hex::decode(salt).map_err(|_| bad())?;
    let hash = hex::decode(hash).map_err(|_| bad())?;
    let got = derive(password, &salt, rounds)?;
    Ok(hash.len() == got.len() && openssl::memcmp::eq(&hash, &got))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_have_the_promised_shape() {
        for _ in 0..200 {
            let p = Pins::generate(true).unwrap();
            assert_eq!(p.auth.len(), 4);
            assert!(p.auth.bytes().all(|b| b.is_ascii_digit()));
            assert!(!is_weak(&p.auth));
            let s = p.sign.unwrap();
            assert!((6..=16).contains(&s.len()));
            assert!(s.bytes().all(|b| SIGNING_ALPHABET.contains(&b)));
        }
        assert!(Pins::generate(false).unwrap().sign.is_none());
    }

    #[test]
    fn weak_pins_are_recognised() {
        for weak in ["0000", "7777", "1234", "6789", "9876", "3210"] {
            assert!(is_weak(weak), "{weak}");
        }
        for ok in ["1235", "0912", "2580", "1122"] {
            assert!(!is_weak(ok), "{ok}");
        }
    }

    #[test]
    fn verifier_checks_the_password_only() {
        let v = verifier("ABCD2345").unwrap();
        assert!(check(&v, "ABCD2345").unwrap());
        assert!(!check(&v, "ABCD2346").unwrap());
        assert!(!v.contains("ABCD2345"));
        assert!(check("nonsense", "x").is_err());
    }

    #[test]
    fn debug_hides_the_pins() {
        let p = Pins::generate(true).unwrap();
        assert!(!format!("{p:?}").contains(&p.auth));
    }
}
