//! Certificate serial numbers (SPEC §3): 16 octets = a version byte 0x01 (keeps the number
//! positive and its DER minimal), the instance prefix (2 octets), and 13 random octets
//! (104 bits from openssl's CSPRNG). Uniqueness is enforced by the database.

use crate::error::{Error, Result};

/// A serial number in big-endian bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A fresh serial for instance `prefix`.
    pub fn generate(prefix: u16) -> Result<Self> {
        let mut b = vec![0u8; 16];
        b[0] = 0x01;
        b[1..3].copy_from_slice(&prefix.to_be_bytes());
        openssl::rand::rand_bytes(&mut b[3..])?;
        Ok(Serial(b))
    }

    /// Parse hex (as stored and shown); accepts upper or lower case, optional colons.
    pub fn from_hex(s: &str) -> Result<Self> {
        let clean: String = s.chars().filter(|c| *c != ':').collect();
        if let Some((i, c)) = clean.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
            return Err(Error::bad(
                "serial",
                format!("{c:?} at position {} is not a hexadecimal digit", i + 1),
            ));
        }
        let digits = clean.len();
        if digits % 2 == 1 {
            return Err(Error::bad(
                "serial",
                format!(
                    "has {digits} hexadecimal digits; a serial is whole octets, an even number \
                     of digits (kofu's have 32)"
                ),
            ));
        }
        let b = hex::decode(&clean).map_err(|e| Error::bad("serial", e.to_string()))?;
        if b.is_empty() || b.len() > 20 {
            return Err(Error::bad(
                "serial",
                format!("has {} octets; a serial has 1 to 20", b.len()),
            ));
        }
        if b[0] & 0x80 != 0 {
            return Err(Error::bad(
                "serial",
                "starts with a set high bit, which would make it negative",
            ));
        }
        Ok(Serial(b))
    }

    /// Upper-case hex, as openssl prints it and as stored.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(&self.0)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The instance prefix encoded in a serial of this scheme.
    pub fn prefix(&self) -> Option<u16> {
        (self.0.len() == 16 && self.0[0] == 0x01)
            .then(|| u16::from_be_bytes([self.0[1], self.0[2]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() -> Result<()> {
        let s = Serial::generate(0x00ff)?;
        assert_eq!(s.as_bytes().len(), 16);
        assert_eq!(s.prefix(), Some(0x00ff));
        assert_eq!(Serial::from_hex(&s.to_hex())?, s);
        assert!(Serial::from_hex("80").is_err());
        // Each wrong shape says what is wrong with it.
        let said = |s: &str| Serial::from_hex(s).unwrap_err().to_string();
        let odd = format!("{}0", s.to_hex());
        assert!(
            said(&odd).contains("has 33 hexadecimal digits"),
            "{}",
            said(&odd)
        );
        assert!(
            said("01XY").contains("'X' at position 3"),
            "{}",
            said("01XY")
        );
        assert!(said(&"01".repeat(21)).contains("has 21 octets"));
        assert!(said("").contains("has 0 octets"));
        Ok(())
    }
}
