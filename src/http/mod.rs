//! HTTP: the route table (with the access rule of every route, in one place), the
//! authentication and authorisation middleware, and the handlers under api/ and views/.
//!
//! The route table ([`routes`]) declares each route once; the middleware looks every matched
//! request up in it by method and pattern, and a route missing from it is refused (fail
//! closed).

pub mod api;
pub mod error;
pub mod extract;
mod gate;
mod middleware;
pub mod public;
pub mod routes;
pub mod tls;
pub mod views;

use crate::error::Error;
use crate::service::auth::{self, StaffUser};
use crate::service::users::Role;
use actix_web::HttpResponse;
pub use middleware::{authorize, count, listener};
pub use routes::{Route, configure, routes};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "kofu_session";
/// Header carrying the CSRF token for API calls made with a session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, metrics, login, CA certificates).
    Public,
    /// Any logged-in staff member.
    AnyStaff,
    /// Staff with one of these roles.
    Roles(&'static [Role]),
    /// CRLs and OCSP: anyone when `revocation_access = "public"`, otherwise registered
    /// verifiers only (for the CAs each may use).
    Revocation,
    /// Registered verifiers (client certificate on the TLS listener, or a verifier token).
    Verifier,
}

/// The serial (upper-case hex) of the client certificate a TLS connection presented, put
/// in the connection's data by the TLS listener.
#[derive(Debug, Clone)]
pub struct PeerSerial(pub String);

/// Path prefixes whose routes are all [`Access::Revocation`].
pub const REVOCATION_PREFIXES: &[&str] = &["/ocsp/", "/crl/"];

/// The `Idempotency-Key` header of a request, if sent (checked).
pub fn idempotency_key(req: &actix_web::HttpRequest) -> Result<Option<String>, Error> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| Error::bad("Idempotency-Key", "not visible ASCII"))?
                .to_string();
            crate::service::idempotency::check_key(&k)?;
            Ok(Some(k))
        }
    }
}

/// The response of an idempotent operation; a replay says so in `Idempotent-Replayed`.
pub fn answer(a: &crate::service::idempotency::Answer) -> Result<HttpResponse, Error> {
    let status = actix_web::http::StatusCode::from_u16(a.status)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mut resp = HttpResponse::build(status);
    if a.replayed {
        resp.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(resp.json(&a.body))
}

/// The actix application: state, body limits, security headers, middleware and routes.
pub fn app(
    state: crate::app::AppState,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    use actix_web::middleware::{DefaultHeaders, from_fn};
    actix_web::App::new()
        .app_data(actix_web::web::Data::new(state))
        .app_data(extract::json_config())
        .app_data(extract::form_config())
        .app_data(extract::path_config())
        .app_data(extract::query_config())
        .app_data(actix_web::web::PayloadConfig::new(extract::BODY_LIMIT))
        .configure(configure)
        .default_service(actix_web::web::to(routes::unmatched))
        .wrap(from_fn(authorize))
        .wrap(from_fn(listener))
        .wrap(
            DefaultHeaders::new()
                .add(("X-Content-Type-Options", "nosniff"))
                .add(("X-Frame-Options", "DENY"))
                .add(("Referrer-Policy", "no-referrer"))
                .add((
                    "Content-Security-Policy",
                    "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
                )),
        )
        .wrap(from_fn(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_prefixes_hold_only_revocation_routes() {
        for r in routes() {
            let under = REVOCATION_PREFIXES.iter().any(|p| r.path.starts_with(p));
            assert_eq!(
                under,
                r.access == Access::Revocation,
                "{} {}: the fast path in `authorize` relies on this",
                r.method,
                r.path
            );
        }
    }
}
