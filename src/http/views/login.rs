//! Login and logout. The login form is protected by a double-submit token (a cookie and a
//! hidden field that must match), since there is no session yet.

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::SESSION_COOKIE;
use crate::http::extract::{CsrfForm, HasCsrf, csrf_matches};
use crate::http::views::html;
use crate::service::auth;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

const LOGIN_CSRF_COOKIE: &str = "kofu_login_csrf";

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage {
    csrf: String,
    username: String,
    error: Option<String>,
}

fn cookie<'a>(name: &'a str, value: String, secure: bool) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish()
}

/// Cookies get `Secure` when configured (or the public URL is https) and whenever the
/// request itself came over TLS.
fn secure(state: &AppState, req: &HttpRequest) -> bool {
    state.config.cookies_secure() || crate::http::tls::over_tls(req)
}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    username: String,
    error: Option<String>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse> {
    let token = auth::random_secret()?;
    let mut resp = html(&LoginPage {
        csrf: token.clone(),
        username,
        error,
    })?;
    *resp.status_mut() = status;
    resp.add_cookie(&cookie(LOGIN_CSRF_COOKIE, token, secure(state, req)))
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(resp)
}

/// `GET /login`.
pub async fn form(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse> {
    login_page(
        &state,
        &req,
        String::new(),
        None,
        actix_web::http::StatusCode::OK,
    )
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

/// `POST /login`.
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse> {
    let f = form.into_inner();
    let expected = req.cookie(LOGIN_CSRF_COOKIE).map(|c| c.value().to_string());
    if !csrf_matches(&f.csrf, expected.as_deref()) {
        return login_page(
            &state,
            &req,
            f.username,
            Some("画面の有効期限が切れました。もう一度ログインしてください。".into()),
            actix_web::http::StatusCode::FORBIDDEN,
        );
    }
    let now = state.clock.now();
    let (username, password) = (f.username.clone(), f.password);
    let source = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let st = state.clone();
    let result = state
        .with_write(move |c| {
            let ctx = auth::LoginContext {
                source: &source,
                policy: &st.config.auth,
                refusals: &st.refusals,
            };
            auth::login(c, &ctx, &username, &password, now)
        })
        .await;
    match result {
        Ok(s) => {
            let target = if s.user.must_change_password {
                "/password"
            } else {
                "/"
            };
            let mut resp = HttpResponse::SeeOther()
                .insert_header(("Location", target))
                .finish();
            resp.add_cookie(&cookie(SESSION_COOKIE, s.cookie, secure(&state, &req)))
                .map_err(|e| Error::Internal(e.to_string()))?;
            Ok(resp)
        }
        Err(Error::Unauthenticated) => {
            state
                .metrics
                .logins_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            login_page(
                &state,
                &req,
                f.username,
                Some("ユーザー名またはパスワードが違います。".into()),
                actix_web::http::StatusCode::UNAUTHORIZED,
            )
        }
        Err(Error::Locked(_)) => login_page(
            &state,
            &req,
            f.username,
            Some(
                "ログインの失敗が続いたため、15分間ロックされています。管理者に連絡してください。"
                    .into(),
            ),
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(e) => Err(e),
    }
}

/// A form with nothing but the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

impl HasCsrf for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /logout`.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: CsrfForm<CsrfOnly>,
) -> Result<HttpResponse> {
    let CsrfForm(_, user) = form;
    if let Some(c) = req.cookie(SESSION_COOKIE) {
        let value = c.value().to_string();
        let now = state.clock.now();
        state
            .with_write(move |conn| auth::logout(conn, &value, &user.actor(), now))
            .await?;
    }
    let mut resp = HttpResponse::SeeOther()
        .insert_header(("Location", "/login"))
        .finish();
    let mut gone = cookie(SESSION_COOKIE, String::new(), secure(&state, &req));
    gone.make_removal();
    resp.add_cookie(&gone)
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(resp)
}
