//! The verifiers' side of the authorisation middleware.

use super::middleware::bearer;
use super::{Access, PeerSerial, Route};
use crate::app::AppState;
use crate::error::Error;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

/// Routes for verifiers: a client certificate (TLS listener) or a verifier token, a verifier
/// that is active, a credential that is not revoked, the CA's data allowed to it, and the
/// rate limit. Refusals of a known credential are audited (within its rate limit); OCSP requests are counted per
/// verifier (audited in bulk by the worker), CRL downloads audited one by one, linkage
/// requests by their handlers.
pub(super) async fn verifier_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    state: web::Data<AppState>,
    spec: &Route,
    pattern: String,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    use crate::service::verifiers::{self, Admission};
    let now = state.clock.now();
    let peer = req.conn_data::<PeerSerial>().map(|p| p.0.clone());
    let token = bearer(&req).filter(|t| t.starts_with(verifiers::TOKEN_PREFIX));
    let admission = state
        .with_conn(move |c| {
            if let Some(serial) = peer {
                let a = verifiers::by_certificate(c, &serial, now)?;
                if !matches!(a, Admission::Unknown) || token.is_none() {
                    return Ok(a);
                }
            }
            match token {
                Some(t) => verifiers::by_token(c, &t),
                None => Ok(Admission::Unknown),
            }
        })
        .await?;
    let v = match admission {
        Admission::Admit(v) => v,
        Admission::Unknown => {
            return Ok(req.into_response(actix_web::ResponseError::error_response(
                &Error::Unauthenticated,
            )));
        }
        Admission::Refuse { verifier, why } => {
            // Over its rate limit, a refused verifier gets 429 and is counted, not audited
            // one by one: a revoked credential hammering kofu cannot flood the audit log.
            if let Err(e) = state.traffic.admit(&verifier, std::time::Instant::now()) {
                return Ok(req.into_response(actix_web::ResponseError::error_response(&e)));
            }
            let target = format!("{} {pattern}", req.method());
            state
                .with_write(move |c| {
                    crate::audit::append(
                        c,
                        now.timestamp(),
                        &verifier.actor(),
                        "verifier.refused",
                        &format!("verifier:{}", verifier.id),
                        &format!("{why}; {target}"),
                    )
                })
                .await?;
            return Ok(req.into_response(actix_web::ResponseError::error_response(
                &Error::Forbidden(why.into()),
            )));
        }
    };
    if let Err(e) = state.traffic.admit(&v, std::time::Instant::now()) {
        return Ok(req.into_response(actix_web::ResponseError::error_response(&e)));
    }
    if spec.access == Access::Revocation {
        // The router has not run yet (match_info is empty): read the CA off the path.
        let path = req.path();
        let ca = if let Some(file) = path.strip_prefix("/crl/") {
            crate::service::crl::parse_file(file).map(|(ca, _, _)| ca)
        } else {
            path.strip_prefix("/ocsp/")
                .and_then(|rest| rest.split('/').next())
                .and_then(|c| crate::ca::profile::CaName::parse(c).ok())
        };
        if let Some(ca) = ca {
            if !v.may_use(ca) {
                let (actor, id, target) =
                    (v.actor(), v.id, format!("{} {}", req.method(), req.path()));
                state
                    .with_write(move |c| {
                        crate::audit::append(
                            c,
                            now.timestamp(),
                            &actor,
                            "verifier.refused",
                            &format!("verifier:{id}"),
                            &format!("CA {} not granted; {target}", ca.as_str()),
                        )
                    })
                    .await?;
                return Ok(req.into_response(actix_web::ResponseError::error_response(
                    &Error::Forbidden(format!(
                        "this verifier may not use the {} CA's revocation data",
                        ca.as_str()
                    )),
                )));
            }
            if pattern.starts_with("/crl/") {
                let (actor, id, file) = (v.actor(), v.id, req.path().to_string());
                state
                    .with_write(move |c| {
                        crate::audit::append(
                            c,
                            now.timestamp(),
                            &actor,
                            "crl.download",
                            &format!("verifier:{id}"),
                            &file,
                        )
                    })
                    .await?;
            } else {
                state.traffic.count_ocsp(&v)?;
            }
        }
    }
    req.extensions_mut().insert(v);
    Ok(next.call(req).await?.map_into_boxed_body())
}
