//! The route table: one declaration per route — method, path, access rule, handler and, for
//! `/api/v1`, the OpenAPI summary, body schema and query parameters. The access middleware
//! looks every matched request up here (a route not in it is refused: fail closed), actix
//! registers the handlers from it ([`configure`]), and the OpenAPI document is made from it;
//! none of the three can disagree with the others.
//!
//! The table is in three parts: public and revocation routes (OCSP first: actix tries the
//! patterns in order, and OCSP is most of the traffic), staff pages ([`pages`]), and the
//! documented JSON API ([`documented`]).

use crate::http::{Access, extract};
use actix_web::web;

mod documented;
mod pages;

/// The handler of a route, given the actix route with its method set.
pub type Handler = fn(actix_web::Route) -> actix_web::Route;

/// One route.
#[derive(Clone, Copy)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// actix path pattern.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Its handler.
    pub handler: Handler,
    /// What it does (the OpenAPI summary; empty for pages).
    pub summary: &'static str,
    /// JSON body schema (as JSON text), if any.
    pub body: Option<&'static str>,
    /// Query parameters: name, description.
    pub query: &'static [(&'static str, &'static str)],
    /// Takes the larger JSON body of serial lists.
    pub big_json: bool,
    /// Answers 201 Created (it makes a record), not 200.
    pub created: bool,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

pub(crate) const GET: &str = "GET";
pub(crate) const POST: &str = "POST";

/// A route without API documentation (pages, public files, revocation data).
pub(crate) const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
        summary: "",
        body: None,
        query: &[],
        big_json: false,
        created: false,
    }
}

/// A documented `/api/v1` operation.
pub(crate) const fn api(
    method: &'static str,
    path: &'static str,
    access: Access,
    handler: Handler,
    summary: &'static str,
    body: Option<&'static str>,
    query: &'static [(&'static str, &'static str)],
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
        summary,
        body,
        query,
        big_json: false,
        created: false,
    }
}

impl Route {
    /// Whom the route serves, for the listeners' configuration; None: everyone (health,
    /// metrics, CA certificates, the API document).
    pub fn audience(&self) -> Option<crate::config::Audience> {
        use crate::config::Audience;
        match self.access {
            Access::Public if self.path == "/login" => Some(Audience::Staff),
            Access::Public => None,
            Access::AnyStaff | Access::Roles(_) => Some(Audience::Staff),
            Access::Revocation | Access::Verifier => Some(Audience::Verifiers),
        }
    }

    /// The same route, answering 201 Created.
    pub(crate) const fn created(self) -> Route {
        Route {
            created: true,
            ..self
        }
    }

    /// The same route, taking serial lists (a larger JSON body limit).
    pub(crate) const fn big_json(self) -> Route {
        Route {
            big_json: true,
            ..self
        }
    }
}

use crate::http::{public, views};
use Access::{Public, Revocation};

/// Public and revocation routes.
const PUBLIC: &[Route] = &[
    route(POST, "/ocsp/{ca}", Revocation, |r| r.to(public::ocsp_post)),
    route(GET, "/ocsp/{ca}/{request:.*}", Revocation, |r| {
        r.to(public::ocsp_get)
    }),
    route(GET, "/crl/{file}", Revocation, |r| r.to(public::crl)),
    route(GET, "/healthz", Public, |r| r.to(public::healthz)),
    route(GET, "/metrics", Public, |r| r.to(public::metrics)),
    route(GET, "/ca/{file}", Public, |r| r.to(public::ca_certificate)),
    route(GET, "/login", Public, |r| r.to(views::login::form)),
    route(POST, "/login", Public, |r| r.to(views::login::submit)),
];

/// Every route: public, pages, then the API.
pub fn routes() -> impl Iterator<Item = &'static Route> {
    PUBLIC
        .iter()
        .chain(pages::PAGES.iter())
        .chain(documented::API.iter())
}

/// The route of a method and matched pattern.
pub fn find(method: &str, pattern: &str) -> Option<&'static Route> {
    routes().find(|r| r.method == method && r.path == pattern)
}

/// The methods the table has for a path that matched no route: empty when the path is
/// unknown (404), else what `Allow` lists (405).
pub fn methods_of(path: &str) -> Vec<&'static str> {
    let mut m: Vec<&'static str> = routes()
        .filter(|r| actix_web::dev::ResourceDef::new(r.path).is_match(path))
        .map(|r| r.method)
        .collect();
    m.sort_unstable();
    m.dedup();
    m
}

/// What a request that matched no route gets: 405 with `Allow` when the path is known with
/// other methods, else 404.
pub async fn unmatched(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    let allow = methods_of(req.path());
    if allow.is_empty() {
        return not_found(req.path());
    }
    actix_web::ResponseError::error_response(&crate::error::Error::MethodNotAllowed {
        allow: allow.join(", "),
    })
}

/// 404 for a path: a short page where a browser goes, the JSON error elsewhere.
pub fn not_found(path: &str) -> actix_web::HttpResponse {
    let machine = ["/api/", "/ocsp/", "/crl/", "/ca/", "/healthz", "/metrics"]
        .iter()
        .any(|p| path.starts_with(p));
    if machine {
        return actix_web::ResponseError::error_response(&crate::error::Error::NotFound(format!(
            "no such path: {path}"
        )));
    }
    actix_web::HttpResponse::NotFound()
        .content_type("text/html; charset=utf-8")
        .body("<!doctype html><meta charset=utf-8><title>見つかりません</title><p>このページはありません。<a href=\"/\">ホーム</a>")
}

/// Register every handler, in the table's order.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for r in routes() {
        let method = if r.method == POST {
            actix_web::http::Method::POST
        } else {
            actix_web::http::Method::GET
        };
        let route = (r.handler)(web::method(method));
        if r.big_json {
            cfg.service(
                web::resource(r.path)
                    .app_data(extract::serial_list_config())
                    .route(route)
                    .default_service(web::to(unmatched)),
            );
        } else {
            cfg.route(r.path, route);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only GET and POST are registered ([`configure`] maps the rest to GET otherwise), every
    /// route is there once, and exactly the `/api/v1` routes are documented.
    #[test]
    fn the_table_is_consistent() {
        let mut seen = std::collections::BTreeSet::new();
        for r in routes() {
            assert!(r.method == GET || r.method == POST, "{r:?}");
            assert!(seen.insert((r.method, r.path)), "{r:?} twice");
            assert_eq!(
                r.path.starts_with("/api/v1/"),
                !r.summary.is_empty(),
                "{r:?}: documented exactly when under /api/v1"
            );
        }
    }
}
