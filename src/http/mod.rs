//! HTTP: the route table (with the access rule of every route, in one place), the
//! authentication and authorisation middleware, and the handlers under api/ and views/.
//!
//! The middleware looks every matched request up in [`ROUTES`] by method and pattern; a
//! route that is registered but missing from the table is refused (fail closed).

pub mod api;
pub mod error;
pub mod extract;
mod gate;
mod middleware;
pub mod public;
pub mod tls;
pub mod views;

use crate::error::Error;
use crate::service::auth::{self, StaffUser};
use crate::service::users::Role;
use actix_web::{HttpResponse, web};
pub use middleware::{authorize, count};

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

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: &'static str,
    /// actix path pattern.
    pub path: &'static str,
    /// Access rule.
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
    }
}

use Access::{AnyStaff, Public, Revocation, Roles, Verifier};

/// Every route with its access rule. Handlers are registered in [`configure`].
pub const ROUTES: &[RouteSpec] = &[
    route("GET", "/healthz", Public),
    route("GET", "/metrics", Public),
    route("GET", "/ca/{file}", Public),
    route("GET", "/crl/{file}", Revocation),
    route("POST", "/ocsp/{ca}", Revocation),
    route("GET", "/ocsp/{ca}/{request:.*}", Revocation),
    route("GET", "/callcenter", Roles(&[Role::Callcenter])),
    route("GET", "/cards", Roles(&[Role::Office, Role::Callcenter])),
    route(
        "POST",
        "/callcenter/loss-report",
        Roles(&[Role::Callcenter]),
    ),
    route(
        "GET",
        "/cards/{number}",
        Roles(&[Role::Office, Role::Callcenter, Role::Operator]),
    ),
    route("POST", "/cards/{number}/status", Roles(&[Role::Office])),
    route("POST", "/cards/{number}/renewal", Roles(&[Role::Operator])),
    route(
        "POST",
        "/api/v1/cards/{number}/renewal",
        Roles(&[Role::Operator]),
    ),
    route(
        "POST",
        "/api/v1/cards/{number}/loss-report",
        Roles(&[Role::Callcenter]),
    ),
    route(
        "POST",
        "/api/v1/cards/{number}/status",
        Roles(&[Role::Office]),
    ),
    route("POST", "/api/v1/crls/publish", Roles(&[Role::Admin])),
    route("POST", "/api/v1/linkage/serials", Verifier),
    route("POST", "/api/v1/linkage/query", Verifier),
    route("GET", "/api/v1/linkage/changes", Verifier),
    route("GET", "/api/v1/verifier", Verifier),
    route("GET", "/api/v1/verifiers", Roles(&[Role::Admin])),
    route("POST", "/api/v1/verifiers", Roles(&[Role::Admin])),
    route("GET", "/api/v1/verifiers/{id}", Roles(&[Role::Admin])),
    route(
        "POST",
        "/api/v1/verifiers/{id}/status",
        Roles(&[Role::Admin]),
    ),
    route(
        "POST",
        "/api/v1/verifiers/{id}/tokens",
        Roles(&[Role::Admin]),
    ),
    route(
        "POST",
        "/api/v1/verifiers/{id}/certificates",
        Roles(&[Role::Admin]),
    ),
    route(
        "POST",
        "/api/v1/verifiers/{id}/credentials/{credential}/revoke",
        Roles(&[Role::Admin]),
    ),
    route("GET", "/api/v1/openapi.json", Public),
    route("GET", "/verifiers", Roles(&[Role::Admin])),
    route("POST", "/verifiers", Roles(&[Role::Admin])),
    route("GET", "/verifiers/{id}", Roles(&[Role::Admin])),
    route("POST", "/verifiers/{id}/status", Roles(&[Role::Admin])),
    route("POST", "/verifiers/{id}/tokens", Roles(&[Role::Admin])),
    route(
        "POST",
        "/verifiers/{id}/certificates",
        Roles(&[Role::Admin]),
    ),
    route(
        "POST",
        "/verifiers/{id}/credentials/{credential}/revoke",
        Roles(&[Role::Admin]),
    ),
    route("GET", "/login", Public),
    route("POST", "/login", Public),
    route("POST", "/logout", AnyStaff),
    route("GET", "/", AnyStaff),
    route("GET", "/password", AnyStaff),
    route("POST", "/password", AnyStaff),
    route("GET", "/audit", Roles(&[Role::Auditor])),
    route("GET", "/applications", Roles(&[Role::Office])),
    route("GET", "/applications/new", Roles(&[Role::Office])),
    route("POST", "/applications", Roles(&[Role::Office])),
    route("GET", "/applications/{id}", Roles(&[Role::Office])),
    route("POST", "/applications/{id}/forms", Roles(&[Role::Office])),
    route("GET", "/verification", Roles(&[Role::Clerk])),
    route("GET", "/verification/{id}", Roles(&[Role::Clerk])),
    route("POST", "/verification/{id}", Roles(&[Role::Clerk])),
    route("GET", "/api/v1/me", AnyStaff),
    route("POST", "/api/v1/tokens", AnyStaff),
    route("GET", "/api/v1/tokens", AnyStaff),
    route("POST", "/api/v1/tokens/{id}/revoke", AnyStaff),
    route("GET", "/api/v1/users", Roles(&[Role::Admin])),
    route("POST", "/api/v1/users", Roles(&[Role::Admin])),
    route("POST", "/api/v1/users/{id}/disable", Roles(&[Role::Admin])),
    route("POST", "/api/v1/users/{id}/enable", Roles(&[Role::Admin])),
    route(
        "POST",
        "/api/v1/users/{id}/password-reset",
        Roles(&[Role::Admin]),
    ),
    route("GET", "/api/v1/users/{id}/tokens", Roles(&[Role::Admin])),
    route(
        "POST",
        "/api/v1/users/{id}/tokens/{token}/revoke",
        Roles(&[Role::Admin]),
    ),
    route("GET", "/users", Roles(&[Role::Admin])),
    route("POST", "/users", Roles(&[Role::Admin])),
    route("GET", "/users/{id}", Roles(&[Role::Admin])),
    route("POST", "/users/{id}/disable", Roles(&[Role::Admin])),
    route("POST", "/users/{id}/enable", Roles(&[Role::Admin])),
    route("POST", "/users/{id}/password-reset", Roles(&[Role::Admin])),
    route(
        "POST",
        "/users/{id}/tokens/{token}/revoke",
        Roles(&[Role::Admin]),
    ),
    route("GET", "/api/v1/audit", Roles(&[Role::Auditor])),
    route("GET", "/api/v1/audit/verify", Roles(&[Role::Auditor])),
    route("POST", "/api/v1/applications", Roles(&[Role::Office])),
    route("GET", "/api/v1/applications", Roles(&[Role::Office])),
    route(
        "GET",
        "/api/v1/applications/{id}",
        Roles(&[Role::Office, Role::Clerk]),
    ),
    route(
        "POST",
        "/api/v1/applications/{id}/forms",
        Roles(&[Role::Office]),
    ),
    route(
        "POST",
        "/api/v1/applications/{id}/check",
        Roles(&[Role::Clerk]),
    ),
    route(
        "POST",
        "/api/v1/applications/{id}/decision",
        Roles(&[Role::Clerk]),
    ),
    route("GET", "/api/v1/verification", Roles(&[Role::Clerk])),
    route("POST", "/api/v1/batches", Roles(&[Role::Office])),
    route(
        "GET",
        "/api/v1/batches/{id}",
        Roles(&[Role::Office, Role::Operator]),
    ),
    route("POST", "/api/v1/batches/{id}/run", Roles(&[Role::Operator])),
    route("GET", "/batches", Roles(&[Role::Office, Role::Operator])),
    route(
        "GET",
        "/batches/{id}",
        Roles(&[Role::Office, Role::Operator]),
    ),
    route("POST", "/batches/{id}/run", Roles(&[Role::Operator])),
    route("POST", "/cards/{number}/delivery", Roles(&[Role::Office])),
    route(
        "GET",
        "/api/v1/batches/{id}/labels.pdf",
        Roles(&[Role::Office]),
    ),
    route(
        "GET",
        "/api/v1/batches/{id}/pin-mailers.pdf",
        Roles(&[Role::Office]),
    ),
    route(
        "GET",
        "/api/v1/batches/{id}/counter-notices.pdf",
        Roles(&[Role::Office]),
    ),
    route(
        "GET",
        "/api/v1/cards/{number}",
        Roles(&[Role::Office, Role::Operator, Role::Callcenter]),
    ),
    route(
        "POST",
        "/api/v1/cards/{number}/delivery",
        Roles(&[Role::Office]),
    ),
    route("POST", "/api/v1/certificates", Roles(&[Role::Admin])),
    route(
        "GET",
        "/api/v1/certificates/{serial}",
        Roles(&[Role::Operator, Role::Admin, Role::Auditor]),
    ),
];

