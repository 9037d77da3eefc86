//! The resident registry (住民基本台帳) as kofu sees it: a [`Registry`] connector that looks an
//! applicant up, with two implementations — [`ExtractRegistry`] over extracts a municipality
//! imports (see [`extract`]) and [`http::HttpRegistry`] over a registry service — and the
//! field normalisation of the four-field check ([`normalize`]).

pub mod extract;
pub mod http;
pub mod normalize;

use crate::ca::identity::{Person, Sex};
use crate::db::DbConn;
use crate::db::schema::residents;
use crate::error::{Error, Result};
use crate::pii::DataKey;
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// The registry's answer about an applicant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryStatus {
    /// Registered and living in the municipality.
    Resident,
    /// Moved out of the municipality.
    MovedOut,
    /// Deceased.
    Deceased,
    /// No such person.
    NotFound,
    /// More than one person fits equally well.
    Ambiguous,
}

impl RegistryStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryStatus::Resident => "resident",
            RegistryStatus::MovedOut => "moved_out",
            RegistryStatus::Deceased => "deceased",
            RegistryStatus::NotFound => "not_found",
            RegistryStatus::Ambiguous => "ambiguous",
        }
    }

    /// Japanese label.
    pub fn label_ja(self) -> &'static str {
        match self {
            RegistryStatus::Resident => "住民",
            RegistryStatus::MovedOut => "転出",
            RegistryStatus::Deceased => "死亡",
            RegistryStatus::NotFound => "該当なし",
            RegistryStatus::Ambiguous => "複数該当",
        }
    }

    /// Parse a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Resident,
            Self::MovedOut,
            Self::Deceased,
            Self::NotFound,
            Self::Ambiguous,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A person as the registry records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentRecord {
    /// The municipality's resident code (住民票コード or its own number).
    pub resident_code: String,
    /// Municipality code.
    pub municipality_code: String,
    /// The six fields.
    #[serde(flatten)]
    pub person: Person,
}

/// How a [`ResidentRecord`] is sealed at rest: one-letter keys, because a registry holds a
/// million copies of them (the key names were 40% of every sealed record). Records sealed
/// with the long names are still read.
#[derive(Serialize)]
struct SealedForm<'a> {
    c: &'a str,
    m: &'a str,
    n: &'a str,
    k: &'a str,
    b: NaiveDate,
    s: Sex,
    a: &'a str,
    p: &'a str,
}

/// [`SealedForm`] read back (long names accepted too).
#[derive(Deserialize)]
struct OpenedForm {
    #[serde(rename = "c", alias = "resident_code")]
    resident_code: String,
    #[serde(rename = "m", alias = "municipality_code")]
    municipality_code: String,
    #[serde(rename = "n", alias = "name")]
    name: String,
    #[serde(rename = "k", alias = "name_kana")]
    name_kana: String,
    #[serde(rename = "b", alias = "birth_date")]
    birth_date: NaiveDate,
    #[serde(rename = "s", alias = "sex")]
    sex: Sex,
    #[serde(rename = "a", alias = "address")]
    address: String,
    #[serde(rename = "p", alias = "postal_code")]
    postal_code: String,
}

/// A record in its sealed form, for [`crate::pii::Sealer::seal_json`].
pub(crate) struct Sealed<'a>(pub &'a ResidentRecord);

impl Serialize for Sealed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (r, p) = (self.0, &self.0.person);
        SealedForm {
            c: &r.resident_code,
            m: &r.municipality_code,
            n: &p.name,
            k: &p.name_kana,
            b: p.birth_date,
            s: p.sex,
            a: &p.address,
            p: &p.postal_code,
        }
        .serialize(s)
    }
}

/// A record read back from its sealed form.
pub(crate) struct Opened(pub ResidentRecord);

impl<'de> Deserialize<'de> for Opened {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let f = OpenedForm::deserialize(d)?;
        Ok(Opened(ResidentRecord {
            resident_code: f.resident_code,
            municipality_code: f.municipality_code,
            person: Person {
                name: f.name,
                name_kana: f.name_kana,
                birth_date: f.birth_date,
                sex: f.sex,
                address: f.address,
                postal_code: f.postal_code,
            },
        }))
    }
}

/// What the applicant wrote, to look them up.
#[derive(Debug, Clone)]
pub struct Query {
    /// Municipality code.
    pub municipality_code: String,
    /// Name.
    pub name: String,
    /// Kana name.
    pub name_kana: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Address.
    pub address: String,
}

/// A lookup's result.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// Registry status.
    pub status: RegistryStatus,
    /// The record found (when exactly one person fits).
    pub record: Option<ResidentRecord>,
    /// Local id of the record (extract connector), for the change feed.
    pub resident_id: Option<i64>,
}

impl Lookup {
    fn none(status: RegistryStatus) -> Self {
        Lookup {
            status,
            record: None,
            resident_id: None,
        }
    }
}

/// A resident-registry connector.
pub trait Registry: Send + Sync {
    /// Look an applicant up. An unreachable registry is `Error::Unavailable`.
    fn lookup(&self, conn: &mut DbConn, q: &Query) -> Result<Lookup>;
    /// Name for the record and the screen.
    fn name(&self) -> &'static str;
}

/// Sealed table label for resident records.
pub const RESIDENTS_TABLE: &str = "residents";

/// Keyed lookup hashes of a resident or applicant.
pub fn dob_key(key: &DataKey, municipality: &str, dob: NaiveDate) -> Vec<u8> {
    key.index_bytes(&["dob", municipality, &dob.format("%Y-%m-%d").to_string()])
}

