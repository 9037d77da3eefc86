//! Trust (issue 13), tried as a dishonest insider and a careless operator would: no holder
//! certificate outside the workflow, staff credentials that can be taken away at once,
//! login throttling that cannot lock a colleague out from elsewhere, one live card per
//! person, idempotent retries, and refusals that cannot flood the audit chain.

use crate::common::*;
use actix_web::http::StatusCode;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::ca::profile::Profile;
use kofu::service::auth::StaffUser;
use kofu::service::users::Role;
use serde_json::json;
use std::sync::Arc;

fn audit_count(env: &Env, action: &str) -> usize {
    kofu::audit::list(&mut env.conn(), None, 100_000)
        .unwrap()
        .iter()
        .filter(|e| e.action == action)
        .count()
}

fn user_id(env: &Env, name: &str) -> i64 {
    kofu::db::models::user::User::by_username(&mut env.conn(), name)
        .unwrap()
        .unwrap()
        .id
}

fn pem(csr: &[u8]) -> String {
    String::from_utf8(csr.to_vec()).unwrap()
}

#[actix_web::test]
async fn holder_certificates_come_only_through_the_workflow() {
    for env in envs() {
        eprintln!("--- backend: {}", env.db.label);
        let h = env.init_ca();
        let mut st = state(&env);
        st.ca = Some(Arc::new(env.load_ca()));
        let app = actix_web::test::init_service(kofu::http::app(st)).await;
        let operator = ready_user(&env, "op-t", Role::Operator, None);
        let admin = ready_user(&env, "admin-t", Role::Admin, None);
        let before = count_certificates(&env);
        let intents = audit_count(&env, "certificate.sign_intent");

        // Neither an operator nor an admin gets a holder certificate from a request, with
        // or without an identity in it.
        let (_, holder_csr) = csr("card", &[]);
        for profile in ["signing", "authentication"] {
            let (status, _) = call!(
                app,
                post,
                "/api/v1/certificates",
                operator,
                json!({"profile": profile, "csr": pem(&holder_csr)})
            );
            assert_eq!(status, StatusCode::FORBIDDEN, "operator, {profile}");
            let (status, body) = call!(
                app,
                post,
                "/api/v1/certificates",
                admin,
                json!({"profile": profile, "csr": pem(&holder_csr)})
            );
            assert_eq!(status, StatusCode::FORBIDDEN, "admin, {profile}: {body}");
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .contains("never from a request"),
                "{body}"
            );
            let (status, _) = call!(
                app,
                post,
                "/api/v1/certificates",
                admin,
                json!({"profile": profile, "csr": pem(&holder_csr), "identity": {"name": "山田 太郎"}})
            );
            assert!(
                status.is_client_error(),
                "{profile} with an identity: {status}"
            );
        }
        assert_eq!(count_certificates(&env), before, "nothing stored");
        assert_eq!(
            audit_count(&env, "certificate.sign_intent"),
            intents,
            "nothing about to be signed"
        );

        // A SHA-1-signed request is refused, naming the algorithm.
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
        b.set_pubkey(&key).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha1()).unwrap();
        let sha1 = String::from_utf8(b.build().to_pem().unwrap()).unwrap();
        let (status, body) = call!(
            app,
            post,
            "/api/v1/certificates",
            admin,
            json!({"profile": "tls-server", "csr": sha1})
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("sha1WithRSAEncryption"),
            "{body}"
        );

        // One key, two purposes: the second is refused. The TLS server may keep its key.
        let (_, infra) = csr("kofu.example.jp", &["kofu.example.jp"]);
        let (status, _) = call!(
            app,
            post,
            "/api/v1/certificates",
            admin,
            json!({"profile": "tls-server", "csr": pem(&infra)})
        );
        assert_eq!(status, StatusCode::CREATED);
        let (status, body) = call!(
            app,
            post,
            "/api/v1/certificates",
            admin,
            json!({"profile": "verifier-client", "csr": pem(&infra)})
        );
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("already certified"),
            "{body}"
        );
        let (status, _) = call!(
            app,
            post,
            "/api/v1/certificates",
            admin,
            json!({"profile": "tls-server", "csr": pem(&infra)})
        );
        assert_eq!(
            status,
            StatusCode::CREATED,
            "a renewal of the TLS server keeps its key"
        );

        // Through the workflow's own door: a holder key is certified once, on one card.
        let (card_a, app_a) = card_being_written(&env, &holder());
        let (_, k) = checked_csr("card", &[]);
        issue_for_card(
            &env,
            &h,
            card_a,
            app_a,
            vec![(Profile::Authentication, k.spki_der.clone())],
        )
        .unwrap();
        let (card_b, app_b) = card_being_written(&env, &holder());
        let before = count_certificates(&env);
        let err = issue_for_card(
            &env,
            &h,
            card_b,
            app_b,
            vec![(Profile::Authentication, k.spki_der.clone())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("already certified"), "{err}");
        let err = issue_for_card(
            &env,
            &h,
            card_b,
            app_b,
            vec![(Profile::Signing, k.spki_der.clone())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("already certified"), "{err}");
        // Not for another application's card, nor for an application not ordered.
        let (_, k2) = checked_csr("card", &[]);
        let err = issue_for_card(
            &env,
            &h,
            card_a,
            app_b,
            vec![(Profile::Authentication, k2.spki_der.clone())],
        )
        .unwrap_err();
        assert!(matches!(err, kofu::error::Error::Forbidden(_)), "{err}");
        use kofu::db::schema::applications as a;
        diesel::update(a::table.find(app_b))
            .set(a::state.eq("verified"))
            .execute(&mut *env.conn())
            .unwrap();
        let err = issue_for_card(
            &env,
            &h,
            card_b,
            app_b,
            vec![(Profile::Authentication, k2.spki_der)],
        )
        .unwrap_err();
        assert!(matches!(err, kofu::error::Error::Forbidden(_)), "{err}");
        assert_eq!(count_certificates(&env), before, "nothing stored");
    }
}

