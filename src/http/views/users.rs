//! The admin's staff-account pages: the list (role, municipality, active or disabled, last
//! login, live tokens) with the form to add an account, and one account with its tokens and
//! the actions on it (disable, enable, reset the password to a one-time one, revoke a token).

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::extract::{CsrfForm, HasCsrf, Staff};
use crate::http::views::html;
use crate::jp::time;
use crate::service::auth::StaffUser;
use crate::service::users::{self, Account, Role, TokenInfo};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

const NAV: &[(&str, &str)] = &[("/users", "職員アカウント"), ("/verifiers", "検証者の管理")];

/// An account on the list.
struct AccountLine {
    a: Account,
    role_label: &'static str,
    last_login: String,
    last_login_iso: String,
}

fn line(a: Account) -> AccountLine {
    AccountLine {
        role_label: Role::parse(&a.role).map_or("不明", Role::label_ja),
        last_login: a.last_login_at.map_or("なし".into(), time::written),
        last_login_iso: a.last_login_at.map(time::iso).unwrap_or_default(),
        a,
    }
}

#[derive(Template)]
#[template(path = "pages/users.html")]
struct ListPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    accounts: Vec<AccountLine>,
    roles: Vec<(&'static str, &'static str)>,
    form: AddForm,
    error: Option<String>,
    created: Option<(String, String)>,
}

/// The form that adds an account.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AddForm {
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    municipality_code: String,
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
    created: Option<(String, String)>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let accounts = state.with_conn(move |c| users::accounts(c, now)).await?;
    let mut resp = html(&ListPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: NAV,
        accounts: accounts.into_iter().map(line).collect(),
        roles: Role::ALL
            .iter()
            .map(|r| (r.as_str(), r.label_ja()))
            .collect(),
        form,
        error: error.clone(),
        created,
    })?;
    if error.is_some() {
        *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

/// `GET /users`.
pub async fn list(state: web::Data<AppState>, Staff(user): Staff) -> Result<HttpResponse> {
    list_page(&state, user, AddForm::default(), None, None).await
}

/// `POST /users`: add an account; its one-time password is shown on the page once.
pub async fn create(
    state: web::Data<AppState>,
    CsrfForm(form, user): CsrfForm<AddForm>,
) -> Result<HttpResponse> {
    let role = match Role::parse(&form.role) {
        Ok(r) => r,
        Err(e) => return list_page(&state, user, form, Some(e.to_string()), None).await,
    };
    let muni = Some(form.municipality_code.trim().to_string()).filter(|m| !m.is_empty());
    let (name, actor, now) = (
        form.username.trim().to_string(),
        user.actor(),
        state.clock.now(),
    );
    match state
        .with_write(move |c| users::add(c, &name, role, muni.as_deref(), &actor, now))
        .await
    {
        Ok((u, otp)) => {
            list_page(
                &state,
                user,
                AddForm::default(),
                None,
                Some((u.username, otp)),
            )
            .await
        }
        Err(e) if e.is_client_error() => {
            list_page(&state, user, form, Some(e.to_string()), None).await
        }
        Err(e) => Err(e),
    }
}

/// A token on an account's page.
struct TokenLine {
    t: TokenInfo,
    status_label: &'static str,
    created: String,
    last_used: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "pages/user.html")]
struct ShowPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    account: AccountLine,
    tokens: Vec<TokenLine>,
    message: Option<(bool, String)>,
    one_time_password: Option<String>,
}

async fn show_page(
    state: &AppState,
    user: StaffUser,
    id: i64,
    message: Option<(bool, String)>,
    one_time_password: Option<String>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let (account, tokens) = state
        .with_conn(move |c| {
            let account = users::accounts(c, now)?
                .into_iter()
                .find(|a| a.id == id)
                .ok_or_else(|| Error::NotFound(format!("user {id}")))?;
            Ok((account, users::tokens(c, id, now)?))
        })
        .await?;
    let when = |t: Option<i64>| t.map_or("—".to_string(), time::written);
    let failed = message.as_ref().is_some_and(|(ok, _)| !ok);
    let mut resp = html(&ShowPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: NAV,
        account: line(account),
        tokens: tokens
            .into_iter()
            .map(|t| TokenLine {
                status_label: match t.status {
                    "live" => "有効",
                    "expired" => "期限切れ",
                    _ => "失効",
                },
                created: time::written(t.created_at),
                last_used: when(t.last_used_at),
                expires: when(t.expires_at),
                t,
            })
            .collect(),
        message,
        one_time_password,
    })?;
    if failed {
        *resp.status_mut() = actix_web::http::StatusCode::CONFLICT;
    }
    Ok(resp)
}

/// `GET /users/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    show_page(&state, user, id.into_inner(), None, None).await
}

/// A form that carries only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
}

impl HasCsrf for ActionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Run an action on account `id` and show its page with the outcome.
async fn act<T: Send + 'static>(
    state: &AppState,
    user: StaffUser,
    id: i64,
    done: &str,
    f: impl FnOnce(
        &mut crate::db::DbConn,
        &crate::audit::Actor,
        chrono::DateTime<chrono::Utc>,
    ) -> Result<T>
    + Send
    + 'static,
) -> Result<(HttpResponse, Option<T>)> {
    let (actor, now) = (user.actor(), state.clock.now());
    match state.with_write(move |c| f(c, &actor, now)).await {
        Ok(v) => Ok((
            show_page(state, user, id, Some((true, done.to_string())), None).await?,
            Some(v),
        )),
        Err(e) if e.is_client_error() => Ok((
            show_page(state, user, id, Some((false, e.to_string())), None).await?,
            None,
        )),
        Err(e) => Err(e),
    }
}

/// `POST /users/{id}/disable`.
pub async fn disable(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_, user): CsrfForm<ActionForm>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let done = "アカウントを停止しました。ログイン中の画面とAPIトークンは直ちに使えなくなります。";
    Ok(act(&state, user, id, done, move |c, a, now| {
        users::disable(c, id, a, now)
    })
    .await?
    .0)
}

/// `POST /users/{id}/enable`.
pub async fn enable(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_, user): CsrfForm<ActionForm>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let done = "アカウントを再開しました。";
    Ok(act(&state, user, id, done, move |c, a, now| {
        users::enable(c, id, a, now)
    })
    .await?
    .0)
}

/// `POST /users/{id}/password-reset`: the one-time password is shown once.
pub async fn reset_password(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_, user): CsrfForm<ActionForm>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let (actor, now) = (user.actor(), state.clock.now());
    match state
        .with_write(move |c| users::reset_password(c, id, &actor, now))
        .await
    {
        Ok((_, otp)) => {
            let done = "パスワードを初期化しました。次回ログイン時に変更が必要です。".to_string();
            show_page(&state, user, id, Some((true, done)), Some(otp)).await
        }
        Err(e) if e.is_client_error() => {
            show_page(&state, user, id, Some((false, e.to_string())), None).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /users/{id}/tokens/{token}/revoke`.
pub async fn revoke_token(
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(_, user): CsrfForm<ActionForm>,
) -> Result<HttpResponse> {
    let (id, token) = path.into_inner();
    let done = format!("トークン {token} を失効させました。");
    Ok(act(&state, user, id, &done, move |c, a, now| {
        users::revoke_token(c, id, token, a, now)
    })
    .await?
    .0)
}
