//! `/api/v1/certificates`: issue from a CSR (card-writing stations, infrastructure hosts)
//! and fetch an issued certificate.

use crate::app::AppState;
use crate::ca::csr;
use crate::ca::identity::Identity;
use crate::ca::profile::{CaName, Profile};
use crate::ca::serial::Serial;
use crate::db::models::ca::{CertificateRow, state};
use crate::error::{Error, Result};
use crate::http::extract::Staff;
use crate::service::issuance::{self, IssueRequest};
use crate::service::users::Role;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// Body of `POST /api/v1/certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    /// Profile name.
    pub profile: String,
    /// PEM CSR.
    pub csr: String,
    /// Holder identity (holder profiles), as in the `--identity` file.
    #[serde(default)]
    pub identity: Option<serde_json::Value>,
    /// Issuing CA for OCSP responder certificates.
    #[serde(default)]
    pub ca: Option<String>,
}

/// `POST /api/v1/certificates`. Holder profiles are for operators; infrastructure
/// profiles for administrators.
pub async fn issue(
    state: web::Data<AppState>,
    Staff(user): Staff,
    body: web::Json<IssueBody>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let profile = Profile::parse(&b.profile)?;
    let allowed = if profile.is_holder() {
        Role::Operator
    } else {
        Role::Admin
    };
    if user.role != allowed {
        return Err(Error::Forbidden(format!(
            "profile {} is issued by the {} role",
            profile.as_str(),
            allowed.as_str()
        )));
    }
    let csr = csr::check(b.csr.as_bytes())?;
    let identity = match b.identity {
        Some(v) => Some(Identity::from_json(&v.to_string())?),
        None => None,
    };
    let ca = b.ca.as_deref().map(CaName::parse).transpose()?;
    let req = IssueRequest {
        profile,
        ca,
        csr,
        identity,
    };
    let h = state.hierarchy()?;
    let now = state.clock.now();
    let prefix = state.config.instance_prefix;
    let issued = state
        .with_db(move |db| issuance::issue(&mut &db.write, &h, &req, &user.actor(), prefix, now))
        .await?;
    state
        .metrics
        .certificates_issued
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(HttpResponse::Created().json(serde_json::json!({
        "serial": issued.serial,
        "ca": issued.ca.as_str(),
        "certificate": crate::ca::der_to_pem(&issued.der)?,
    })))
}

/// `GET /api/v1/certificates/{serial}`.
pub async fn get(
    state: web::Data<AppState>,
    Staff(_): Staff,
    serial: web::Path<String>,
) -> Result<HttpResponse> {
    let serial = Serial::from_hex(&serial.into_inner())?.to_hex();
    let row = state
        .with_conn(move |c| {
            CertificateRow::by_serial(c, &serial)?
                .ok_or_else(|| Error::NotFound("certificate".into()))
        })
        .await?;
    let pem = match (&row.cert_der, row.state.as_str()) {
        (Some(der), state::ISSUED) => Some(crate::ca::der_to_pem(der)?),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "serial": row.serial, "ca": row.issuer, "profile": row.profile, "state": row.state,
        "not_before": row.not_before, "not_after": row.not_after, "certificate": pem,
    })))
}

/// Body of `POST /api/v1/crls/publish`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishCrls {
    /// Only delta CRLs on the current full CRLs.
    #[serde(default)]
    pub delta_only: bool,
}

/// `POST /api/v1/crls/publish` (admin): CRLs for every scope now, as `kofu crl publish`.
pub async fn publish_crls(
    state: web::Data<AppState>,
    Staff(user): Staff,
    body: web::Json<PublishCrls>,
) -> Result<HttpResponse> {
    let h = state.hierarchy()?;
    let now = state.clock.now();
    let delta_only = body.delta_only;
    let published = state
        .with_db(move |db| crate::service::crl::publish_all(db, &h, delta_only, &user.actor(), now))
        .await?;
    let list: Vec<serde_json::Value> = published
        .iter()
        .map(|p| {
            serde_json::json!({
                "file": crate::service::crl::file_name(p.ca, p.shard, p.kind),
                "number": p.number,
                "entries": p.entries,
                "bytes": p.bytes,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "published": list })))
}
