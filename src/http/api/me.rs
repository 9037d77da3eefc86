//! `/api/v1/me` and the caller's own API tokens.

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::extract::{Body, Staff};
use crate::service::{auth, users};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// `GET /api/v1/me`.
pub async fn get(Staff(user): Staff) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "username": user.username,
        "role": user.role,
        "municipality_code": user.municipality_code,
        "must_change_password": user.must_change_password,
    }))
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for.
    pub label: String,
    /// The caller's password again: a session (or a token) alone cannot mint tokens.
    pub password: String,
    /// Days it lasts (default `auth.token_days`, at most `auth.token_max_days`).
    #[serde(default)]
    pub days: Option<i64>,
}

/// The lifetime asked for, within the configured bounds.
pub fn token_days(cfg: &crate::config::AuthConfig, asked: Option<i64>) -> Result<i64> {
    let days = asked.unwrap_or(cfg.token_days);
    if !(1..=cfg.token_max_days).contains(&days) {
        return Err(Error::bad(
            "days",
            format!("between 1 and {} days", cfg.token_max_days),
        ));
    }
    Ok(days)
}

/// `POST /api/v1/tokens`: a bearer token for the caller, shown once, after the caller's
/// password is given again.
pub async fn create_token(
    state: web::Data<AppState>,
    Staff(user): Staff,
    body: Body<NewToken>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let b = body.into_inner();
    let days = token_days(&state.config.auth, b.days)?;
    let (id, token) = state
        .with_write(move |c| {
            auth::confirm_password(c, &user, &b.password, now)?;
            auth::create_token(c, user.id, &b.label, days, &user.actor(), now)
        })
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({"id": id, "token": token, "days": days})))
}

/// `GET /api/v1/tokens`: the caller's tokens (never their secrets).
pub async fn list_tokens(state: web::Data<AppState>, Staff(user): Staff) -> Result<HttpResponse> {
    let now = state.clock.now();
    let list = state
        .with_conn(move |c| users::tokens(c, user.id, now))
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// `POST /api/v1/tokens/{id}/revoke`: revoke one of the caller's own tokens.
pub async fn revoke_token(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let id = id.into_inner();
    state
        .with_write(move |c| users::revoke_token(c, user.id, id, &user.actor(), now))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": id, "revoked": true})))
}
