//! The clerk's pages: the queue of the clerk's own municipality, and the side-by-side check
//! of one applicant against the resident registry with the verdict of each field, where the
//! clerk approves or rejects with a reason.

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::extract::{CsrfForm, HasCsrf, Staff};
use crate::http::views::html;
use crate::jp::era::format_era;
use crate::registry::normalize::Verdict;
use crate::service::auth::StaffUser;
use crate::service::verification::{self, Check};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

const CLERK_NAV: &[(&str, &str)] = &[("/verification", "照合待ち")];

#[derive(Template)]
#[template(path = "pages/verification_queue.html")]
struct QueuePage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    municipality: String,
    rows: Vec<(i64, String, String, String, String)>,
}

/// `GET /verification`.
pub async fn queue(state: web::Data<AppState>, Staff(user): Staff) -> Result<HttpResponse> {
    let key = state.data_key()?;
    let now = state.clock.now();
    let u = user.clone();
    let items = state
        .with_write(move |c| verification::queue(c, &key, &u, now))
        .await?;
    html(&QueuePage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: CLERK_NAV,
        municipality: user.municipality_code.unwrap_or_default(),
        rows: items
            .into_iter()
            .map(|(r, a)| (r.id, r.reference, r.kind, a.person.name, a.person.name_kana))
            .collect(),
    })
}

/// One compared field.
pub struct Row {
    label: &'static str,
    applicant: String,
    registry: String,
    verdict: &'static str,
    class: &'static str,
}

#[derive(Template)]
#[template(path = "pages/verification.html")]
struct CheckPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    id: i64,
    reference: String,
    status_label: &'static str,
    rows: Vec<Row>,
    approvable: bool,
    conflict: Option<String>,
    error: Option<String>,
    decided: bool,
    decided_label: String,
}

fn class(v: Option<Verdict>) -> (&'static str, &'static str) {
    match v {
        Some(Verdict::Exact) => ("一致", "exact"),
        Some(Verdict::Equivalent) => ("同一（表記ゆれ）", "equivalent"),
        Some(Verdict::Mismatch) => ("不一致", "mismatch"),
        None => ("—", "none"),
    }
}

fn page(
    user: &StaffUser,
    c: &Check,
    error: Option<String>,
    decided: Option<String>,
) -> Result<HttpResponse> {
    let a = &c.applicant;
    let r = c.lookup.record.as_ref();
    let v = c.verdicts;
    let row = |label, applicant: String, registry: Option<String>, verdict: Option<Verdict>| {
        let (text, cls) = class(verdict);
        Row {
            label,
            applicant,
            registry: registry.unwrap_or_else(|| "—".into()),
            verdict: text,
            class: cls,
        }
    };
    let rows = vec![
        row(
            "氏名",
            a.person.name.clone(),
            r.map(|r| r.person.name.clone()),
            v.map(|v| v.name),
        ),
        row(
            "フリガナ",
            a.person.name_kana.clone(),
            r.map(|r| r.person.name_kana.clone()),
            v.map(|v| v.name_kana),
        ),
        row(
            "生年月日",
            format_era(a.person.birth_date),
            r.map(|r| format_era(r.person.birth_date)),
            v.map(|v| v.birth_date),
        ),
        row(
            "性別",
            a.person.sex.label_ja().into(),
            r.map(|r| r.person.sex.label_ja().into()),
            v.map(|v| v.sex),
        ),
        row(
            "住所",
            a.person.address.clone(),
            r.map(|r| r.person.address.clone()),
            v.map(|v| v.address),
        ),
    ];
    html(&CheckPage {
        username: user.username.clone(),
        role_label: user.role.label_ja(),
        csrf: user.csrf.clone().unwrap_or_default(),
        nav: CLERK_NAV,
        id: c.application.id,
        reference: c.application.reference.clone(),
        status_label: c.lookup.status.label_ja(),
        rows,
        approvable: c.approvable(),
        conflict: c.conflict.clone(),
        error,
        decided: decided.is_some(),
        decided_label: decided.unwrap_or_default(),
    })
}

fn unavailable_page(msg: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable().content_type("text/html; charset=utf-8").body(format!(
        "<!doctype html><meta charset=utf-8><title>住民基本台帳に接続できません</title><p role=alert>住民基本台帳に接続できませんでした。申請はそのまま照合待ちです。しばらくしてから再度お試しください。</p><p>{}</p><p><a href=\"/verification\">照合待ちへ戻る</a></p>",
        askama::filters::escape(msg, askama::filters::Html).map(|s| s.to_string()).unwrap_or_default()
    ))
}

/// `GET /verification/{id}`: looks the applicant up (audited) and shows both sides.
pub async fn show(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let (key, registry) = (state.data_key()?, state.registry()?);
    let now = state.clock.now();
    let (id, u) = (id.into_inner(), user.clone());
    match state
        .with_write(move |c| verification::check(c, &key, registry.as_ref(), &u, id, now))
        .await
    {
        Ok(c) => page(&user, &c, None, None),
        Err(Error::Unavailable(m)) => Ok(unavailable_page(&m)),
        Err(e) => Err(e),
    }
}

/// The decision form.
#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    reason: String,
}

impl HasCsrf for DecisionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /verification/{id}`: approve or reject.
pub async fn decide(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    form: CsrfForm<DecisionForm>,
) -> Result<HttpResponse> {
    let CsrfForm(f, user) = form;
    let approve = match f.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(Error::bad("decision", "approve or reject")),
    };
    let (key, registry) = (state.data_key()?, state.registry()?);
    let now = state.clock.now();
    let (id, u) = (id.into_inner(), user.clone());
    let result = state
        .with_write(move |c| {
            let outcome =
                verification::decide(c, &key, registry.as_ref(), &u, id, approve, &f.reason, now);
            // A refused decision shows the screen again with what went wrong.
            let check = match &outcome {
                Err(Error::BadInput { .. } | Error::Conflict(_) | Error::Changed(_)) => {
                    Some(verification::check(c, &key, registry.as_ref(), &u, id, now))
                }
                _ => None,
            };
            Ok((outcome, check))
        })
        .await?;
    match result {
        (Ok(st), _) => {
            let label = if st == crate::db::models::application::ApplicationState::Verified {
                "承認しました。"
            } else {
                "却下しました。"
            };
            Ok(HttpResponse::SeeOther()
                .insert_header(("Location", "/verification"))
                .insert_header(("X-Kofu-Outcome", st))
                .body(label))
        }
        (Err(Error::Unavailable(m)), _) => Ok(unavailable_page(&m)),
        (
            Err(e @ (Error::BadInput { .. } | Error::Conflict(_) | Error::Changed(_))),
            Some(Ok(c)),
        ) => {
            let msg = match &e {
                Error::BadInput { message, .. } => message.clone(),
                _ => "承認できません：住民であり、不一致の項目がない場合のみ承認できます。".into(),
            };
            let mut resp = page(&user, &c, Some(msg), None)?;
            *resp.status_mut() = actix_web::ResponseError::status_code(&e);
            Ok(resp)
        }
        (Err(e), _) => Err(e),
    }
}