fn count_certificates(env: &Env) -> i64 {
    use kofu::db::schema::certificates::dsl::*;
    certificates.count().get_result(&mut *env.conn()).unwrap()
}

#[actix_web::test]
async fn a_disabled_account_is_shut_out_at_once() {
    for env in envs() {
        eprintln!("--- backend: {}", env.db.label);
        let app = actix_web::test::init_service(kofu::http::app(state(&env))).await;
        let admin = ready_user(&env, "admin-l", Role::Admin, None);
        let clerk_token = ready_user(&env, "clerk-l", Role::Clerk, Some("131016"));
        let clerk = user_id(&env, "clerk-l");
        let session = login_session(&env, "clerk-l");
        let browser = |uri: &str| {
            actix_web::test::TestRequest::get()
                .uri(uri)
                .cookie(actix_web::cookie::Cookie::new(
                    "kofu_session",
                    session.cookie.clone(),
                ))
                .to_request()
        };
        assert_eq!(
            actix_web::test::call_service(&app, browser("/verification"))
                .await
                .status(),
            200
        );
        assert_eq!(call!(app, get, "/api/v1/me", clerk_token).0, 200);

        let (status, _) = call!(app, post, format!("/api/v1/users/{clerk}/disable"), admin);
        assert_eq!(status, 200);
        assert_eq!(
            actix_web::test::call_service(&app, browser("/verification"))
                .await
                .status(),
            401,
            "the open session"
        );
        assert_eq!(
            call!(app, get, "/api/v1/me", clerk_token).0,
            401,
            "the token"
        );
        let (status, _) = call!(app, post, format!("/api/v1/users/{clerk}/enable"), admin);
        assert_eq!(status, 200);
        assert_eq!(
            call!(app, get, "/api/v1/me", clerk_token).0,
            401,
            "tokens stay revoked"
        );
        assert_eq!(
            actix_web::test::call_service(&app, browser("/verification"))
                .await
                .status(),
            401
        );
        let (_, tokens) = call!(app, get, format!("/api/v1/users/{clerk}/tokens"), admin);
        assert!(
            tokens
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["status"] == "revoked"),
            "{tokens}"
        );
        assert!(audit_count(&env, "user.disabled") == 1);

        // A token revoked by the admin, and one that expired (a clock two days on).
        let actor = Actor::new("test", "cli");
        let (id, fresh) =
            kofu::service::auth::create_token(&mut env.conn(), clerk, "station", 1, &actor, now())
                .unwrap();
        assert_eq!(call!(app, get, "/api/v1/me", fresh).0, 200);
        let (status, _) = call!(
            app,
            post,
            format!("/api/v1/users/{clerk}/tokens/{id}/revoke"),
            admin
        );
        assert_eq!(status, 200);
        assert_eq!(call!(app, get, "/api/v1/me", fresh).0, 401);
        let (_, short) =
            kofu::service::auth::create_token(&mut env.conn(), clerk, "short", 1, &actor, now())
                .unwrap();
        let mut later = state(&env);
        later.clock = Arc::new(kofu::clock::FixedClock(now() + chrono::Duration::days(2)));
        let app2 = actix_web::test::init_service(kofu::http::app(later)).await;
        let (status, body) = call!(app2, get, "/api/v1/me", short);
        assert_eq!(status, 401);
        assert_eq!(body["code"], "KF0441", "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("expired"),
            "{body}"
        );
        assert_eq!(
            call!(app, get, "/api/v1/me", short).0,
            200,
            "still good the day it was made"
        );

        // Minting a token needs one's password again: a session or token alone cannot.
        let (status, _) = call!(app, post, "/api/v1/tokens", short, json!({"label": "more"}));
        assert!(status.is_client_error());
        let (status, _) = call!(
            app,
            post,
            "/api/v1/tokens",
            short,
            json!({"label": "more", "password": "wrong"})
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, body) = call!(
            app,
            post,
            "/api/v1/tokens",
            short,
            json!({"label": "more", "password": "a long enough password", "days": 7})
        );
        assert_eq!(status, StatusCode::CREATED, "{body}");

        // The last active administrator cannot be disabled; with a second one it can.
        let me = user_id(&env, "admin-l");
        let (status, body) = call!(app, post, format!("/api/v1/users/{me}/disable"), admin);
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("last active administrator")
        );
        let second = ready_user(&env, "admin-m", Role::Admin, None);
        let (status, _) = call!(app, post, format!("/api/v1/users/{me}/disable"), second);
        assert_eq!(status, 200);
        let other = user_id(&env, "admin-m");
        let (status, _) = call!(app, post, format!("/api/v1/users/{other}/disable"), second);
        assert_eq!(status, StatusCode::CONFLICT, "now admin-m is the last");

        // A password reset gives a one-time password that must be changed at login.
        let (status, body) = call!(
            app,
            post,
            format!("/api/v1/users/{clerk}/password-reset"),
            second
        );
        assert_eq!(status, 200);
        let otp = body["one_time_password"].as_str().unwrap().to_string();
        let refusals = kofu::service::refusals::Refusals::default();
        let ctx = kofu::service::auth::LoginContext {
            source: "127.0.0.1",
            policy: &env.cfg.auth,
            refusals: &refusals,
        };
        let s = kofu::service::auth::login(&mut env.conn(), &ctx, "clerk-l", &otp, now()).unwrap();
        assert!(s.user.must_change_password);
        let out = run(env.command().args(["audit", "verify"]));
        assert!(out.status.success());
    }
}

