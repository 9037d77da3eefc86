//! `/api/v1/me` and personal API tokens.

use crate::app::AppState;
use crate::error::Result;
use crate::http::extract::Staff;
use crate::service::auth;
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
}

/// `POST /api/v1/tokens`: a bearer token for the caller, shown once.
pub async fn create_token(
    state: web::Data<AppState>,
    Staff(user): Staff,
    body: web::Json<NewToken>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let label = body.into_inner().label;
    let (id, token) = state
        .with_write(move |c| auth::create_token(c, user.id, &label, &user.actor(), now))
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({"id": id, "token": token})))
}
