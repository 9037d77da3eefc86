//! The admin's verifier pages: the list with the registration form, and one verifier with
//! its credentials (suspend or reactivate, a new token shown once, a client certificate
//! from a CSR, revoking a credential).

use crate::app::AppState;
use crate::error::Result;
use crate::http::extract::{CsrfForm, HasCsrf, Staff};
use crate::http::views::html;
use crate::service::auth::StaffUser;
use crate::service::verifiers::{self, Credential, NewVerifier, Verifier};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

const NAV: &[(&str, &str)] = &[("/verifiers", "検証者の管理")];

fn date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "pages/verifiers.html")]
struct ListPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    verifiers: Vec<Verifier>,
    form: AddForm,
    error: Option<String>,
}

/// The registration form.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AddForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    signing: Option<String>,
    #[serde(default)]
    authentication: Option<String>,
    #[serde(default)]
    infrastructure: Option<String>,
    #[serde(default)]
    rate_limit: String,
}

impl HasCsrf for AddForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn list_page(
    state: &AppState,
    user: StaffUser,
    form: AddForm,
    error: Option<String>,
) -> Result<HttpResponse> {
    let list = state.with_conn(|c| verifiers::list(c)).await?;
    html(&ListPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: NAV,
        verifiers: list,
        form,
        error,
    })
}

/// `GET /verifiers`.
pub async fn list(state: web::Data<AppState>, Staff(user): Staff) -> Result<HttpResponse> {
    let form = AddForm {
        signing: Some("on".into()),
        rate_limit: verifiers::DEFAULT_RATE_LIMIT.to_string(),
        ..AddForm::default()
    };
    list_page(&state, user, form, None).await
}

/// `POST /verifiers`: register; errors come back next to the typed form.
pub async fn create(
    state: web::Data<AppState>,
    CsrfForm(form, user): CsrfForm<AddForm>,
) -> Result<HttpResponse> {
    let cas: Vec<&str> = [
        ("signing", &form.signing),
        ("authentication", &form.authentication),
        ("infrastructure", &form.infrastructure),
    ]
    .iter()
    .filter(|(_, on)| on.is_some())
    .map(|(n, _)| *n)
    .collect();
    let parsed = verifiers::parse_cas(&cas.join(",")).and_then(|cas| {
        let rate_limit = form.rate_limit.trim().parse::<i64>().map_err(|_| {
            crate::error::Error::bad("rate_limit", "requests per minute, a whole number")
        })?;
        Ok(NewVerifier {
            name: form.name.clone(),
            contact: form.contact.clone(),
            cas,
            rate_limit,
        })
    });
    let new = match parsed {
        Ok(n) => n,
        Err(e) => return list_page(&state, user, form, Some(e.to_string())).await,
    };
    let (actor, now) = (user.actor(), state.clock.now());
    match state
        .with_write(move |c| verifiers::add(c, &new, &actor, now))
        .await
    {
        Ok(v) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/verifiers/{}", v.id)))
            .finish()),
        Err(e) if e.is_client_error() => list_page(&state, user, form, Some(e.to_string())).await,
        Err(e) => Err(e),
    }
}

struct CredLine {
    c: Credential,
    created: String,
    revoked: Option<String>,
    expires: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/verifier.html")]
struct ShowPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    v: Verifier,
    credentials: Vec<CredLine>,
    message: Option<(bool, String)>,
    secret: Option<String>,
}

async fn show_page(
    state: &AppState,
    user: StaffUser,
    id: i64,
    message: Option<(bool, String)>,
    secret: Option<String>,
) -> Result<HttpResponse> {
    let (v, creds) = state
        .with_conn(move |c| {
            let v = verifiers::find(c, &id.to_string())?;
            let creds = verifiers::credentials(c, v.id)?;
            Ok((v, creds))
        })
        .await?;
    html(&ShowPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: NAV,
        v,
        credentials: creds
            .into_iter()
            .map(|c| CredLine {
                created: date(c.created_at),
                revoked: c.revoked_at.map(date),
                expires: c.not_after.map(date),
                c,
            })
            .collect(),
        message,
        secret,
    })
}

