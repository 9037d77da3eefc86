//! Intake (SPEC §2.1): the office records a mailed application. Input is checked field by
//! field, every problem named at once; dates are accepted in ISO and era form, kana in any
//! width, postal codes with or without 〒 and hyphen, municipality codes with their check
//! digit. The applicant's data is sealed before it is stored.

use crate::audit::{self, Actor};
use crate::ca::identity::{Person, Sex, check_municipality_code};
use crate::db::DbConn;
use crate::db::models::application::{ApplicationRow, NewApplicationRow, state};
use crate::error::{Error, FieldError, Result};
use crate::jp::{self, era, kana};
use crate::pii::DataKey;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// Sealed-table label of applicants' data.
pub const APPLICATIONS_TABLE: &str = "applications";

/// Application kinds.
pub const KINDS: [(&str, &str); 3] = [
    ("new", "新規"),
    ("reissue", "再発行（紛失・盗難・破損）"),
    ("renewal", "更新（期限・4情報の変更）"),
];
/// Delivery choices.
pub const DELIVERIES: [(&str, &str); 2] = [("mail", "本人限定受取郵便"), ("counter", "窓口交付")];

/// Japanese labels of an application's state, kind and delivery, for the pages.
pub fn labels(
    state: &str,
    kind: &str,
    delivery: &str,
) -> (&'static str, &'static str, &'static str) {
    let st = match state {
        state::DOCUMENTS_INCOMPLETE => "書類不備（書類待ち）",
        state::PENDING_VERIFICATION => "照合待ち",
        state::VERIFIED => "照合済（発券指示待ち）",
        state::REJECTED => "却下",
        state::ORDERED => "発券指示済",
        _ => "その他",
    };
    let k = KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("—", |(_, l)| l);
    let d = DELIVERIES
        .iter()
        .find(|(k, _)| *k == delivery)
        .map_or("—", |(_, l)| l);
    (st, k, d)
}

/// Which of the three mailed forms arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forms {
    /// Form 1: application with identity document copy.
    #[serde(default)]
    pub application: bool,
    /// Form 2: power of attorney for the registry check.
    #[serde(default)]
    pub power_of_attorney: bool,
    /// Form 3: consent to the handling of health-insurance data.
    #[serde(default)]
    pub consent: bool,
}

impl Forms {
    /// All three present.
    pub fn complete(self) -> bool {
        self.application && self.power_of_attorney && self.consent
    }
}

/// An application as typed (strings, so each field's problem can be named).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationInput {
    /// new, reissue or renewal.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Kana name (katakana or hiragana, any width).
    pub name_kana: String,
    /// Date of birth, ISO or era form.
    pub birth_date: String,
    /// male/female, 1/2, 男/女.
    pub sex: String,
    /// Address.
    pub address: String,
    /// Postal code.
    pub postal_code: String,
    /// 6-digit municipality code.
    pub municipality_code: String,
    /// mail or counter.
    pub delivery: String,
    /// Contact e-mail (optional).
    #[serde(default)]
    pub email: Option<String>,
    /// Forms received.
    #[serde(default)]
    pub forms: Forms,
}

/// The applicant's data as sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applicant {
    /// The six fields as the applicant wrote them.
    #[serde(flatten)]
    pub person: Person,
    /// Contact e-mail.
    pub email: Option<String>,
}

/// A checked application.
#[derive(Debug, Clone)]
pub struct ValidApplication {
    /// Kind.
    pub kind: &'static str,
    /// Municipality.
    pub municipality_code: String,
    /// Delivery.
    pub delivery: &'static str,
    /// Forms.
    pub forms: Forms,
    /// Applicant.
    pub applicant: Applicant,
}