/// The admin's users page in a real browser: the list, an account added with its one-time
/// password shown once, disabled and enabled again from its page.
#[test]
fn the_users_page_in_headless_chromium() {
    let env = envs().remove(0);
    ready_user(&env, "admin-b", Role::Admin, None);
    ready_user(&env, "clerk-b", Role::Clerk, Some("131016"));
    let (url, server) = serve(state(&env));
    let d = Driver::start();
    d.go(&format!("{url}/login"));
    d.type_into("#username", "admin-b");
    d.type_into("#password", "a long enough password");
    d.submit("button[type=submit]");
    d.go(&format!("{url}/users"));
    assert_eq!(d.text("h1"), "職員アカウント");
    assert!(d.text("#user-clerk-b").contains("市区町村窓口"));
    d.type_into("#username", "office-new");
    d.submit("#add");
    assert!(d.text("#created").contains("office-new"));
    assert_eq!(d.text("#one-time-password").len(), 20);
    let id = user_id(&env, "clerk-b");
    d.go(&format!("{url}/users/{id}"));
    d.submit("#disable");
    assert!(
        d.text("#message").contains("停止しました"),
        "{}",
        d.text("#message")
    );
    assert_eq!(d.text("#state"), "停止中");
    d.submit("#enable");
    assert_eq!(d.text("#state"), "利用中");
    d.screenshot(&std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("users.png"));
    drop(d);
    actix_web::rt::System::new().block_on(server.stop(true));
    assert!(audit_count(&env, "user.disabled") == 1 && audit_count(&env, "user.enable") == 1);
}