/// Keyed hash of the normalised name (kanji variants folded), the second way to find a
/// person when the date of birth was written wrong.
pub fn name_key(key: &DataKey, municipality: &str, name: &str) -> Vec<u8> {
    key.index_bytes(&["name", municipality, &normalize::name_key(name)])
}

/// Keyed hash of a resident code.
pub fn resident_key(key: &DataKey, municipality: &str, code: &str) -> Vec<u8> {
    key.index_bytes(&["resident", municipality, code.trim()])
}

/// The imported-extract connector: residents stored (sealed) in kofu's own database.
pub struct ExtractRegistry {
    key: DataKey,
}

impl ExtractRegistry {
    /// With the personal-data key.
    pub fn new(key: DataKey) -> Self {
        ExtractRegistry { key }
    }
}

impl Registry for ExtractRegistry {
    fn name(&self) -> &'static str {
        "extract"
    }

    fn lookup(&self, conn: &mut DbConn, q: &Query) -> Result<Lookup> {
        let dk = dob_key(&self.key, &q.municipality_code, q.birth_date);
        let nk = name_key(&self.key, &q.municipality_code, &q.name);
        let rows: Vec<(i64, String, Vec<u8>)> = residents::table
            // Both keyed hashes include the municipality, so these two indexed lookups stay
            // within it (filtering on municipality_code here would steer SQLite to a scan).
            .filter(residents::dob_key.eq(&dk).or(residents::name_key.eq(&nk)))
            .select((residents::id, residents::status, residents::pii))
            .limit(200)
            .load(conn)?;
        let mut candidates = Vec::with_capacity(rows.len());
        for (id, status, sealed) in rows {
            let Opened(record) = self.key.open_json(RESIDENTS_TABLE, &sealed)?;
            candidates.push((id, status, record));
        }
        Ok(choose(q, candidates))
    }
}

/// One resident's record as the registry holds it now (None when there is no such row).
pub fn resident_record(
    conn: &mut DbConn,
    key: &DataKey,
    id: i64,
) -> Result<Option<ResidentRecord>> {
    let sealed: Option<Vec<u8>> = residents::table
        .find(id)
        .select(residents::pii)
        .first(conn)
        .optional()?;
    sealed
        .map(|s| {
            let Opened(record) = key.open_json(RESIDENTS_TABLE, &s)?;
            Ok(record)
        })
        .transpose()
}

/// Pick the person the applicant is: same name (or kana) and same date of birth; failing
/// that, same name and same address. Two equally good fits are `ambiguous`. Candidates are
/// those sharing the date of birth or the normalised name.
pub fn choose(q: &Query, candidates: Vec<(i64, String, ResidentRecord)>) -> Lookup {
    use normalize::{Verdict, compare_address, compare_kana, compare_name};
    let named = |r: &ResidentRecord| {
        compare_name(&q.name, &r.person.name) != Verdict::Mismatch
            || compare_kana(&q.name_kana, &r.person.name_kana) != Verdict::Mismatch
    };
    let strong: Vec<_> = candidates
        .iter()
        .filter(|(_, _, r)| named(r) && r.person.birth_date == q.birth_date)
        .collect();
    let pick = if strong.is_empty() {
        let weak: Vec<_> = candidates
            .iter()
            .filter(|(_, _, r)| {
                named(r) && compare_address(&q.address, &r.person.address) != Verdict::Mismatch
            })
            .collect();
        weak
    } else {
        strong
    };
    match pick.as_slice() {
        [] => Lookup::none(RegistryStatus::NotFound),
        [(id, status, record)] => Lookup {
            status: RegistryStatus::parse(status).unwrap_or(RegistryStatus::Resident),
            record: Some(record.clone()),
            resident_id: Some(*id),
        },
        _ => Lookup::none(RegistryStatus::Ambiguous),
    }
}

/// The connector chosen by configuration.
pub fn from_config(cfg: &crate::config::Config, key: DataKey) -> Result<Box<dyn Registry>> {
    match cfg.registry.connector.as_str() {
        "http" => {
            let url = cfg
                .registry
                .url
                .clone()
                .ok_or_else(|| Error::Config("registry.url missing".into()))?;
            Ok(Box::new(http::HttpRegistry::new(
                &url,
                cfg.registry.token.as_ref().map(|t| t.expose().clone()),
                std::time::Duration::from_millis(cfg.registry.timeout_ms),
            )?))
        }
        _ => Ok(Box::new(ExtractRegistry::new(key))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_form_is_short_and_old_records_still_open() {
        let rec = ResidentRecord {
            resident_code: "R1".into(),
            municipality_code: "131016".into(),
            person: Person {
                name: "山田 太郎".into(),
                name_kana: "ヤマダ タロウ".into(),
                birth_date: NaiveDate::from_ymd_opt(1960, 10, 10).unwrap_or_default(),
                sex: Sex::Male,
                address: "東京都千代田区千代田1-1".into(),
                postal_code: "1000001".into(),
            },
        };
        let short = serde_json::to_string(&Sealed(&rec)).unwrap_or_default();
        let long = serde_json::to_string(&rec).unwrap_or_default();
        assert!(short.len() + 60 < long.len(), "{short}");
        for text in [&short, &long] {
            let Opened(back) = serde_json::from_str(text).expect("opens");
            assert_eq!(back, rec);
        }
    }
}
