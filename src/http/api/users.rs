//! `/api/v1/users` (admin).

use crate::app::AppState;
use crate::db::models::user::User;
use crate::error::{Error, Result};
use crate::http::extract::{Body, Staff};
use crate::service::users::{self, Role};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// `GET /api/v1/users`.
pub async fn list(state: web::Data<AppState>, Staff(_): Staff) -> Result<HttpResponse> {
    let now = state.clock.now();
    let accounts = state.with_conn(move |c| users::accounts(c, now)).await?;
    Ok(HttpResponse::Ok().json(accounts))
}

/// `POST /api/v1/users/{id}/disable`.
pub async fn disable(
    state: web::Data<AppState>,
    Staff(admin): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let (now, id) = (state.clock.now(), id.into_inner());
    let u = state
        .with_write(move |c| users::disable(c, id, &admin.actor(), now))
        .await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"id": u.id, "username": u.username, "disabled": true})))
}

/// `POST /api/v1/users/{id}/enable`.
pub async fn enable(
    state: web::Data<AppState>,
    Staff(admin): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let (now, id) = (state.clock.now(), id.into_inner());
    let u = state
        .with_write(move |c| users::enable(c, id, &admin.actor(), now))
        .await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"id": u.id, "username": u.username, "disabled": false})))
}

/// `POST /api/v1/users/{id}/password-reset`: the one-time password in this answer only.
pub async fn reset_password(
    state: web::Data<AppState>,
    Staff(admin): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let (now, id) = (state.clock.now(), id.into_inner());
    let (u, otp) = state
        .with_write(move |c| users::reset_password(c, id, &admin.actor(), now))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": u.id, "username": u.username, "one_time_password": otp,
    })))
}

/// `GET /api/v1/users/{id}/tokens`.
pub async fn tokens(
    state: web::Data<AppState>,
    Staff(_): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let (now, id) = (state.clock.now(), id.into_inner());
    let list = state
        .with_conn(move |c| {
            User::by_id(c, id)?.ok_or_else(|| Error::NotFound(format!("user {id}")))?;
            users::tokens(c, id, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// `POST /api/v1/users/{id}/tokens/{token}/revoke`.
pub async fn revoke_token(
    state: web::Data<AppState>,
    Staff(admin): Staff,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let (id, token) = path.into_inner();
    state
        .with_write(move |c| users::revoke_token(c, id, token, &admin.actor(), now))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": token, "revoked": true})))
}

/// Body of `POST /api/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// Login name.
    pub username: String,
    /// Role name.
    pub role: String,
    /// Municipality code (clerks only).
    #[serde(default)]
    pub municipality_code: Option<String>,
}

/// `POST /api/v1/users`: returns the one-time password once.
pub async fn create(
    state: web::Data<AppState>,
    Staff(admin): Staff,
    body: Body<NewUserBody>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let role = Role::parse(&b.role)?;
    let now = state.clock.now();
    let (user, otp) = state
        .with_write(move |c| {
            users::add(
                c,
                &b.username,
                role,
                b.municipality_code.as_deref(),
                &admin.actor(),
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": user.id, "username": user.username, "role": user.role, "one_time_password": otp,
    })))
}