#[actix_web::test]
async fn failed_logins_lock_one_address_and_an_account_ceiling_locks_everywhere() {
    for env in envs() {
        eprintln!("--- backend: {}", env.db.label);
        ready_user(&env, "office-x", Role::Office, None);
        let mut cfg = env.cfg.clone();
        cfg.auth.failures_per_account = 8;
        let mut st = state(&env);
        st.config = Arc::new(cfg);
        let app = actix_web::test::init_service(kofu::http::app(st)).await;
        let resp = actix_web::test::call_service(
            &app,
            actix_web::test::TestRequest::get()
                .uri("/login")
                .to_request(),
        )
        .await;
        let cookie = resp
            .response()
            .cookies()
            .find(|c| c.name() == "kofu_login_csrf")
            .unwrap()
            .into_owned();
        let token = cookie.value().to_string();
        let login = |from: &str, pw: &str| {
            actix_web::test::TestRequest::post()
                .uri("/login")
                .peer_addr(format!("{from}:40000").parse().unwrap())
                .cookie(cookie.clone())
                .set_form([
                    ("csrf", token.as_str()),
                    ("username", "office-x"),
                    ("password", pw),
                ])
                .to_request()
        };
        for _ in 0..5 {
            assert_eq!(
                actix_web::test::call_service(&app, login("10.0.0.1", "wrong"))
                    .await
                    .status()
                    .as_u16(),
                401
            );
        }
        assert_eq!(
            actix_web::test::call_service(&app, login("10.0.0.1", "a long enough password"))
                .await
                .status()
                .as_u16(),
            429,
            "address A is locked"
        );
        assert_eq!(
            actix_web::test::call_service(&app, login("10.0.0.2", "a long enough password"))
                .await
                .status()
                .as_u16(),
            303,
            "address B gets in"
        );
        // A slow guess from many addresses hits the account's ceiling: then even the right
        // password from a new address waits.
        for i in 0..8 {
            let from = format!("10.0.1.{}", i / 4);
            assert_eq!(
                actix_web::test::call_service(&app, login(&from, "wrong"))
                    .await
                    .status()
                    .as_u16(),
                401
            );
        }
        assert_eq!(
            actix_web::test::call_service(&app, login("10.0.2.1", "a long enough password"))
                .await
                .status()
                .as_u16(),
            429,
            "the ceiling locks everywhere"
        );
    }
}

fn clerk(env: &Env) -> StaffUser {
    let id = fixture_clerk(env);
    StaffUser {
        id,
        username: "fixture-clerk".into(),
        role: Role::Clerk,
        municipality_code: Some("131016".into()),
        csrf: None,
        must_change_password: false,
    }
}

/// An application for resident 131016-000002 of the demo extract (伊藤 誠).
fn apply_for_ito(env: &Env, kind: &str) -> i64 {
    use kofu::service::intake::{self, ApplicationInput, Forms};
    let recorder = staff(env, "recorder");
    let input = ApplicationInput {
        kind: kind.into(),
        name: "伊藤 誠".into(),
        name_kana: "イトウ マコト".into(),
        birth_date: "1981-06-06".into(),
        sex: "1".into(),
        address: "東京都千代田区丸の内5-12-13".into(),
        postal_code: "1005752".into(),
        municipality_code: "131016".into(),
        delivery: "mail".into(),
        email: None,
        forms: Forms {
            application: true,
            power_of_attorney: true,
            consent: true,
        },
    };
    intake::create(
        &mut env.conn(),
        &data_key(),
        &input,
        recorder.id,
        &recorder.actor(),
        now(),
    )
    .unwrap()
    .0
}

