//! A card's life after writing, for the call centre and the office: the call centre's loss
//! report (identity questions, then both certificates on hold at once), the office's list of
//! suspended cards, and one card's page with the actions the transition table allows.

use crate::app::AppState;
use crate::db::models::card::CardRow;
use crate::error::{Error, Result};
use crate::http::extract::{CsrfForm, HasCsrf, Staff};
use crate::http::views::html;
use crate::service::auth::StaffUser;
use crate::service::revocation::{self, Action, By, CertView, IdentityAnswers};
use crate::service::users::Role;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

/// Links of the card pages.
pub const CARD_NAV: &[(&str, &str)] = &[
    ("/cards", "カードの状態"),
    ("/callcenter", "紛失・盗難の受付"),
];

fn status_label(s: &str) -> &'static str {
    match s {
        "active" => "有効",
        "suspended" => "一時停止中",
        "revoked" => "失効",
        "destroyed" => "廃棄",
        _ => "不明",
    }
}

fn cert_status_label(c: &CertView) -> String {
    match (c.status, c.reason) {
        (revocation::CertStatus::Good, _) => "有効".into(),
        (revocation::CertStatus::Held, _) => "一時停止(certificateHold)".into(),
        (revocation::CertStatus::Revoked, Some(r)) => format!("失効({r})"),
        (revocation::CertStatus::Revoked, None) => "失効".into(),
    }
}

#[derive(Template)]
#[template(path = "pages/callcenter.html")]
struct CallcenterPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    form: LossForm,
    message: Option<(bool, String)>,
}

/// The call centre's form.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct LossForm {
    csrf: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name_kana: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    postal_code: String,
}

impl HasCsrf for LossForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn callcenter_page(
    user: StaffUser,
    form: LossForm,
    message: Option<(bool, String)>,
) -> Result<HttpResponse> {
    html(&CallcenterPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: CARD_NAV,
        form,
        message,
    })
}

/// `GET /callcenter` (call centre).
pub async fn callcenter(Staff(user): Staff) -> Result<HttpResponse> {
    callcenter_page(
        user,
        LossForm {
            kind: "lost".into(),
            ..LossForm::default()
        },
        None,
    )
}

/// `POST /callcenter/loss-report` (call centre).
pub async fn report_loss(
    state: web::Data<AppState>,
    CsrfForm(form, user): CsrfForm<LossForm>,
) -> Result<HttpResponse> {
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let answers = IdentityAnswers {
        name_kana: opt(&form.name_kana),
        birth_date: opt(&form.birth_date),
        postal_code: opt(&form.postal_code),
    };
    let stolen = form.kind == "stolen";
    let (key, now) = (state.data_key()?, state.clock.now());
    let number = match crate::card::number::parse(&form.card_number) {
        Ok(n) => n,
        Err(e) => return callcenter_page(user, form, Some((false, e.to_string()))),
    };
    let u = user.clone();
    let result = state
        .with_write(move |c| {
            revocation::report_loss(c, &key, &number, stolen, &answers, u.id, &u.actor(), now)
        })
        .await;
    match result {
        Ok(o) => {
            state.refresh_ocsp().await;
            let blank = LossForm {
                kind: "lost".into(),
                ..LossForm::default()
            };
            callcenter_page(
                user,
                blank,
                Some((
                    true,
                    format!(
                        "カード {} の証明書 {} 件を一時停止しました。事務局が失効または解除を判断します。",
                        o.card_number,
                        o.certificates.len()
                    ),
                )),
            )
        }
        Err(e) if e.is_client_error() => callcenter_page(user, form, Some((false, e.to_string()))),
        Err(e) => Err(e),
    }
}

struct CardLine {
    number: String,
    status: String,
    status_label: &'static str,
    state: String,
}

#[derive(Template)]
#[template(path = "pages/cards.html")]
struct ListPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    suspended: Vec<CardLine>,
}

/// Query of the card list: jump to one card.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    number: Option<String>,
}

/// `GET /cards` (office, call centre): suspended cards waiting for the office, and a lookup.
pub async fn list(
    state: web::Data<AppState>,
    Staff(user): Staff,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    if let Some(n) = query.number.as_deref().filter(|n| !n.trim().is_empty()) {
        let n = crate::card::number::parse(n)?;
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/cards/{n}")))
            .finish());
    }
    let rows: Vec<CardRow> = state
        .with_conn(|c| revocation::suspended_cards(c, 500))
        .await?;
    html(&ListPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: CARD_NAV,
        suspended: rows
            .into_iter()
            .map(|c| CardLine {
                status_label: status_label(&c.status),
                number: c.card_number,
                status: c.status,
                state: c.state,
            })
            .collect(),
    })
}

