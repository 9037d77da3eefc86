//! `/api/v1/audit` (auditor): read and verify the chain. Reading is itself audited.

use crate::app::AppState;
use crate::audit;
use crate::error::{Error, Result};
use crate::http::extract::Staff;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Entries before this sequence number.
    pub before: Option<i64>,
    /// Page size (1..=1000, default 100).
    pub limit: Option<i64>,
}

/// `GET /api/v1/audit`.
pub async fn list(
    state: web::Data<AppState>,
    Staff(user): Staff,
    q: web::Query<Page>,
) -> Result<HttpResponse> {
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::bad("limit", "between 1 and 1000"));
    }
    let now = state.clock.now().timestamp();
    let entries = state
        .with_write(move |c| {
            audit::append(c, now, &user.actor(), "audit.read", "audit_log", "")?;
            audit::list(c, q.before, limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(entries))
}

/// `GET /api/v1/audit/verify`.
pub async fn verify(state: web::Data<AppState>, Staff(user): Staff) -> Result<HttpResponse> {
    let now = state.clock.now().timestamp();
    let result = state
        .with_write(move |c| {
            let r = audit::verify(c);
            audit::append(
                c,
                now,
                &user.actor(),
                "audit.verify",
                "audit_log",
                if r.is_ok() { "ok" } else { "broken" },
            )?;
            Ok(r)
        })
        .await?;
    Ok(match result {
        Ok(v) => HttpResponse::Ok().json(serde_json::json!({"ok": true, "entries": v.entries})),
        Err(Error::AuditBroken { seq, message }) => HttpResponse::Ok()
            .json(serde_json::json!({"ok": false, "first_broken_entry": seq, "problem": message})),
        Err(e) => return Err(e),
    })
}