fn pick(options: &[(&'static str, &str)], v: &str) -> Option<&'static str> {
    options
        .iter()
        .find(|(k, _)| *k == v.trim())
        .map(|(k, _)| *k)
}

/// Check every field; all problems are returned together, each naming its field.
pub fn validate(
    input: &ApplicationInput,
    today: NaiveDate,
) -> std::result::Result<ValidApplication, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: String| {
        errors.push(FieldError {
            line: None,
            field: field.into(),
            message,
        })
    };
    let kind = pick(&KINDS, &input.kind);
    if kind.is_none() {
        err(
            "kind",
            "申請区分を選んでください（new / reissue / renewal）".into(),
        );
    }
    let name = input.name.trim();
    if name.is_empty() {
        err("name", "氏名を入力してください".into());
    } else if name.chars().count() > 100 || name.chars().any(char::is_control) {
        err("name", "氏名が長すぎるか、使えない文字があります".into());
    }
    let name_kana = kana::check_name(&input.name_kana)
        .map_err(|m| err("name_kana", m))
        .ok();
    let birth_date = match era::parse(&input.birth_date) {
        Ok(d) if d > today => {
            err("birth_date", "生年月日が未来の日付です".into());
            None
        }
        Ok(d) => Some(d),
        Err(m) => {
            err("birth_date", m);
            None
        }
    };
    let sex = Sex::parse(&input.sex);
    if sex.is_none() {
        err("sex", "性別を選んでください".into());
    }
    let address = input.address.trim();
    if address.is_empty() {
        err("address", "住所を入力してください".into());
    } else if address.chars().count() > 200 || address.chars().any(char::is_control) {
        err("address", "住所が長すぎるか、使えない文字があります".into());
    }
    let postal = jp::postal_code(&input.postal_code)
        .map_err(|_| {
            err(
                "postal_code",
                "郵便番号は7桁で入力してください（例：100-0001）".into(),
            )
        })
        .ok();
    let muni = jp::fold(&input.municipality_code);
    if let Err(Error::BadInput { message, .. }) = check_municipality_code(&muni) {
        err(
            "municipality_code",
            format!("団体コードが正しくありません：{message}"),
        );
    }
    let delivery = pick(&DELIVERIES, &input.delivery);
    if delivery.is_none() {
        err(
            "delivery",
            "交付方法を選んでください（mail / counter）".into(),
        );
    }
    let email = match input.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(e) => {
            let ok = e.len() <= 254
                && e.split('@').count() == 2
                && e.split('@').all(|p| !p.is_empty())
                && e.rsplit('@').next().is_some_and(|d| d.contains('.'))
                && !e.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                err("email", "メールアドレスの形式が正しくありません".into());
            }
            Some(e.to_string())
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    match (kind, name_kana, birth_date, sex, postal, delivery) {
        (
            Some(kind),
            Some(name_kana),
            Some(birth_date),
            Some(sex),
            Some(postal_code),
            Some(delivery),
        ) => Ok(ValidApplication {
            kind,
            municipality_code: muni,
            delivery,
            forms: input.forms,
            applicant: Applicant {
                person: Person {
                    name: name.into(),
                    name_kana,
                    birth_date,
                    sex,
                    address: address.into(),
                    postal_code,
                },
                email,
            },
        }),
        _ => Err(vec![FieldError {
            line: None,
            field: "form".into(),
            message: "入力を確認してください".into(),
        }]),
    }
}

/// A reference the office can quote on the phone: KF- and 10 characters from an alphabet
/// without look-alikes (Crockford base 32).
pub fn new_reference() -> Result<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut b = [0u8; 10];
    openssl::rand::rand_bytes(&mut b)?;
    let s: String = b
        .iter()
        .map(|x| ALPHABET[(*x & 31) as usize] as char)
        .collect();
    Ok(format!("KF-{}-{}", &s[..5], &s[5..]))
}

/// Record an application. Returns its id and reference.
pub fn create(
    conn: &mut DbConn,
    key: &DataKey,
    input: &ApplicationInput,
    user_id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(i64, String, &'static str)> {
    let app = validate(input, crate::ca::validity::jst_date(now)).map_err(Error::Invalid)?;
    let sealed = key.seal_json(APPLICATIONS_TABLE, &app.applicant)?;
    let st = if app.forms.complete() {
        state::PENDING_VERIFICATION
    } else {
        state::DOCUMENTS_INCOMPLETE
    };
    let reference = new_reference()?;
    let now_s = now.timestamp();
    let id = conn.transaction(|c| {
        let id = ApplicationRow::insert(
            c,
            &NewApplicationRow {
                reference: &reference,
                kind: app.kind,
                state: st,
                municipality_code: &app.municipality_code,
                delivery: app.delivery,
                form_application: app.forms.application,
                form_power_of_attorney: app.forms.power_of_attorney,
                form_consent: app.forms.consent,
                pii: &sealed,
                created_by: user_id,
                created_at: now_s,
                updated_at: now_s,
            },
        )?;
        audit::append(
            c,
            now_s,
            actor,
            "application.create",
            &format!("application:{id}"),
            &format!("kind={} state={st}", app.kind),
        )?;
        if let Some(email) = &app.applicant.email {
            crate::mail::enqueue(
                c,
                key,
                email,
                crate::mail::Notice::Received {
                    name: app.applicant.person.name.clone(),
                    reference: reference.clone(),
                    counter: app.delivery == crate::db::models::application::Delivery::Counter,
                },
                now,
            )?;
        }
        Ok::<_, Error>(id)
    })?;
    Ok((id, reference, st))
}

/// Record which forms have arrived; with all three, the application moves on to the clerk.
pub fn update_forms(
    conn: &mut DbConn,
    id: i64,
    forms: Forms,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<&'static str> {
    use crate::db::schema::applications as a;
    let now_s = now.timestamp();
    let next = if forms.complete() {
        state::PENDING_VERIFICATION
    } else {
        state::DOCUMENTS_INCOMPLETE
    };
    conn.transaction(|c| {
        // Only while nobody has decided yet: a conditional update.
        let changed =
            diesel::update(a::table.filter(a::id.eq(id)).filter(
                a::state.eq_any([state::DOCUMENTS_INCOMPLETE, state::PENDING_VERIFICATION]),
            ))
            .set((
                a::form_application.eq(forms.application),
                a::form_power_of_attorney.eq(forms.power_of_attorney),
                a::form_consent.eq(forms.consent),
                a::state.eq(next),
                a::updated_at.eq(now_s),
            ))
            .execute(c)?;
        if changed != 1 {
            return Err(match ApplicationRow::get(c, id)? {
                None => Error::NotFound(format!("application {id}")),
                Some(r) => Error::Conflict(format!(
                    "application {id} is {} and its forms can no longer change",
                    r.state
                )),
            });
        }
        audit::append(
            c,
            now_s,
            actor,
            "application.forms",
            &format!("application:{id}"),
            &format!("state={next}"),
        )?;
        Ok(next)
    })
}

/// Open an application's sealed data. Callers audit the read.
pub fn applicant(key: &DataKey, row: &ApplicationRow) -> Result<Applicant> {
    key.open_json(APPLICATIONS_TABLE, &row.pii)
}

/// The identity a holder certificate of this application carries: the four fields as the
/// application holds them, with its municipality.
pub fn identity(key: &DataKey, row: &ApplicationRow) -> Result<crate::ca::identity::Identity> {
    let a = applicant(key, row)?;
    Ok(crate::ca::identity::Identity {
        person: a.person,
        municipality_code: row.municipality_code.clone(),
        name_substitute: String::new(),
        address_substitute: String::new(),
    })
}