/// `GET /verifiers/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    show_page(&state, user, id.into_inner(), None, None).await
}

/// A form with only the CSRF token and an optional field.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ActionForm {
    csrf: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    csr: String,
}

impl HasCsrf for ActionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn after<T>(
    state: &AppState,
    user: StaffUser,
    id: i64,
    r: Result<T>,
    ok: impl FnOnce(T) -> (String, Option<String>),
) -> Result<HttpResponse> {
    match r {
        Ok(t) => {
            let (text, secret) = ok(t);
            show_page(state, user, id, Some((true, text)), secret).await
        }
        Err(e) if e.is_client_error() => {
            show_page(state, user, id, Some((false, e.to_string())), None).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /verifiers/{id}/status`.
pub async fn status(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form, user): CsrfForm<ActionForm>,
) -> Result<HttpResponse> {
    let (id, actor, now) = (id.into_inner(), user.actor(), state.clock.now());
    let active = form.status == crate::db::models::verifier::VerifierStatus::Active;
    let r = state
        .with_write(move |c| verifiers::set_active(c, id, active, &actor, now))
        .await;
    after(&state, user, id, r, |v| {
        (
            if v.status == crate::db::models::verifier::VerifierStatus::Active {
                "利用を再開しました。".into()
            } else {
                "利用を停止しました。次の要求から拒否されます。".into()
            },
            None,
        )
    })
    .await
}

/// `POST /verifiers/{id}/tokens`: the token is shown on this page only.
pub async fn token(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form, user): CsrfForm<ActionForm>,
) -> Result<HttpResponse> {
    let (id, actor, now) = (id.into_inner(), user.actor(), state.clock.now());
    let r = state
        .with_write(move |c| verifiers::create_token(c, id, &form.label, &actor, now))
        .await;
    after(&state, user, id, r, |(_, token)| {
        (
            "APIトークンを発行しました。この画面でしか表示されません。検証者に安全な方法で渡してください。".into(),
            Some(token),
        )
    })
    .await
}

/// `POST /verifiers/{id}/certificates`: the certificate (PEM) is shown to hand over.
pub async fn certificate(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form, user): CsrfForm<ActionForm>,
) -> Result<HttpResponse> {
    let (id, actor, now) = (id.into_inner(), user.actor(), state.clock.now());
    let r = match crate::ca::csr::check(form.csr.as_bytes()) {
        Ok(csr) => {
            let (h, prefix) = (state.hierarchy()?, state.config.instance_prefix);
            state
                .with_write(move |c| {
                    let (_, issued) = verifiers::issue_certificate(
                        c,
                        &h,
                        id,
                        csr,
                        &form.label,
                        prefix,
                        &actor,
                        now,
                    )?;
                    crate::ca::der_to_pem(&issued.der)
                })
                .await
        }
        Err(e) => Err(e),
    };
    after(&state, user, id, r, |pem| {
        ("クライアント証明書を発行しました。".into(), Some(pem))
    })
    .await
}

/// `POST /verifiers/{id}/credentials/{credential}/revoke`.
pub async fn revoke(
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(_, user): CsrfForm<ActionForm>,
) -> Result<HttpResponse> {
    let ((id, cred), actor, now) = (path.into_inner(), user.actor(), state.clock.now());
    let r = state
        .with_write(move |c| verifiers::revoke_credential(c, id, cred, &actor, now))
        .await;
    if r.as_ref()
        .is_ok_and(|c| c.kind == crate::db::models::verifier::CredentialKind::Certificate)
    {
        state.refresh_ocsp().await;
    }
    after(&state, user, id, r, |c| {
        (format!("資格情報 {} を失効させました。", c.id), None)
    })
    .await
}
