//! The staff pages (Japanese HTML), with their access rules.

use super::{GET, POST, Route, route};
use crate::http::{Access, views};
use crate::service::users::Role;
use Access::{AnyStaff, Roles};

/// The staff pages.
pub(super) const PAGES: &[Route] = &[
    route(GET, "/callcenter", Roles(&[Role::Callcenter]), |r| {
        r.to(views::cards::callcenter)
    }),
    route(
        POST,
        "/callcenter/loss-report",
        Roles(&[Role::Callcenter]),
        |r| r.to(views::cards::report_loss),
    ),
    route(
        GET,
        "/cards",
        Roles(&[Role::Office, Role::Callcenter]),
        |r| r.to(views::cards::list),
    ),
    route(
        GET,
        "/cards/{number}",
        Roles(&[Role::Office, Role::Callcenter, Role::Operator]),
        |r| r.to(views::cards::show),
    ),
    route(
        POST,
        "/cards/{number}/status",
        Roles(&[Role::Office]),
        |r| r.to(views::cards::change_status),
    ),
    route(
        POST,
        "/cards/{number}/renewal",
        Roles(&[Role::Operator]),
        |r| r.to(views::cards::renew),
    ),
    route(GET, "/verifiers", Roles(&[Role::Admin]), |r| {
        r.to(views::verifiers::list)
    }),
    route(POST, "/verifiers", Roles(&[Role::Admin]), |r| {
        r.to(views::verifiers::create)
    }),
    route(GET, "/verifiers/{id}", Roles(&[Role::Admin]), |r| {
        r.to(views::verifiers::show)
    }),
    route(POST, "/verifiers/{id}/status", Roles(&[Role::Admin]), |r| {
        r.to(views::verifiers::status)
    }),
    route(POST, "/verifiers/{id}/tokens", Roles(&[Role::Admin]), |r| {
        r.to(views::verifiers::token)
    }),
    route(
        POST,
        "/verifiers/{id}/certificates",
        Roles(&[Role::Admin]),
        |r| r.to(views::verifiers::certificate),
    ),
    route(
        POST,
        "/verifiers/{id}/credentials/{credential}/revoke",
        Roles(&[Role::Admin]),
        |r| r.to(views::verifiers::revoke),
    ),
    route(POST, "/logout", AnyStaff, |r| r.to(views::login::logout)),
    route(GET, "/", AnyStaff, |r| r.to(views::home::page)),
    route(GET, "/password", AnyStaff, |r| r.to(views::password::form)),
    route(POST, "/password", AnyStaff, |r| {
        r.to(views::password::submit)
    }),
    route(GET, "/audit", Roles(&[Role::Auditor]), |r| {
        r.to(views::audit::page)
    }),
    route(GET, "/applications", Roles(&[Role::Office]), |r| {
        r.to(views::applications::list)
    }),
    route(GET, "/applications/new", Roles(&[Role::Office]), |r| {
        r.to(views::applications::new_form)
    }),
    route(POST, "/applications", Roles(&[Role::Office]), |r| {
        r.to(views::applications::create)
    }),
    route(GET, "/applications/{id}", Roles(&[Role::Office]), |r| {
        r.to(views::applications::detail)
    }),
    route(
        POST,
        "/applications/{id}/forms",
        Roles(&[Role::Office]),
        |r| r.to(views::applications::forms),
    ),
    route(GET, "/verification", Roles(&[Role::Clerk]), |r| {
        r.to(views::verification::queue)
    }),
    route(GET, "/verification/{id}", Roles(&[Role::Clerk]), |r| {
        r.to(views::verification::show)
    }),
    route(POST, "/verification/{id}", Roles(&[Role::Clerk]), |r| {
        r.to(views::verification::decide)
    }),
    route(
        GET,
        "/batches",
        Roles(&[Role::Office, Role::Operator]),
        |r| r.to(views::batches::list),
    ),
    route(
        GET,
        "/batches/{id}",
        Roles(&[Role::Office, Role::Operator]),
        |r| r.to(views::batches::show),
    ),
    route(POST, "/batches/{id}/run", Roles(&[Role::Operator]), |r| {
        r.to(views::batches::run)
    }),
    route(
        POST,
        "/cards/{number}/delivery",
        Roles(&[Role::Office]),
        |r| r.to(views::batches::record_delivery),
    ),
    route(GET, "/users", Roles(&[Role::Admin]), |r| {
        r.to(views::users::list)
    }),
    route(POST, "/users", Roles(&[Role::Admin]), |r| {
        r.to(views::users::create)
    }),
    route(GET, "/users/{id}", Roles(&[Role::Admin]), |r| {
        r.to(views::users::show)
    }),
    route(POST, "/users/{id}/disable", Roles(&[Role::Admin]), |r| {
        r.to(views::users::disable)
    }),
    route(POST, "/users/{id}/enable", Roles(&[Role::Admin]), |r| {
        r.to(views::users::enable)
    }),
    route(
        POST,
        "/users/{id}/password-reset",
        Roles(&[Role::Admin]),
        |r| r.to(views::users::reset_password),
    ),
    route(
        POST,
        "/users/{id}/tokens/{token}/revoke",
        Roles(&[Role::Admin]),
        |r| r.to(views::users::revoke_token),
    ),
];