fn decide(env: &Env, id: i64, approve: bool) -> kofu::error::Result<&'static str> {
    let registry = kofu::registry::ExtractRegistry::new(data_key());
    let reason = if approve { "" } else { "duplicate" };
    kofu::service::verification::decide(
        &mut env.conn(),
        &data_key(),
        &registry,
        &clerk(env),
        id,
        approve,
        reason,
        now(),
    )
}

fn order_and_run(env: &Env, conf: &std::path::Path, id: i64) -> i64 {
    let batch = kofu::service::orders::order(&mut env.conn(), &staff(env, "orderer"), &[id], now())
        .unwrap()
        .id;
    let out = run(&mut batch_command(env, conf, batch));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cards_of(env, batch)
        .into_iter()
        .find(|c| c.state == "written")
        .unwrap()
        .id
}

#[test]
fn one_resident_gets_one_live_card() {
    each_backend(|env| {
        env.init_ca();
        kofu::registry::extract::import_extract(
            &mut env.conn(),
            &data_key(),
            kofu::registry::extract::DEMO_EXTRACT.as_bytes(),
            &Actor::new("t", "cli"),
            now(),
        )
        .unwrap();
        let conf = blank_cards(env.dir.path());
        // Two `new` applications for one resident: the first approved, the second not.
        let first = apply_for_ito(env, "new");
        let second = apply_for_ito(env, "new");
        assert_eq!(decide(env, first, true).unwrap(), "verified");
        let registry = kofu::registry::ExtractRegistry::new(data_key());
        let c = kofu::service::verification::check(
            &mut env.conn(),
            &data_key(),
            &registry,
            &clerk(env),
            second,
            now(),
        )
        .unwrap();
        assert!(!c.approvable());
        let first_ref = kofu::db::models::application::ApplicationRow::get(&mut env.conn(), first)
            .unwrap()
            .unwrap()
            .reference;
        assert!(
            c.conflict.as_deref().unwrap().contains(&first_ref),
            "{:?}",
            c.conflict
        );
        let err = decide(env, second, true).unwrap_err();
        assert!(
            matches!(err, kofu::error::Error::Conflict(_)) && err.to_string().contains(&first_ref),
            "{err}"
        );
        decide(env, second, false).unwrap();

        let old = order_and_run(env, &conf, first);
        // Once the card is written, another `new` application is refused naming the card.
        let third = apply_for_ito(env, "new");
        let err = decide(env, third, true).unwrap_err();
        let old_number = kofu::db::models::card::CardRow::for_application(&mut env.conn(), first)
            .unwrap()
            .unwrap()
            .card_number;
        assert!(
            err.to_string()
                .contains(&kofu::card::number::display(&old_number)),
            "{err}"
        );
        decide(env, third, false).unwrap();

        // A reissue is the way to a second card: writing it revokes the old one.
        let reissue = apply_for_ito(env, "reissue");
        assert_eq!(decide(env, reissue, true).unwrap(), "verified");
        let new = order_and_run(env, &conf, reissue);
        use kofu::db::schema::{cards as k, certificates as c};
        let status: String = k::table
            .find(old)
            .select(k::status)
            .first(&mut *env.conn())
            .unwrap();
        assert_eq!(status, "revoked");
        let reasons: Vec<Option<i32>> = c::table
            .filter(c::card_id.eq(old))
            .filter(c::state.eq("issued"))
            .select(c::revocation_reason)
            .load(&mut *env.conn())
            .unwrap();
        assert_eq!(reasons.len(), 2);
        assert!(
            reasons.iter().all(|r| *r == Some(4)),
            "superseded: {reasons:?}"
        );
        let good: Vec<Option<i32>> = c::table
            .filter(c::card_id.eq(new))
            .filter(c::state.eq("issued"))
            .select(c::revocation_reason)
            .load(&mut *env.conn())
            .unwrap();
        assert!(good.iter().all(Option::is_none));
        assert_eq!(audit_count(env, "card.replaced"), 1);
    });
}

