//! Public endpoints: health, metrics, and the CA certificates named in AIA caIssuers.

use crate::app::AppState;
use crate::ca::profile::CaName;
use crate::error::{Error, Result};
use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;

/// `GET /healthz`: the database answers.
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse> {
    state
        .with_conn(|c| {
            diesel::sql_query("SELECT 1").execute(&mut **c)?;
            Ok(())
        })
        .await?;
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