/// Path prefixes whose routes are all [`Access::Revocation`].
pub const REVOCATION_PREFIXES: &[&str] = &["/ocsp/", "/crl/"];

/// Register every handler.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // OCSP first: actix tries the patterns in order, and OCSP is most of the traffic.
    cfg.route("/ocsp/{ca}", web::post().to(public::ocsp_post))
        .route("/ocsp/{ca}/{request:.*}", web::get().to(public::ocsp_get))
        .route("/crl/{file}", web::get().to(public::crl))
        .route("/healthz", web::get().to(public::healthz))
        .route("/metrics", web::get().to(public::metrics))
        .route("/ca/{file}", web::get().to(public::ca_certificate))
        .route("/callcenter", web::get().to(views::cards::callcenter))
        .route(
            "/callcenter/loss-report",
            web::post().to(views::cards::report_loss),
        )
        .route("/cards", web::get().to(views::cards::list))
        .route("/cards/{number}", web::get().to(views::cards::show))
        .route(
            "/cards/{number}/status",
            web::post().to(views::cards::change_status),
        )
        .route(
            "/api/v1/cards/{number}/loss-report",
            web::post().to(api::cards::report_loss),
        )
        .route(
            "/api/v1/cards/{number}/status",
            web::post().to(api::cards::change_status),
        )
        .route(
            "/api/v1/cards/{number}/renewal",
            web::post().to(api::cards::renew),
        )
        .route(
            "/cards/{number}/renewal",
            web::post().to(views::cards::renew),
        )
        .route(
            "/api/v1/crls/publish",
            web::post().to(api::certificates::publish_crls),
        )
        .service(
            web::resource("/api/v1/linkage/serials")
                .app_data(extract::serial_list_config())
                .route(web::post().to(api::linkage::register)),
        )
        .service(
            web::resource("/api/v1/linkage/query")
                .app_data(extract::serial_list_config())
                .route(web::post().to(api::linkage::query)),
        )
        .route(
            "/api/v1/linkage/changes",
            web::get().to(api::linkage::changes),
        )
        .route("/api/v1/verifier", web::get().to(api::linkage::whoami))
        .route("/api/v1/verifiers", web::get().to(api::verifiers::list))
        .route("/api/v1/verifiers", web::post().to(api::verifiers::create))
        .route("/api/v1/verifiers/{id}", web::get().to(api::verifiers::get))
        .route(
            "/api/v1/verifiers/{id}/status",
            web::post().to(api::verifiers::status),
        )
        .route(
            "/api/v1/verifiers/{id}/tokens",
            web::post().to(api::verifiers::token),
        )
        .route(
            "/api/v1/verifiers/{id}/certificates",
            web::post().to(api::verifiers::certificate),
        )
        .route(
            "/api/v1/verifiers/{id}/credentials/{credential}/revoke",
            web::post().to(api::verifiers::revoke),
        )
        .route(
            "/api/v1/openapi.json",
            web::get().to(api::openapi::document),
        )
        .route("/verifiers", web::get().to(views::verifiers::list))
        .route("/verifiers", web::post().to(views::verifiers::create))
        .route("/verifiers/{id}", web::get().to(views::verifiers::show))
        .route(
            "/verifiers/{id}/status",
            web::post().to(views::verifiers::status),
        )
        .route(
            "/verifiers/{id}/tokens",
            web::post().to(views::verifiers::token),
        )
        .route(
            "/verifiers/{id}/certificates",
            web::post().to(views::verifiers::certificate),
        )
        .route(
            "/verifiers/{id}/credentials/{credential}/revoke",
            web::post().to(views::verifiers::revoke),
        )
        .route("/login", web::get().to(views::login::form))
        .route("/login", web::post().to(views::login::submit))
        .route("/logout", web::post().to(views::login::logout))
        .route("/", web::get().to(views::home::page))
        .route("/password", web::get().to(views::password::form))
        .route("/password", web::post().to(views::password::submit))
        .route("/audit", web::get().to(views::audit::page))
        // /applications/new before /applications/{id}: actix matches in order.
        .route("/applications", web::get().to(views::applications::list))
        .route(
            "/applications/new",
            web::get().to(views::applications::new_form),
        )
        .route("/applications", web::post().to(views::applications::create))
        .route(
            "/applications/{id}",
            web::get().to(views::applications::detail),
        )
        .route(
            "/applications/{id}/forms",
            web::post().to(views::applications::forms),
        )
        .route("/verification", web::get().to(views::verification::queue))
        .route(
            "/verification/{id}",
            web::get().to(views::verification::show),
        )
        .route(
            "/verification/{id}",
            web::post().to(views::verification::decide),
        )
        .route(
            "/api/v1/applications",
            web::post().to(api::applications::create),
        )
        .route(
            "/api/v1/applications",
            web::get().to(api::applications::list),
        )
        .route(
            "/api/v1/applications/{id}",
            web::get().to(api::applications::get),
        )
        .route(
            "/api/v1/applications/{id}/forms",
            web::post().to(api::applications::forms),
        )
        .route(
            "/api/v1/applications/{id}/check",
            web::post().to(api::applications::check),
        )
        .route(
            "/api/v1/applications/{id}/decision",
            web::post().to(api::applications::decide),
        )
        .route(
            "/api/v1/verification",
            web::get().to(api::applications::queue),
        )
        .route("/api/v1/batches", web::post().to(api::batches::create))
        .route("/api/v1/batches/{id}", web::get().to(api::batches::get))
        .route("/api/v1/batches/{id}/run", web::post().to(api::cards::run))
        .route("/batches", web::get().to(views::batches::list))
        .route("/batches/{id}", web::get().to(views::batches::show))
        .route("/batches/{id}/run", web::post().to(views::batches::run))
        .route(
            "/cards/{number}/delivery",
            web::post().to(views::batches::record_delivery),
        )
        .route(
            "/api/v1/batches/{id}/labels.pdf",
            web::get().to(api::cards::labels),
        )
        .route(
            "/api/v1/batches/{id}/pin-mailers.pdf",
            web::get().to(api::cards::pin_mailers),
        )
        .route(
            "/api/v1/batches/{id}/counter-notices.pdf",
            web::get().to(api::cards::counter_notices),
        )
        .route("/api/v1/cards/{number}", web::get().to(api::cards::get))
        .route(
            "/api/v1/cards/{number}/delivery",
            web::post().to(api::cards::record),
        )
        .route("/api/v1/me", web::get().to(api::me::get))
        .route("/api/v1/tokens", web::post().to(api::me::create_token))
        .route("/api/v1/tokens", web::get().to(api::me::list_tokens))
        .route(
            "/api/v1/tokens/{id}/revoke",
            web::post().to(api::me::revoke_token),
        )
        .route("/api/v1/users", web::get().to(api::users::list))
        .route("/api/v1/users", web::post().to(api::users::create))
        .route(
            "/api/v1/users/{id}/disable",
            web::post().to(api::users::disable),
        )
        .route(
            "/api/v1/users/{id}/enable",
            web::post().to(api::users::enable),
        )
        .route(
            "/api/v1/users/{id}/password-reset",
            web::post().to(api::users::reset_password),
        )
        .route(
            "/api/v1/users/{id}/tokens",
            web::get().to(api::users::tokens),
        )
        .route(
            "/api/v1/users/{id}/tokens/{token}/revoke",
            web::post().to(api::users::revoke_token),
        )
        .route("/users", web::get().to(views::users::list))
        .route("/users", web::post().to(views::users::create))
        .route("/users/{id}", web::get().to(views::users::show))
        .route("/users/{id}/disable", web::post().to(views::users::disable))
        .route("/users/{id}/enable", web::post().to(views::users::enable))
        .route(
            "/users/{id}/password-reset",
            web::post().to(views::users::reset_password),
        )
        .route(
            "/users/{id}/tokens/{token}/revoke",
            web::post().to(views::users::revoke_token),
        )
        .route("/api/v1/audit", web::get().to(api::audit::list))
        .route("/api/v1/audit/verify", web::get().to(api::audit::verify))
        .route(
            "/api/v1/certificates",
            web::post().to(api::certificates::issue),
        )
        .route(
            "/api/v1/certificates/{serial}",
            web::get().to(api::certificates::get),
        );
}

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
        .app_data(actix_web::web::PayloadConfig::new(extract::BODY_LIMIT))
        .configure(configure)
        .wrap(from_fn(authorize))
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
        for r in ROUTES {
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