#[actix_web::test]
async fn a_retried_post_with_the_same_idempotency_key_creates_nothing() {
    for env in envs() {
        eprintln!("--- backend: {}", env.db.label);
        let app = actix_web::test::init_service(kofu::http::app(state(&env))).await;
        let office = ready_user(&env, "office-i", Role::Office, None);
        let other = ready_user(&env, "office-j", Role::Office, None);
        let body = json!({"kind": "new", "name": "山田 花子", "name_kana": "ヤマダ ハナコ", "birth_date": "1990-01-02",
            "sex": "female", "address": "東京都千代田区千代田1-1", "postal_code": "100-0001", "municipality_code": "131016",
            "delivery": "mail", "forms": {"application": true, "power_of_attorney": true, "consent": true}});
        let post = |uri: &str, token: &str, key: &str, body: &serde_json::Value| {
            actix_web::test::TestRequest::post()
                .uri(uri)
                .insert_header(("authorization", format!("Bearer {token}")))
                .insert_header(("idempotency-key", key.to_string()))
                .set_json(body)
                .to_request()
        };
        let count = |env: &Env| -> i64 {
            use kofu::db::schema::applications::dsl::*;
            applications.count().get_result(&mut *env.conn()).unwrap()
        };
        let r1 = actix_web::test::call_service(
            &app,
            post("/api/v1/applications", &office, "retry-1", &body),
        )
        .await;
        assert_eq!(r1.status(), 201);
        let b1: serde_json::Value = actix_web::test::read_body_json(r1).await;
        let r2 = actix_web::test::call_service(
            &app,
            post("/api/v1/applications", &office, "retry-1", &body),
        )
        .await;
        assert_eq!(r2.status(), 201);
        assert_eq!(r2.headers().get("idempotent-replayed").unwrap(), "true");
        let b2: serde_json::Value = actix_web::test::read_body_json(r2).await;
        assert_eq!(b1, b2, "the first answer again");
        assert_eq!(count(&env), 1, "one application");
        let mut changed = body.clone();
        changed["name"] = json!("山田 太郎");
        let r3 = actix_web::test::call_service(
            &app,
            post("/api/v1/applications", &office, "retry-1", &changed),
        )
        .await;
        assert_eq!(r3.status(), 422, "a key reused for another request");
        assert_eq!(count(&env), 1);

        // An issuance order retried: one batch.
        let id = b1["id"].as_i64().unwrap();
        mark_verified(&env, &[id]);
        let order = json!({"application_ids": [id]});
        let o1 =
            actix_web::test::call_service(&app, post("/api/v1/batches", &other, "order-1", &order))
                .await;
        assert_eq!(o1.status(), 201);
        let o1: serde_json::Value = actix_web::test::read_body_json(o1).await;
        let o2 =
            actix_web::test::call_service(&app, post("/api/v1/batches", &other, "order-1", &order))
                .await;
        assert_eq!(o2.status(), 201);
        let o2: serde_json::Value = actix_web::test::read_body_json(o2).await;
        assert_eq!(o1["id"], o2["id"]);
        let batches: i64 = {
            use kofu::db::schema::issuance_batches::dsl::*;
            issuance_batches
                .count()
                .get_result(&mut *env.conn())
                .unwrap()
        };
        assert_eq!(batches, 1);
    }
}

#[actix_web::test]
async fn a_flood_of_refusals_adds_a_bounded_number_of_audit_entries() {
    for env in envs() {
        eprintln!("--- backend: {}", env.db.label);
        let st = state(&env);
        let refusals = st.refusals.clone();
        let app = actix_web::test::init_service(kofu::http::app(st)).await;
        let cc = ready_user(&env, "cc-flood", Role::Callcenter, None);
        let before = kofu::audit::verify(&mut env.conn()).unwrap().entries;
        for _ in 0..3000 {
            assert_eq!(call!(app, get, "/api/v1/applications", cc).0, 403);
        }
        refusals.flush(&mut env.conn(), now().timestamp()).unwrap();
        let after = kofu::audit::verify(&mut env.conn()).unwrap().entries;
        eprintln!("3,000 refusals: {} audit entries", after - before);
        assert!(after - before <= 100, "{} entries", after - before);
        let entries = kofu::audit::list(&mut env.conn(), None, 100).unwrap();
        let summary = entries
            .iter()
            .find(|e| e.action == "access.denied.counted")
            .expect("a summary");
        assert!(
            summary
                .detail
                .contains(&format!("refusals={}", 3000 - (after - before - 1))),
            "{}",
            summary.detail
        );
        let out = run(env.command().args(["audit", "verify"]));
        assert!(out.status.success());
    }
}
