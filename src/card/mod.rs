//! IC cards: card numbers, the holder's PINs, the card face data, and writing keys,
//! certificates and data to a card over PKCS#11.

pub mod number;
pub mod pin;
pub mod readers;
pub mod token;

use crate::ca::identity::Sex;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What is printed on the card's face and kept in its chip: kana name, date of birth, sex
/// and card number (the kanji name and address are not on the chip; they travel in the
/// signing certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceData {
    /// Card number, 13 digits.
    pub card_number: String,
    /// Name in full-width katakana.
    pub name_kana: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Sex.
    pub sex: Sex,
    /// Last day the card is valid.
    pub expires_on: NaiveDate,
}

/// Labels of kofu's data objects on a card.
pub mod label {
    /// The card number (public).
    pub const CARD_NUMBER: &str = "card_number";
    /// The face data, JSON (needs the PIN to read).
    pub const FACE: &str = "face";
    /// The signing password's verifier (needs the PIN to read).
    pub const SIGNING_PIN: &str = "signing_pin_verifier";
}
