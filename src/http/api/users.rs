//! `/api/v1/users` (admin).

use crate::app::AppState;
use crate::db::models::user::User;
use crate::error::Result;
use crate::http::extract::Staff;
use crate::service::users::{self, Role};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// `GET /api/v1/users`.
pub async fn list(state: web::Data<AppState>, Staff(_): Staff) -> Result<HttpResponse> {
    let users = state.with_conn(|c| Ok(User::list(c)?)).await?;
    let out: Vec<_> = users
        .into_iter()
        .map(|u| {
            serde_json::json!({
                "id": u.id, "username": u.username, "role": u.role,
                "municipality_code": u.municipality_code, "disabled": u.disabled,
                "must_change_password": u.must_change_password,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
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
    body: web::Json<NewUserBody>,
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
