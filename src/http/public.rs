//! Public endpoints: health, metrics, and the CA certificates named in AIA caIssuers.

use crate::app::AppState;
use crate::ca::profile::CaName;
use crate::error::{Error, Result};
use actix_web::{HttpResponse, web};

/// `GET /healthz`: the database answers.
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse> {
    state.with_conn(|c| crate::db::ping(c)).await?;
    Ok(HttpResponse::Ok().json(
        serde_json::json!({"status": "ok", "database": "ok", "ca_loaded": state.ca.is_some()}),
    ))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// `GET /ca/{name}.crt` (DER, as AIA caIssuers expects) or `/ca/{name}.pem`.
pub async fn ca_certificate(
    state: web::Data<AppState>,
    file: web::Path<String>,
) -> Result<HttpResponse> {
    let file = file.into_inner();
    let (stem, pem) = match (file.strip_suffix(".crt"), file.strip_suffix(".pem")) {
        (Some(s), _) => (s.to_string(), false),
        (_, Some(s)) => (s.to_string(), true),
        _ => {
            return Err(Error::NotFound(
                "use /ca/<name>.crt or /ca/<name>.pem".into(),
            ));
        }
    };
    let ca = CaName::parse(&stem).map_err(|_| Error::NotFound(format!("no CA named {stem:?}")))?;
    let rows = state
        .with_conn(|c| Ok(crate::db::models::ca::CaRow::all(c)?))
        .await?;
    let row = rows
        .into_iter()
        .find(|r| r.name == ca.as_str())
        .ok_or_else(|| Error::NotFound(format!("no CA named {stem:?}")))?;
    Ok(if pem {
        HttpResponse::Ok()
            .content_type("application/x-pem-file")
            .body(crate::ca::der_to_pem(&row.cert_der)?)
    } else {
        HttpResponse::Ok()
            .content_type("application/pkix-cert")
            .body(row.cert_der)
    })
}

/// `GET /crl/{file}`: the newest full or delta CRL, DER, with ETag and Last-Modified.
pub async fn crl(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    file: web::Path<String>,
) -> Result<HttpResponse> {
    let file = file.into_inner();
    let cache = state.crls.clone();
    let name = file.clone();
    let served = state
        .with_conn(move |c| crate::service::crl::served(c, &cache, &name))
        .await?
        .ok_or_else(|| Error::NotFound(format!("no CRL named {file:?} has been published")))?;
    let last_modified = actix_web::http::header::HttpDate::from(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(served.this_update.max(0) as u64),
    );
    let expires = actix_web::http::header::HttpDate::from(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(served.next_update.max(0) as u64),
    );
    let not_modified = req
        .headers()
        .get(actix_web::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == served.etag));
    let mut resp = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header(("etag", served.etag.clone()))
        .insert_header(("last-modified", last_modified.to_string()))
        .insert_header(("expires", expires.to_string()))
        .insert_header(("cache-control", "public, no-transform"));
    if not_modified {
        return Ok(resp.finish());
    }
    Ok(resp
        .content_type("application/pkix-crl")
        .body(served.der.clone()))
}

fn ocsp_reply(der: bytes::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/ocsp-response")
        .body(der)
}

async fn ocsp_answer(state: &AppState, ca: &str, body: Vec<u8>) -> Result<HttpResponse> {
    use crate::ca::ocsp::{ErrorStatus, error_response};
    let ocsp = state
        .ocsp
        .clone()
        .ok_or_else(|| Error::Unavailable("the OCSP responder is not running".into()))?;
    let Ok(ca) = CaName::parse(ca) else {
        return Err(Error::NotFound(format!("no OCSP responder for {ca:?}")));
    };
    use crate::service::ocsp::Answered;
    let now = state.clock.now();
    let count = |how: Answered| {
        let i = match how {
            Answered::Cached => 0,
            Answered::Signed => 1,
            Answered::Error => 2,
        };
        state.metrics.ocsp[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    if let Some(hit) = ocsp.cached(ca, &body, now) {
        count(Answered::Cached);
        return Ok(ocsp_reply(hit));
    }
    let (der, how) = state
        .with_conn(move |c| ocsp.answer(c, ca, &body, now))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "OCSP answer failed");
            (
                bytes::Bytes::from(error_response(ErrorStatus::InternalError)),
                Answered::Error,
            )
        });
    count(how);
    Ok(ocsp_reply(der))
}

/// `POST /ocsp/{ca}`: RFC 6960 over POST (`application/ocsp-request`).
pub async fn ocsp_post(
    state: web::Data<AppState>,
    ca: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    ocsp_answer(&state, &ca, body.to_vec()).await
}

/// `GET /ocsp/{ca}/{request}`: RFC 6960 Appendix A.1, the DER request in base64, URL-encoded.
pub async fn ocsp_get(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    use base64::Engine;
    let (ca, encoded) = path.into_inner();
    let decoded = percent_decode(&encoded);
    let body = base64::engine::general_purpose::STANDARD
        .decode(decoded.trim())
        .unwrap_or_default();
    ocsp_answer(&state, &ca, body).await
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
