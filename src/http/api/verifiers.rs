//! `/api/v1/verifiers` (admin): register verifiers, suspend them, give and revoke
//! credentials (tokens shown once; client certificates from a CSR).

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::extract::{Body, Staff};
use crate::service::verifiers::{self, NewVerifier};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// Body of `POST /api/v1/verifiers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVerifierBody {
    /// Name (unique).
    pub name: String,
    /// Contact of the verifier's office.
    pub contact: String,
    /// CAs whose data it may use: `signing`, `authentication`, `infrastructure`.
    pub cas: Vec<String>,
    /// Requests per minute (default 60,000).
    #[serde(default)]
    pub rate_limit: Option<i64>,
}

fn verifier_json(v: &verifiers::Verifier, creds: &[verifiers::Credential]) -> serde_json::Value {
    serde_json::json!({
        "id": v.id,
        "name": v.name,
        "contact": v.contact,
        "cas": v.cas.split(',').collect::<Vec<_>>(),
        "status": v.status,
        "rate_limit_per_minute": v.rate_limit,
        "created_at": v.created_at,
        "credentials": creds,
    })
}

/// `GET /api/v1/verifiers`.
pub async fn list(state: web::Data<AppState>, Staff(_): Staff) -> Result<HttpResponse> {
    let all = state
        .with_conn(|c| {
            let list = verifiers::list(c)?;
            list.into_iter()
                .map(|v| {
                    let creds = verifiers::credentials(c, v.id)?;
                    Ok(verifier_json(&v, &creds))
                })
                .collect::<Result<Vec<_>>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(all))
}

/// `POST /api/v1/verifiers`.
pub async fn create(
    state: web::Data<AppState>,
    Staff(admin): Staff,
    body: Body<NewVerifierBody>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let new = NewVerifier {
        name: b.name,
        contact: b.contact,
        cas: verifiers::parse_cas(&b.cas.join(","))?,
        rate_limit: b.rate_limit.unwrap_or(verifiers::DEFAULT_RATE_LIMIT),
    };
    let now = state.clock.now();
    let v = state
        .with_write(move |c| verifiers::add(c, &new, &admin.actor(), now))
        .await?;
    Ok(HttpResponse::Created().json(verifier_json(&v, &[])))
}

/// `GET /api/v1/verifiers/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    Staff(_): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let out = state
        .with_conn(move |c| {
            let v = verifiers::find(c, &id.to_string())?;
            let creds = verifiers::credentials(c, v.id)?;
            Ok(verifier_json(&v, &creds))
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Body of `POST /api/v1/verifiers/{id}/status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// `active` or `suspended`.
    pub status: String,
}

/// `POST /api/v1/verifiers/{id}/status`: suspend or reactivate.
pub async fn status(
    state: web::Data<AppState>,
    Staff(admin): Staff,
    id: web::Path<i64>,
    body: Body<StatusBody>,
) -> Result<HttpResponse> {
    let active = match crate::db::models::verifier::VerifierStatus::parse(&body.status) {
        Some(crate::db::models::verifier::VerifierStatus::Active) => true,
        Some(crate::db::models::verifier::VerifierStatus::Suspended) => false,
        None => {
            return Err(Error::bad(
                "status",
                format!("{:?}: use active or suspended", body.status),
            ));
        }
    };
    let (id, now) = (id.into_inner(), state.clock.now());
    let v = state
        .with_write(move |c| verifiers::set_active(c, id, active, &admin.actor(), now))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "id": v.id, "status": v.status })))
}

/// Body of `POST /api/v1/verifiers/{id}/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// What the token is for.
    pub label: String,
}

/// `POST /api/v1/verifiers/{id}/tokens`: the token is in this answer only.
pub async fn token(
    state: web::Data<AppState>,
    Staff(admin): Staff,
    id: web::Path<i64>,
    body: Body<TokenBody>,
) -> Result<HttpResponse> {
    let (id, now, label) = (id.into_inner(), state.clock.now(), body.into_inner().label);
    let (cred, token) = state
        .with_write(move |c| verifiers::create_token(c, id, &label, &admin.actor(), now))
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "credential": cred, "token": token })))
}

/// Body of `POST /api/v1/verifiers/{id}/certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateBody {
    /// What the certificate is for.
    pub label: String,
    /// PEM CSR (its key and common name are used).
    pub csr: String,
}

/// `POST /api/v1/verifiers/{id}/certificates`: a client certificate for mutual TLS.
pub async fn certificate(
    state: web::Data<AppState>,
    Staff(admin): Staff,
    id: web::Path<i64>,
    body: Body<CertificateBody>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let csr = crate::ca::csr::check(b.csr.as_bytes())?;
    let (id, now, h, prefix) = (
        id.into_inner(),
        state.clock.now(),
        state.hierarchy()?,
        state.config.instance_prefix,
    );
    let (cred, issued) = state
        .with_write(move |c| {
            verifiers::issue_certificate(c, &h, id, csr, &b.label, prefix, &admin.actor(), now)
        })
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "credential": cred,
        "serial": issued.serial,
        "certificate": crate::ca::der_to_pem(&issued.der)?,
    })))
}

/// `POST /api/v1/verifiers/{id}/credentials/{credential}/revoke`.
pub async fn revoke(
    state: web::Data<AppState>,
    Staff(admin): Staff,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse> {
    let ((id, cred), now) = (path.into_inner(), state.clock.now());
    let c = state
        .with_write(move |c| verifiers::revoke_credential(c, id, cred, &admin.actor(), now))
        .await?;
    if c.kind == crate::db::models::verifier::CredentialKind::Certificate {
        // A revoked client certificate is answered as revoked at once.
        state.refresh_ocsp().await;
    }
    Ok(HttpResponse::Ok().json(c))
}
