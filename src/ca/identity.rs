//! A certificate holder's four basic fields as handed to the CA (the `--identity` JSON of
//! `kofu ca issue`, or the verified application later), with the checks the CA itself makes.

use crate::error::{Error, Result};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Sex as recorded in the resident registry; encoded as the ISO 5218 digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    /// ISO 5218 `1`.
    Male,
    /// ISO 5218 `2`.
    Female,
}

impl Sex {
    /// Parse the forms registries and forms use: 1/2 (ISO 5218), male/female, 男/女.
    pub fn parse(s: &str) -> Option<Self> {
        match crate::jp::fold(s).to_lowercase().as_str() {
            "1" | "male" | "m" | "男" | "男性" => Some(Sex::Male),
            "2" | "female" | "f" | "女" | "女性" => Some(Sex::Female),
            _ => None,
        }
    }

    /// Japanese label.
    pub fn label_ja(self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
        }
    }

    /// The ISO 5218 digit.
    pub fn iso5218(self) -> &'static str {
        match self {
            Sex::Male => "1",
            Sex::Female => "2",
        }
    }
}

/// The identity JSON as received (strings, so each field's error can be named).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    name: String,
    name_kana: String,
    birth_date: String,
    sex: String,
    address: String,
    postal_code: String,
    municipality_code: String,
    #[serde(default)]
    name_substitute: Option<String>,
    #[serde(default)]
    address_substitute: Option<String>,
}

/// A person as the registry, an application and a signing certificate all describe them: the
/// four basic fields (name, address, date of birth, sex) with the kana name and postal code
/// that travel beside them. The one type for these six fields: [`Identity`],
/// [`crate::registry::ResidentRecord`] and [`crate::service::intake::Applicant`] each hold one
/// and add only what is theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Name in kanji (or as registered).
    pub name: String,
    /// Name in full-width katakana.
    pub name_kana: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Sex.
    pub sex: Sex,
    /// Address as registered.
    pub address: String,
    /// Postal code, 7 digits.
    pub postal_code: String,
}

/// A checked identity: the person a holder certificate names, with their municipality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The six fields.
    pub person: Person,
    /// 全国地方公共団体コード, 6 digits with check digit.
    pub municipality_code: String,
    /// Characters of the name replaced by substitutes (代替文字), empty when none.
    pub name_substitute: String,
    /// Characters of the address replaced by substitutes, empty when none.
    pub address_substitute: String,
}

impl Identity {
    /// Parse and check identity JSON; errors name the field.
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: RawIdentity = serde_json::from_str(text)
            .map_err(|e| Error::bad("identity", format!("not valid identity JSON: {e}")))?;
        let nonempty = |field: &str, v: &str| -> Result<String> {
            let t = v.trim();
            if t.is_empty() {
                return Err(Error::bad(field, "must not be empty"));
            }
            if t.chars().count() > 200 || t.chars().any(char::is_control) {
                return Err(Error::bad(field, "too long or contains control characters"));
            }
            Ok(t.to_string())
        };
        let birth_date =
            NaiveDate::parse_from_str(raw.birth_date.trim(), "%Y-%m-%d").map_err(|_| {
                Error::bad(
                    "birth_date",
                    format!("{:?} is not a date in YYYY-MM-DD form", raw.birth_date),
                )
            })?;
        let sex = match raw.sex.trim() {
            "male" => Sex::Male,
            "female" => Sex::Female,
            other => {
                return Err(Error::bad(
                    "sex",
                    format!("expected male or female, got {other:?}"),
                ));
            }
        };
        let postal: String = raw.postal_code.chars().filter(|c| *c != '-').collect();
        if postal.len() != 7 || !postal.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::bad(
                "postal_code",
                "expected 7 digits, e.g. 100-0001",
            ));
        }
        let municipality_code = raw.municipality_code.trim().to_string();
        check_municipality_code(&municipality_code)?;
        Ok(Identity {
            person: Person {
                name: nonempty("name", &raw.name)?,
                name_kana: nonempty("name_kana", &raw.name_kana)?,
                birth_date,
                sex,
                address: nonempty("address", &raw.address)?,
                postal_code: postal,
            },
            municipality_code,
            name_substitute: raw.name_substitute.unwrap_or_default(),
            address_substitute: raw.address_substitute.unwrap_or_default(),
        })
    }
}

/// Check a 全国地方公共団体コード: six digits, the last being the check digit over the first
/// five with weights 6,5,4,3,2 (check = (11 − sum mod 11) mod 10).
pub fn check_municipality_code(code: &str) -> Result<()> {
    let digits: Vec<u32> = code.chars().filter_map(|c| c.to_digit(10)).collect();
    if code.len() != 6 || digits.len() != 6 {
        return Err(Error::bad(
            "municipality_code",
            "expected 6 digits (5-digit code and check digit)",
        ));
    }
    let sum: u32 = digits[..5]
        .iter()
        .zip([6, 5, 4, 3, 2])
        .map(|(d, w)| d * w)
        .sum();
    let check = (11 - sum % 11) % 10;
    if digits[5] != check {
        return Err(Error::bad(
            "municipality_code",
            format!("check digit of {code} should be {check}; is the code mistyped?"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn municipality_check_digits() {
        for good in ["011002", "131016", "271004", "401005"] {
            assert!(check_municipality_code(good).is_ok(), "{good}");
        }
        for bad in ["011003", "13101", "1310166", "13101a"] {
            assert!(check_municipality_code(bad).is_err(), "{bad}");
        }
    }
}