struct ActionButton {
    action: &'static str,
    label: &'static str,
    danger: bool,
}

struct CertLine {
    serial: String,
    profile: String,
    status: String,
    label: String,
}

#[derive(Template)]
#[template(path = "pages/card.html")]
struct CardPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    number: String,
    status: String,
    status_label: &'static str,
    state: String,
    certificates: Vec<CertLine>,
    actions: Vec<ActionButton>,
    /// An operator may renew: a verified renewal application waits for this card.
    can_renew: bool,
    message: Option<(bool, String)>,
}

async fn card_page(
    state: &AppState,
    user: StaffUser,
    number: crate::card::number::CardNumber,
    message: Option<(bool, String)>,
) -> Result<HttpResponse> {
    let (card, certs, renewal_waiting) = state
        .with_conn(move |c| {
            let card = revocation::card_by_number(c, &number)?;
            let certs = revocation::certificates_view(c, card.id)?;
            let waiting = crate::service::renewal::waiting(c, card.id)?;
            Ok((card, certs, waiting))
        })
        .await?;
    let actions = if user.role == Role::Office {
        revocation::allowed(&card, By::Office)
            .into_iter()
            .map(|a| ActionButton {
                action: a.as_str(),
                label: a.label_ja(),
                danger: a != Action::LiftHold,
            })
            .collect()
    } else {
        Vec::new()
    };
    html(&CardPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: CARD_NAV,
        status_label: status_label(&card.status),
        number: card.card_number,
        status: card.status.clone(),
        state: card.state.clone(),
        certificates: certs
            .iter()
            .map(|c| CertLine {
                label: cert_status_label(c),
                serial: c.serial.clone(),
                profile: c.profile.clone(),
                status: format!("{:?}", c.status).to_lowercase(),
            })
            .collect(),
        actions,
        can_renew: user.role == Role::Operator
            && renewal_waiting
            && card.status == revocation::card_status::ACTIVE,
        message,
    })
}

/// `GET /cards/{number}` (office, call centre): status and certificates, nothing personal.
pub async fn show(
    state: web::Data<AppState>,
    Staff(user): Staff,
    number: web::Path<String>,
) -> Result<HttpResponse> {
    let number = crate::card::number::parse(&number)?;
    card_page(&state, user, number, None).await
}

/// The office's form on a card's page.
#[derive(Debug, Deserialize)]
pub struct StatusForm {
    csrf: String,
    action: String,
}

impl HasCsrf for StatusForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /cards/{number}/status` (office).
pub async fn change_status(
    state: web::Data<AppState>,
    number: web::Path<String>,
    CsrfForm(form, user): CsrfForm<StatusForm>,
) -> Result<HttpResponse> {
    let number = crate::card::number::parse(&number)?;
    let action: Action = serde_json::from_value(serde_json::Value::String(form.action.clone()))
        .map_err(|_| Error::bad("action", format!("unknown action {:?}", form.action)))?;
    let now = state.clock.now();
    let (u, n) = (user.clone(), number.clone());
    let result = state
        .with_write(move |c| revocation::office_action(c, &n, action, u.id, &u.actor(), now))
        .await;
    match result {
        Ok(o) => {
            state.refresh_ocsp().await;
            let mut text = format!("{}を記録しました。", action.label_ja());
            if let Some((_, reference)) = &o.follow_up {
                text.push_str(&format!(
                    " 後続の申請 {reference} を作成しました(書類の到着を待っています)。"
                ));
            }
            card_page(&state, user, number, Some((true, text))).await
        }
        Err(e) if e.is_client_error() => {
            card_page(&state, user, number, Some((false, e.to_string()))).await
        }
        Err(e) => Err(e),
    }
}

/// The operator's renewal form (the holder types the PIN on the counter's PIN pad).
#[derive(Debug, Deserialize)]
pub struct RenewForm {
    csrf: String,
    pin: String,
}

impl HasCsrf for RenewForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /cards/{number}/renewal` (operator).
pub async fn renew(
    state: web::Data<AppState>,
    number: web::Path<String>,
    CsrfForm(form, user): CsrfForm<RenewForm>,
) -> Result<HttpResponse> {
    let number = crate::card::number::parse(&number)?;
    match state
        .renew_on_card(user.actor(), number.clone(), form.pin)
        .await
    {
        Ok(r) => {
            let text = format!(
                "署名用電子証明書を更新しました(新しいシリアル番号 {})。",
                r.new_serial
            );
            card_page(&state, user, number, Some((true, text))).await
        }
        Err(e) if e.is_client_error() => {
            card_page(&state, user, number, Some((false, e.to_string()))).await
        }
        Err(e) => Err(e),
    }
}
