//! The staff web login as a browser uses it: CSRF-protected forms, session cookie flags,
//! lock-out after five failures, the one-time password change, the Japanese landing page,
//! and the API with a session cookie needing the CSRF header.

use crate::common::*;
use actix_web::http::StatusCode;
use actix_web::test;
use kofu::audit::Actor;
use kofu::service::users::{self, Role};

fn csrf_in(html: &str) -> String {
    let at =
        html.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    html[at..at + 64].to_string()
}

fn cookie_of<B>(
    resp: &actix_web::dev::ServiceResponse<B>,
    name: &str,
) -> Option<actix_web::cookie::Cookie<'static>> {
    resp.response()
        .cookies()
        .find(|c| c.name() == name)
        .map(|c| c.into_owned())
}

#[actix_web::test]
async fn login_lockout_password_change_and_csrf() {
    for env in envs() {
        let (_, otp) = users::add(
            &mut env.conn(),
            "office1",
            Role::Office,
            None,
            &Actor::new("t", "cli"),
            now(),
        )
        .unwrap();
        let mut cfg = env.cfg.clone();
        cfg.secure_cookies = Some(true);
        let mut st = state(&env);
        st.config = std::sync::Arc::new(cfg);
        let app = test::init_service(kofu::http::app(st)).await;

        // The login page sets the double-submit cookie and carries the same token.
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/login").to_request()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let login_cookie = cookie_of(&resp, "kofu_login_csrf").expect("login csrf cookie");
        let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        assert!(html.contains("職員ログイン"));
        let token = csrf_in(&html);
        assert_eq!(token, login_cookie.value());

        let login = |user: &str, pw: &str, csrf: &str| {
            test::TestRequest::post()
                .uri("/login")
                .cookie(login_cookie.clone())
                .set_form([("csrf", csrf), ("username", user), ("password", pw)])
                .to_request()
        };
        // Without the matching token the form is refused.
        let resp = test::call_service(&app, login("office1", &otp, "forged")).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);

        // A correct login: session cookie with the right flags, sent to change the password.
        let resp = test::call_service(&app, login("office1", &otp, &token)).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers().get("location").unwrap(), "/password");
        let session = cookie_of(&resp, "kofu_session").expect("session cookie");
        assert_eq!(session.http_only(), Some(true));
        assert_eq!(session.secure(), Some(true));
        assert_eq!(
            session.same_site(),
            Some(actix_web::cookie::SameSite::Strict)
        );

        // Until the one-time password is changed, other pages send the user back.
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/")
                .cookie(session.clone())
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/password")
                .cookie(session.clone())
                .to_request(),
        )
        .await;
        let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        let csrf = csrf_in(&html);
        let change = |csrf: &str, new: &str| {
            test::TestRequest::post()
                .uri("/password")
                .cookie(session.clone())
                .set_form([
                    ("csrf", csrf),
                    ("current_password", otp.as_str()),
                    ("new_password", new),
                ])
                .to_request()
        };
        assert_eq!(
            test::call_service(&app, change("wrong", "a brand new passphrase"))
                .await
                .status(),
            StatusCode::FORBIDDEN
        );
        let resp = test::call_service(&app, change(&csrf, "short")).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            String::from_utf8(test::read_body(resp).await.to_vec())
                .unwrap()
                .contains("12文字以上")
        );
        let resp = test::call_service(&app, change(&csrf, "a brand new passphrase")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/")
                .cookie(session.clone())
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        assert!(
            html.contains("ようこそ、office1 さん") && html.contains("協議会事務局"),
            "{html}"
        );

        // The API with a session cookie needs the CSRF header on writes.
        let no_header = test::TestRequest::post()
            .uri("/api/v1/tokens")
            .cookie(session.clone())
            .set_json(serde_json::json!({"label": "x"}))
            .to_request();
        assert_eq!(
            test::call_service(&app, no_header).await.status(),
            StatusCode::FORBIDDEN
        );
        let with_header = test::TestRequest::post()
            .uri("/api/v1/tokens")
            .cookie(session.clone())
            .insert_header(("x-csrf-token", csrf.as_str()))
            .set_json(serde_json::json!({"label": "script", "password": "a brand new passphrase"}))
            .to_request();
        let resp = test::call_service(&app, with_header).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: serde_json::Value = test::read_body_json(resp).await;
        let bearer = body["token"].as_str().unwrap().to_string();
        let me = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(("authorization", format!("Bearer {bearer}")))
                .to_request(),
        )
        .await;
        let me: serde_json::Value = test::read_body_json(me).await;
        assert_eq!(me["role"], "office");

        // Five failures lock the account, even against the right password.
        for _ in 0..5 {
            let resp = test::call_service(&app, login("office1", "wrong password", &token)).await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        }
        let resp =
            test::call_service(&app, login("office1", "a brand new passphrase", &token)).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        assert!(html.contains("ロック"));
        let entries = kofu::audit::list(&mut env.conn(), None, 100).unwrap();
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.action == "login.failed")
                .count(),
            5
        );
        assert!(entries.iter().any(|e| e.action == "login.locked"));

        // Logging out ends the session.
        let resp = test::call_service(
            &app,
            test::TestRequest::post()
                .uri("/logout")
                .cookie(session.clone())
                .set_form([("csrf", csrf.as_str())])
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/")
                .cookie(session.clone())
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
}
