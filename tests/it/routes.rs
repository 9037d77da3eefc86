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
