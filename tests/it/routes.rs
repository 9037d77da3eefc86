//! Every route in the route table answers 401 without credentials and 403 to every role it
//! does not admit (and a 401 proves the route is registered: unmatched paths are 404).

use crate::common::*;
use actix_web::http::StatusCode;
use actix_web::test;
use kofu::http::{Access, routes};
use kofu::service::users::Role;

fn concrete(path: &str) -> String {
    path.replace("{file}", "root.crt")
        .replace("{serial}", "0102AB")
        .replace("{request:.*}", "MAMCAQA%3D")
}

#[actix_web::test]
async fn every_route_refuses_missing_credentials_and_wrong_roles() {
    for env in envs() {
        let tokens = tokens(&env);
        let app = test::init_service(kofu::http::app(state(&env))).await;
        for r in routes() {
            let path = concrete(r.path);
            let method = actix_web::http::Method::from_bytes(r.method.as_bytes()).unwrap();
            let req = || {
                test::TestRequest::default()
                    .method(method.clone())
                    .uri(&path)
                    .insert_header(("content-type", "application/json"))
                    .set_payload("{}")
            };
            let anon = test::call_service(&app, req().to_request()).await.status();
            if r.access == Access::Public {
                assert!(
                    anon != StatusCode::UNAUTHORIZED && anon != StatusCode::FORBIDDEN,
                    "{} {path}: public route answered {anon}",
                    r.method
                );
                continue;
            }
            assert_eq!(
                anon,
                StatusCode::UNAUTHORIZED,
                "{} {path} without credentials ({})",
                r.method,
                env.db.label
            );
            let bad = test::call_service(
                &app,
                req()
                    .insert_header(("authorization", "Bearer kofu_not-a-token"))
                    .to_request(),
            )
            .await
            .status();
            assert_eq!(
                bad,
                StatusCode::UNAUTHORIZED,
                "{} {path} with a bad token",
                r.method
            );
            for role in Role::ALL {
                let admitted = match r.access {
                    Access::AnyStaff => true,
                    Access::Roles(rs) => rs.contains(&role),
                    Access::Public => true,
                    Access::Revocation | Access::Verifier => false,
                };
                // Staff credentials are not verifier credentials: not authenticated there.
                let refusal = if matches!(r.access, Access::Revocation | Access::Verifier) {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                let status = test::call_service(
                    &app,
                    req()
                        .insert_header(("authorization", format!("Bearer {}", tokens[&role])))
                        .to_request(),
                )
                .await
                .status();
                if admitted {
                    // Forms need a session's CSRF token, so bearer calls to form routes are refused;
                    // every other admitted call gets past authorisation.
                    let is_form = !r.path.starts_with("/api/") && r.method == "POST";
                    if !is_form {
                        assert!(
                            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                            "{} {path} as {role:?}: {status}",
                            r.method
                        );
                    }
                } else {
                    assert_eq!(
                        status, refusal,
                        "{} {path} as {role:?} ({})",
                        r.method, env.db.label
                    );
                }
            }
        }
        // Refusals are audited.
        let entries = kofu::audit::list(&mut env.conn(), None, 1000).unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e.action == "access.denied" && e.actor == "user-clerk")
        );
    }
}

#[actix_web::test]
async fn unknown_paths_are_not_found_and_revoked_tokens_fail() {
    let env = envs().remove(0);
    let tokens = tokens(&env);
    let app = test::init_service(kofu::http::app(state(&env))).await;
    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/nowhere").to_request()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Revoke the auditor's token: it stops working at once.
    use diesel::prelude::*;
    use kofu::db::schema::api_tokens::dsl as t;
    diesel::update(
        t::api_tokens
            .filter(t::token_hash.eq(kofu::service::auth::secret_hash(&tokens[&Role::Auditor]))),
    )
    .set(t::revoked_at.eq(Some(now().timestamp())))
    .execute(&mut *env.conn())
    .unwrap();
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/audit")
            .insert_header((
                "authorization",
                format!("Bearer {}", tokens[&Role::Auditor]),
            ))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// What a client generator meets: a wrong method on a known path is 405 with `Allow` listing
/// the table's methods for it, and the parse errors of path, query, JSON and form come back as
/// the JSON error body naming what failed (never actix's plain text).
#[actix_web::test]
async fn wrong_methods_are_405_and_parse_errors_are_json() {
    let env = envs().remove(0);
    let tokens = tokens(&env);
    let app = test::init_service(kofu::http::app(state(&env))).await;
    let json_of = |body: actix_web::web::Bytes, what: &str| -> serde_json::Value {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{what}: not JSON: {}", String::from_utf8_lossy(&body)))
    };
    for r in routes() {
        let path = concrete(r.path);
        let mut allowed: Vec<&str> = routes()
            .filter(|o| o.path == r.path)
            .map(|o| o.method)
            .collect();
        allowed.sort_unstable();
        for wrong in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if allowed.contains(&wrong) {
                continue;
            }
            let req = test::TestRequest::default()
                .method(actix_web::http::Method::from_bytes(wrong.as_bytes()).unwrap())
                .uri(&path)
                .to_request();
            let resp = test::call_service(&app, req).await;
            assert_eq!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{wrong} {path}"
            );
            let allow = resp.headers().get("allow").map(|v| v.to_str().unwrap());
            assert_eq!(allow, Some(allowed.join(", ").as_str()), "{wrong} {path}");
            let body = json_of(test::read_body(resp).await, &format!("{wrong} {path}"));
            assert_eq!(body["code"], "KF0405", "{wrong} {path}: {body}");
        }
    }
    let office = format!("Bearer {}", tokens[&Role::Office]);
    let cases: [(&str, &str, Option<&str>, &str); 6] = [
        ("GET", "/api/v1/applications/!", None, "path"),
        ("GET", "/api/v1/applications?limit=x", None, "query"),
        ("GET", "/api/v1/applications?bogus=1", None, "query"),
        ("POST", "/api/v1/applications", Some("{\"kind\":"), "body"),
        ("POST", "/api/v1/batches", Some("[]"), "body"),
        ("GET", "/api/v1/no-such-thing", None, ""),
    ];
    for (method, uri, body, field) in cases {
        let mut req = test::TestRequest::default()
            .method(actix_web::http::Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri)
            .insert_header(("authorization", office.clone()));
        if let Some(b) = body {
            req = req
                .insert_header(("content-type", "application/json"))
                .set_payload(b.to_string());
        }
        let resp = test::call_service(&app, req.to_request()).await;
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let v = json_of(test::read_body(resp).await, uri);
        assert_eq!(ct.as_deref(), Some("application/json"), "{method} {uri}");
        if field.is_empty() {
            assert_eq!(
                (status, &v["code"]),
                (StatusCode::NOT_FOUND, &"KF0404".into())
            );
        } else {
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {uri}: {v}"
            );
            assert_eq!(v["field"], field, "{method} {uri}: {v}");
        }
    }
    // A body that is not an object is refused even where every field has a default.
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/api/v1/crls/publish")
            .insert_header(("authorization", format!("Bearer {}", tokens[&Role::Admin])))
            .insert_header(("content-type", "application/json"))
            .set_payload("[]")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v = json_of(test::read_body(resp).await, "POST /api/v1/crls/publish []");
    assert_eq!(v["field"], "body", "{v}");
    // A form that does not parse, before any session: the JSON error, naming the form.
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/login")
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload("csrf=1")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        json_of(test::read_body(resp).await, "POST /login")["field"],
        "form"
    );
}
