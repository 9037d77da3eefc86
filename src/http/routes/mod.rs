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
    }
}

impl Route {
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
                    .route(route),
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
