//! The middleware every request passes: counting for /metrics, and authorisation — the
//! session or bearer token, the route table's access rule (a route not in it is refused),
//! the one-time-password gate, and the CSRF header on state-changing API calls by session.

use super::*;
use crate::app::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};

/// How often a bearer token's last use is written (seconds).
const TOKEN_USE_EVERY_S: i64 = 300;

/// Paths a user with a one-time password may still use (to change it).
const ALLOWED_BEFORE_PASSWORD_CHANGE: &[&str] = &["/password", "/logout", "/api/v1/me"];

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

fn unauthenticated(path: &str) -> HttpResponse {
    if is_api(path) {
        actix_web::ResponseError::error_response(&Error::Unauthenticated)
    } else {
        HttpResponse::Unauthorized()
            .content_type("text/html; charset=utf-8")
            .body("<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url=/login\"><title>ログインが必要です</title><a href=\"/login\">ログイン</a>")
    }
}

pub(super) fn bearer(req: &ServiceRequest) -> Option<String> {
    let h = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    h.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// Authentication, authorisation and CSRF-header middleware.
pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // OCSP and CRLs are asked for far more often than anything else, and every route under
    // these prefixes has the same rule (a test holds the table to it): decide without
    // matching the request against every pattern again.
    if REVOCATION_PREFIXES
        .iter()
        .any(|p| req.path().starts_with(p))
        && req
            .app_data::<web::Data<AppState>>()
            .and_then(|s| s.ca.as_ref())
            .is_some_and(|h| {
                h.config.revocation_access == crate::ca::config::RevocationAccess::Public
            })
    {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(pattern) = req.match_pattern() else {
        // Nothing matched: actix answers 404.
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let method = req.method().as_str().to_string();
    let spec = routes::find(&method, &pattern);
    let Some(spec) = spec else {
        if routes().any(|r| r.path == pattern) {
            // Known path, other method: let actix answer 405.
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
        let resp = actix_web::ResponseError::error_response(&Error::Forbidden(
            "route has no access rule".into(),
        ));
        return Ok(req.into_response(resp));
    };
    if spec.access == Access::Public {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(Error::Internal("application state missing".into()).into());
    };
    if spec.access == Access::Revocation
        && state.ca.as_ref().is_some_and(|h| {
            h.config.revocation_access == crate::ca::config::RevocationAccess::Public
        })
    {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    if matches!(spec.access, Access::Revocation | Access::Verifier) {
        return gate::verifier_gate(req, next, state, spec, pattern).await;
    }
    let path = req.path().to_string();
    let token = bearer(&req);
    let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
    let now = state.clock.now();
    let by_cookie = token.is_none();
    let user: Option<StaffUser> = match (token, cookie) {
        (Some(t), _) => {
            let found = match state.with_conn(move |c| auth::token_user(c, &t, now)).await {
                Ok(found) => found,
                Err(e @ Error::Expired(_)) => {
                    return Ok(req.into_response(actix_web::ResponseError::error_response(&e)));
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(u) = &found
                && u.last_used_at
                    .is_none_or(|t| now.timestamp() - t >= TOKEN_USE_EVERY_S)
            {
                // Record the use a few times an hour at most: not a write per request.
                let id = u.token_id;
                state
                    .with_write(move |c| {
                        Ok(crate::db::models::user::ApiToken::touch(
                            c,
                            id,
                            now.timestamp(),
                        )?)
                    })
                    .await?;
            }
            found.map(|u| u.user)
        }
        (None, Some(ck)) => {
            state
                .with_conn(move |c| auth::session_user(c, &ck, now))
                .await?
        }
        (None, None) => None,
    };
    let Some(user) = user else {
        return Ok(req.into_response(unauthenticated(&path)));
    };
    let admitted = match spec.access {
        Access::Roles(roles) => roles.contains(&user.role),
        // Verifier routes never reach here (verifier_gate).
        Access::Revocation | Access::Verifier => false,
        Access::Public | Access::AnyStaff => true,
    };
    if !admitted {
        let actor = user.actor();
        let target = format!("{method} {pattern}");
        // Refusals are audited (they are how misuse shows), a flood of them counted.
        let source = format!("user:{}", user.id);
        if state
            .refusals
            .admit(&source, &actor, "access.denied", &target, now.timestamp())?
        {
            state
                .with_write(move |c| {
                    crate::audit::append(c, now.timestamp(), &actor, "access.denied", &target, "")
                })
                .await?;
        }
        let resp = actix_web::ResponseError::error_response(&Error::Forbidden(format!(
            "the {} role may not use {method} {pattern}",
            user.role.as_str()
        )));
        return Ok(req.into_response(resp));
    }
    if user.must_change_password && !ALLOWED_BEFORE_PASSWORD_CHANGE.contains(&pattern.as_str()) {
        let resp = if is_api(&path) {
            actix_web::ResponseError::error_response(&Error::PasswordChange(
                "change the one-time password first (POST /password)".into(),
            ))
        } else {
            HttpResponse::SeeOther()
                .insert_header(("Location", "/password"))
                .finish()
        };
        return Ok(req.into_response(resp));
    }
    let unsafe_method = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    if by_cookie && unsafe_method && is_api(&path) {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !extract::csrf_matches(sent, user.csrf.as_deref()) {
            let resp = actix_web::ResponseError::error_response(&Error::Csrf(
                "missing or wrong X-CSRF-Token header".into(),
            ));
            return Ok(req.into_response(resp));
        }
    }
    req.extensions_mut().insert(user);
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The listeners' rule: a route for an audience the listener does not serve is 404 (staff
/// on the verifiers' TLS listener, by default), before any credential is looked at; and
/// every answer over TLS carries HSTS.
pub async fn listener(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    use crate::config::Audience;
    let tls = req.conn_data::<tls::OverTls>().is_some();
    let who = if REVOCATION_PREFIXES
        .iter()
        .any(|p| req.path().starts_with(p))
    {
        Some(Audience::Verifiers)
    } else {
        req.match_pattern()
            .and_then(|p| routes::find(req.method().as_str(), &p))
            .and_then(Route::audience)
    };
    let refused = who.is_some_and(|who| {
        req.app_data::<web::Data<AppState>>()
            .is_some_and(|state| !state.config.listeners.serves(tls, who))
    });
    let mut resp = if refused {
        let resp = routes::not_found(req.path());
        req.into_response(resp)
    } else {
        next.call(req).await?.map_into_boxed_body()
    };
    if tls {
        resp.headers_mut().insert(
            actix_web::http::header::STRICT_TRANSPORT_SECURITY,
            actix_web::http::header::HeaderValue::from_static("max-age=31536000"),
        );
    }
    Ok(resp)
}

/// Count responses for /metrics.
pub async fn count(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let resp = next.call(req).await?;
    if let Some(m) = metrics {
        m.count_status(resp.status().as_u16());
    }
    Ok(resp)
}
