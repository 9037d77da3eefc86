//! `/api/v1/certificates`: infrastructure certificates from a CSR (the admin), and fetching
//! an issued certificate.

use crate::app::AppState;
use crate::ca::csr;
use crate::ca::profile::{CaName, Profile};
use crate::ca::serial::Serial;
use crate::db::models::ca::{CertificateRow, state};
use crate::error::{Error, Result};
use crate::http::extract::{Body, Staff};
use crate::service::issuance::{self, IssueRequest};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// Body of `POST /api/v1/certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    /// Profile name: ocsp, verifier-client or tls-server.
    pub profile: String,
    /// PEM CSR.
    pub csr: String,
    /// Issuing CA for OCSP responder certificates.
    #[serde(default)]
    pub ca: Option<String>,
}

/// `POST /api/v1/certificates` (admin): infrastructure profiles only; holder certificates
/// are never issued from a request.
pub async fn issue(
    state: web::Data<AppState>,
    Staff(user): Staff,
    body: Body<IssueBody>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let profile = Profile::parse(&b.profile)?;
    if profile.is_holder() {
        return Err(issuance::holder_refusal(profile));
    }
    let csr = csr::check(b.csr.as_bytes())?;
    let ca = b.ca.as_deref().map(CaName::parse).transpose()?;
    let req = IssueRequest {
        profile,
        ca,
        csr,
        identity: None,
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
        (Some(stored), state::ISSUED) => {
            let key = state.data_key().ok();
            let der = crate::service::cert_store::open(key.as_ref(), stored)?;
            Some(crate::ca::der_to_pem(&der)?)
        }
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
    body: Body<PublishCrls>,
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
