//! Server-rendered Japanese staff pages (askama, rendered to a String).

pub mod applications;
pub mod audit;
pub mod batches;
pub mod cards;
pub mod home;
pub mod login;
pub mod password;
pub mod users;
pub mod verification;
pub mod verifiers;

use crate::error::{Error, Result};
use actix_web::HttpResponse;

/// Render a template into an HTML response that is never cached.
pub fn html(t: &impl askama::Template) -> Result<HttpResponse> {
    let body = t
        .render()
        .map_err(|e| Error::Internal(format!("template: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}
