//! `/api/v1/applications` (office intake) and the clerk's verification calls.

use crate::app::AppState;
use crate::db::models::application::ApplicationRow;
use crate::error::{Error, Result};
use crate::http::extract::{Body, Staff};
use crate::jp::era::format_era;
use crate::service::intake::{self, ApplicationInput, Forms};
use crate::service::users::Role;
use crate::service::verification::{self, Check};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// `POST /api/v1/applications`; with `Idempotency-Key`, a retry gets the first answer.
pub async fn create(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    Staff(user): Staff,
    body: Body<ApplicationInput>,
) -> Result<HttpResponse> {
    let key = state.data_key()?;
    let now = state.clock.now();
    let input = body.into_inner();
    let idem = crate::http::idempotency_key(&req)?;
    let request = serde_json::to_vec(&input).map_err(|e| Error::Internal(e.to_string()))?;
    let answer = state
        .with_write(move |c| {
            crate::service::idempotency::once(
                c,
                &crate::service::idempotency::Request {
                    user_id: user.id,
                    scope: "POST /api/v1/applications",
                    key: idem.as_deref(),
                    body: &request,
                },
                now,
                crate::http::error::status_u16,
                |c| {
                    let (id, reference, st) =
                        intake::create(c, &key, &input, user.id, &user.actor(), now)?;
                    Ok((
                        201,
                        serde_json::json!({"id": id, "reference": reference, "state": st}),
                    ))
                },
            )
        })
        .await?;
    crate::http::answer(&answer)
}

/// Query of `GET /api/v1/applications`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this state.
    pub state: Option<String>,
    /// Only this municipality.
    pub municipality_code: Option<String>,
    /// Ids below this (paging).
    pub before: Option<i64>,
    /// Page size, 1..=500 (default 100).
    pub limit: Option<i64>,
}

/// The non-personal summary of an application.
pub fn summary(r: &ApplicationRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "reference": r.reference, "kind": r.kind, "state": r.state,
        "municipality_code": r.municipality_code, "delivery": r.delivery,
        "forms": {"application": r.form_application, "power_of_attorney": r.form_power_of_attorney, "consent": r.form_consent},
        "created_at": r.created_at, "registry_status": r.registry_status,
        "verdicts": r.verdicts.as_deref().and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok()),
    })
}

/// `GET /api/v1/applications`: summaries only (no personal data).
pub async fn list(
    state: web::Data<AppState>,
    Staff(_): Staff,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Error::bad("limit", "between 1 and 500"));
    }
    let rows = state
        .with_conn(move |c| {
            Ok(ApplicationRow::list(
                c,
                q.state.as_deref(),
                q.municipality_code.as_deref(),
                q.before,
                limit,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(summary).collect::<Vec<_>>()))
}

/// `GET /api/v1/applications/{id}`: with the applicant's data; the read is audited. Clerks
/// see only their own municipality's.
pub async fn get(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let key = state.data_key()?;
    let now = state.clock.now();
    let id = id.into_inner();
    let (row, a) = state
        .with_write(move |c| verification::view(c, &key, &user, id, now))
        .await?;
    let mut v = summary(&row);
    v["applicant"] = serde_json::json!({
        "name": a.person.name, "name_kana": a.person.name_kana, "birth_date": a.person.birth_date, "birth_date_era": format_era(a.person.birth_date),
        "sex": a.person.sex, "address": a.person.address, "postal_code": a.person.postal_code, "email": a.email,
    });
    Ok(HttpResponse::Ok().json(v))
}

/// `POST /api/v1/applications/{id}/forms`.
pub async fn forms(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
    body: Body<Forms>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let (id, forms) = (id.into_inner(), body.into_inner());
    let st = state
        .with_write(move |c| intake::update_forms(c, id, forms, &user.actor(), now))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": id, "state": st})))
}

/// `GET /api/v1/verification`: the clerk's queue.
pub async fn queue(state: web::Data<AppState>, Staff(user): Staff) -> Result<HttpResponse> {
    let key = state.data_key()?;
    let now = state.clock.now();
    let items = state
        .with_write(move |c| verification::queue(c, &key, &user, now))
        .await?;
    Ok(HttpResponse::Ok().json(
        items
            .iter()
            .map(|(r, a)| serde_json::json!({"id": r.id, "reference": r.reference, "kind": r.kind, "name": a.person.name, "name_kana": a.person.name_kana, "created_at": r.created_at}))
            .collect::<Vec<_>>(),
    ))
}

/// The check as JSON: both sides and the verdicts.
pub fn check_json(c: &Check) -> serde_json::Value {
    let a = &c.applicant;
    serde_json::json!({
        "id": c.application.id,
        "reference": c.application.reference,
        "registry_status": c.lookup.status,
        "applicant": {"name": a.person.name, "name_kana": a.person.name_kana, "birth_date": a.person.birth_date, "sex": a.person.sex, "address": a.person.address},
        "registry": c.lookup.record.as_ref().map(|r| serde_json::json!({
            "name": r.person.name, "name_kana": r.person.name_kana, "birth_date": r.person.birth_date, "sex": r.person.sex, "address": r.person.address,
        })),
        "verdicts": c.verdicts,
        "approvable": c.approvable(),
    })
}

/// `POST /api/v1/applications/{id}/check`: look the applicant up and compare (audited).
pub async fn check(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    clerk_only(&user.role)?;
    let (key, registry) = (state.data_key()?, state.registry()?);
    let now = state.clock.now();
    let id = id.into_inner();
    let c = state
        .with_write(move |conn| verification::check(conn, &key, registry.as_ref(), &user, id, now))
        .await?;
    Ok(HttpResponse::Ok().json(check_json(&c)))
}

/// Body of `POST /api/v1/applications/{id}/decision`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// true to approve, false to reject.
    pub approve: bool,
    /// Reason (required to reject).
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/applications/{id}/decision`.
pub async fn decide(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
    body: Body<Decision>,
) -> Result<HttpResponse> {
    clerk_only(&user.role)?;
    let (key, registry) = (state.data_key()?, state.registry()?);
    let now = state.clock.now();
    let (id, d) = (id.into_inner(), body.into_inner());
    let st = state
        .with_write(move |c| {
            verification::decide(
                c,
                &key,
                registry.as_ref(),
                &user,
                id,
                d.approve,
                &d.reason,
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": id, "state": st})))
}

fn clerk_only(role: &Role) -> Result<()> {
    if *role == Role::Clerk {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "only municipal clerks verify applicants".into(),
        ))
    }
}
