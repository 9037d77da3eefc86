//! `/api/v1/linkage/*` and `/api/v1/verifier`: what a verifier asks (SPEC §5).

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::extract::{Body, Verifier};
use crate::service::linkage;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// Body of `POST /api/v1/linkage/serials` and `/api/v1/linkage/query`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialList {
    /// Signing-certificate serials, hex (colons allowed), at most 10,000.
    pub serials: Vec<String>,
}

/// `GET /api/v1/verifier`: who the credentials belong to.
pub async fn whoami(Verifier(v): Verifier) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": v.id,
        "name": v.name,
        "cas": v.cas.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "rate_limit_per_minute": v.rate_limit,
        "credential": v.credential_id,
        "via": v.via,
    })))
}

/// `POST /api/v1/linkage/serials`: register serials (idempotent).
pub async fn register(
    state: web::Data<AppState>,
    Verifier(v): Verifier,
    body: Body<SerialList>,
) -> Result<HttpResponse> {
    let serials = linkage::parse_serials(&body.into_inner().serials)?;
    let now = state.clock.now();
    let out = state
        .with_write(move |c| linkage::register(c, &v, &serials, now))
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// `POST /api/v1/linkage/query`: links and statuses of registered serials.
pub async fn query(
    state: web::Data<AppState>,
    Verifier(v): Verifier,
    body: Body<SerialList>,
) -> Result<HttpResponse> {
    let serials = linkage::parse_serials(&body.into_inner().serials)?;
    let now = state.clock.now();
    let who = v.clone();
    let (answers, items) = state
        .with_conn(move |c| linkage::query(c, &who, &serials))
        .await?;
    state
        .with_write(move |c| linkage::audit(c, &v, &items, now))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "results": answers })))
}

/// Query of `GET /api/v1/linkage/changes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// Start after this cursor (omitted: from the beginning).
    pub cursor: Option<String>,
    /// At most this many entries (default and maximum 10,000).
    pub limit: Option<i64>,
    /// `jsonl` (default) or `csv`.
    pub format: Option<String>,
}

/// `GET /api/v1/linkage/changes`: the feed after a cursor, as JSON lines or CSV. The next
/// cursor is in the `Kofu-Next-Cursor` header, and each entry carries its own so that an
/// interrupted download resumes after the last entry received.
pub async fn changes(
    state: web::Data<AppState>,
    Verifier(v): Verifier,
    q: Result<web::Query<ChangesQuery>, actix_web::Error>,
) -> Result<HttpResponse> {
    let q = q
        .map_err(|e| Error::bad("query", format!("{e}; expected cursor, limit and format")))?
        .into_inner();
    let cursor = linkage::parse_cursor(q.cursor.as_deref())?;
    let limit = q.limit.unwrap_or(linkage::MAX_CHANGES);
    let csv = match q.format.as_deref() {
        None | Some("jsonl") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(Error::bad("format", format!("{other:?}: use jsonl or csv")));
        }
    };
    let now = state.clock.now();
    let who = v.clone();
    let (page, items) = state
        .with_conn(move |c| linkage::changes(c, &who, cursor, limit))
        .await?;
    state
        .with_write(move |c| linkage::audit(c, &v, &items, now))
        .await?;
    let (body, ctype) = if csv {
        (linkage::to_csv(&page.entries)?, "text/csv; charset=utf-8")
    } else {
        (
            linkage::to_json_lines(&page.entries)?,
            "application/jsonl; charset=utf-8",
        )
    };
    Ok(HttpResponse::Ok()
        .content_type(ctype)
        .insert_header(("Kofu-Next-Cursor", page.next_cursor))
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}
