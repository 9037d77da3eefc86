//! Card numbers: 12 random digits and a check digit (13 digits, shown as 4-4-5). The check
//! digit is Damm's (a quasigroup of order 10), which catches every single wrong digit and
//! every swap of neighbouring digits a clerk might type. (The modulus-11 rule of 個人番号
//! folds two remainders into one digit and so misses some single-digit errors.) Uniqueness
//! is the database's job (a unique index); a collision draws again.

use crate::error::{Error, Result};

/// Damm's weakly totally anti-symmetric quasigroup of order 10.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

fn damm(digits: impl IntoIterator<Item = u8>) -> u8 {
    digits
        .into_iter()
        .fold(0, |interim, d| DAMM[usize::from(interim)][usize::from(d)])
}

/// Check digit of 12 digits.
pub fn check_digit(digits: &[u8; 12]) -> u8 {
    damm(digits.iter().copied())
}

/// A fresh card number (13 digits), from openssl's CSPRNG without modulo bias.
pub fn generate() -> Result<String> {
    let mut digits = [0u8; 12];
    let mut i = 0;
    let mut buf = [0u8; 32];
    while i < 12 {
        openssl::rand::rand_bytes(&mut buf)?;
        for b in buf {
            // 250 = 25 × 10: bytes above it would favour low digits.
            if b < 250 && i < 12 {
                digits[i] = b % 10;
                i += 1;
            }
        }
    }
    let mut s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    s.push(char::from(b'0' + check_digit(&digits)));
    Ok(s)
}

/// A card number that has passed [`parse`]: 13 digits with a good check digit. Services that
/// act on a card take one, so a number is checked once, where it comes in (a form, a URL, the
/// command line), and never handed on unchecked. It reads as its 13 digits (`Deref<str>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct CardNumber(String);

impl CardNumber {
    /// The 13 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Shown as 1234-5678-90123.
    pub fn grouped(&self) -> String {
        display(&self.0)
    }
}

impl std::ops::Deref for CardNumber {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<String> for CardNumber {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<str> for CardNumber {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// Check a card number as typed (spaces and hyphens allowed).
pub fn parse(input: &str) -> Result<CardNumber> {
    let s: String = crate::jp::fold(input)
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if s.len() != 13 || !s.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::bad("card_number", "a card number has 13 digits"));
    }
    let b = s.as_bytes();
    if damm(b.iter().map(|c| c - b'0')) != 0 {
        return Err(Error::bad(
            "card_number",
            "the check digit does not match: is a digit mistyped?",
        ));
    }
    Ok(CardNumber(s))
}

/// Shown as 1234-5678-90123.
pub fn display(number: &str) -> String {
    if number.len() == 13 {
        format!("{}-{}-{}", &number[..4], &number[4..8], &number[8..])
    } else {
        number.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_numbers_check_and_every_typo_is_caught() -> Result<()> {
        for _ in 0..200 {
            let n = generate()?;
            assert_eq!(parse(&n)?, n);
            assert_eq!(parse(&display(&n))?, n);
            let b: Vec<u8> = n.bytes().collect();
            // Every single wrong digit.
            for i in 0..13 {
                for d in b'0'..=b'9' {
                    if d != b[i] {
                        let mut t = b.clone();
                        t[i] = d;
                        assert!(
                            parse(std::str::from_utf8(&t).unwrap_or("")).is_err(),
                            "{n}: digit {i} -> {}",
                            d as char
                        );
                    }
                }
            }
            // Every swap of neighbouring, different digits.
            for i in 0..12 {
                if b[i] != b[i + 1] {
                    let mut t = b.clone();
                    t.swap(i, i + 1);
                    assert!(
                        parse(std::str::from_utf8(&t).unwrap_or("")).is_err(),
                        "{n}: swap at {i}"
                    );
                }
            }
        }
        assert!(parse("123").is_err());
        assert!(parse("12345678901ab").is_err());
        Ok(())
    }

    #[test]
    fn known_damm_value() {
        // The algorithm's published example: 572 → check digit 4.
        assert_eq!(damm([5, 7, 2]), 4);
        assert_eq!(damm([5, 7, 2, 4]), 0);
    }

    #[test]
    fn digits_are_uniform_enough() -> Result<()> {
        let mut counts = [0u32; 10];
        for _ in 0..2000 {
            for c in generate()?.bytes().take(12) {
                counts[usize::from(c - b'0')] += 1;
            }
        }
        // 24,000 digits: each should be near 2,400.
        assert!(
            counts.iter().all(|c| (2100..2700).contains(c)),
            "{counts:?}"
        );
        Ok(())
    }
}
