//! Verifiers as they work with kofu: registered by the admin (API and CLI), calling
//! `kofu serve` over real TLS with a client certificate (curl) or with a token, registering
//! serials, following a renewal chain of three, reading the change feed with a cursor; and
//! refused when suspended, when the certificate or token is revoked, when asking about
//! another verifier's serials (answered as unknown, audited), over the rate limit, and on
//! bad input.

use crate::common::*;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::ca::Hierarchy;
use kofu::ca::profile::CaName;
use kofu::db::models::card::CardRow;
use kofu::db::schema::{applications, certificates};
use kofu::service::revocation::{self, Action, By};
use kofu::service::users::Role;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod scenario;

/// ca.toml as shipped (revocation data for verifiers only), the schedule slowed so that the
/// test's own publications are the only ones.
fn ca_config(env: &Env) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("ca-config/ca.toml"))
        .unwrap()
        .replace("publish_delay_seconds = 60", "publish_delay_seconds = 3600");
    assert!(text.contains("revocation_access = \"verifiers\""));
    let path = env.path("ca-verifiers.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The TLS side of a running server, reached with curl as a verifier's system would.
struct Tls {
    base: String,
    root: PathBuf,
    dir: PathBuf,
}

/// What a request sent: a client certificate (cert, key) and/or a bearer token.
#[derive(Clone, Copy, Default)]
struct Creds<'a> {
    cert: Option<(&'a Path, &'a Path)>,
    token: Option<&'a str>,
}

impl Tls {
    /// (status, body, headers) of one request on a new TLS connection.
    fn call(
        &self,
        creds: Creds,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, String, String) {
        let headers = self.dir.join("curl-headers.txt");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--cacert"])
            .arg(&self.root)
            .args(["-X", method, "-D"])
            .arg(&headers)
            .args(["-w", "\n%{http_code}"]);
        if let Some((c, k)) = creds.cert {
            cmd.arg("--cert").arg(c).arg("--key").arg(k);
        }
        if let Some(t) = creds.token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        if let Some(b) = body {
            let file = self.dir.join("curl-body.json");
            std::fs::write(&file, b.to_string()).unwrap();
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(format!("@{}", file.display()));
        }
        let out = run(cmd.arg(format!("{}{path}", self.base)));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        let code: u16 = code.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {path}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (
            code,
            body.to_string(),
            std::fs::read_to_string(&headers).unwrap_or_default(),
        )
    }

    fn json(&self, creds: Creds, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (code, text, _) = self.call(creds, method, path, body);
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn api(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", server.base);
    let mut resp = match body {
        Some(b) => server
            .agent
            .post(&url)
            .header("authorization", &format!("Bearer {token}"))
            .send_json(b)
            .unwrap(),
        None if method == "POST" => server
            .agent
            .post(&url)
            .header("authorization", &format!("Bearer {token}"))
            .send_empty()
            .unwrap(),
        None => server
            .agent
            .get(&url)
            .header("authorization", &format!("Bearer {token}"))
            .call()
            .unwrap(),
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Renew card `card`'s signing certificate at the counter (`kofu card renew`, holder's
/// PIN), after a renewal application checked by the clerk; returns what the command printed.
pub fn renew(env: &Env, conf: &Path, card: &CardRow, pin: &str, reference: &str) -> String {
    let app =
        kofu::db::models::application::ApplicationRow::get(&mut env.conn(), card.application_id)
            .unwrap()
            .unwrap();
    diesel::insert_into(applications::table)
        .values((
            applications::reference.eq(reference),
            applications::kind.eq("renewal"),
            applications::state.eq("verified"),
            applications::decided_by.eq(Some(fixture_clerk(env))),
            applications::municipality_code.eq(&app.municipality_code),
            applications::delivery.eq(&app.delivery),
            applications::form_application.eq(true),
            applications::form_power_of_attorney.eq(true),
            applications::form_consent.eq(true),
            applications::pii.eq(&app.pii),
            applications::created_by.eq(app.created_by),
            applications::created_at.eq(now().timestamp()),
            applications::updated_at.eq(now().timestamp()),
            applications::previous_application_id.eq(app.id),
            applications::card_id.eq(card.id),
        ))
        .execute(&mut *env.conn())
        .unwrap();
    let mut child = env
        .command()
        .env("KOFU_CA_CONFIG", conf)
        .env("SOFTHSM2_CONF", blank_cards(env.dir.path()))
        .env("KOFU_CARD_MODULE", softhsm_module())
        .env("KOFU_CARD_KEYGEN", "software")
        .args(["card", "renew", &card.card_number])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{pin}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Serials of a card's issued certificates of one profile, oldest first.
fn serials(env: &Env, card: &CardRow, profile: &str) -> Vec<String> {
    certificates::table
        .filter(certificates::card_id.eq(card.id))
        .filter(certificates::profile.eq(profile))
        .filter(certificates::state.eq("issued"))
        .order(certificates::id.asc())
        .select(certificates::serial)
        .load(&mut *env.conn())
        .unwrap()
}

fn cli(env: &Env, conf: &Path, args: &[&str]) -> String {
    let out = run(env.command().env("KOFU_CA_CONFIG", conf).args(args));
    assert!(
        out.status.success(),
        "kofu {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lines(body: &str) -> Vec<Value> {
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn next_cursor(headers: &str) -> String {
    headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("kofu-next-cursor")
                .then(|| v.trim().to_string())
        })
        .expect("Kofu-Next-Cursor header")
}

#[actix_web::test]
async fn the_openapi_document_covers_every_api_route() {
    use actix_web::test;
    let env = envs().remove(0);
    let app = test::init_service(kofu::http::app(state(&env))).await;
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/openapi.json")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let doc: Value = test::read_body_json(resp).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for r in kofu::http::routes().filter(|r| r.path.starts_with("/api/v1/")) {
        let op = &paths[r.path][r.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} missing", r.method, r.path);
        assert!(
            !op["summary"].as_str().unwrap().is_empty(),
            "{} {}",
            r.method,
            r.path
        );
        documented += 1;
    }
    let total: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(total, documented, "nothing documented that is not a route");
    let query = &paths["/api/v1/linkage/query"]["post"];
    assert_eq!(
        query["security"],
        json!([{"verifierToken": []}, {"verifierCertificate": []}])
    );
    assert_eq!(
        query["requestBody"]["content"]["application/json"]["schema"]["properties"]["serials"]["maxItems"],
        10000
    );
}

#[actix_web::test]
async fn admin_pages_register_and_manage_a_verifier() {
    use actix_web::test;
    let env = envs().remove(0);
    let app = test::init_service(kofu::http::app(state(&env))).await;
    ready_user(&env, "admin-p", Role::Admin, None);
    let session = login_session(&env, "admin-p");
    let csrf = session.csrf.clone();
    let cookie = format!("kofu_session={}", session.cookie);
    let post = |path: &str, form: &str| {
        test::TestRequest::post()
            .uri(path)
            .insert_header(("cookie", cookie.clone()))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(form.to_string())
            .to_request()
    };
    // A mistake comes back next to what was typed.
    let resp = test::call_service(
        &app,
        post(
            "/verifiers",
            &format!("csrf={csrf}&name=%E7%97%85%E9%99%A2&contact=&signing=on&rate_limit=100"),
        ),
    )
    .await;
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(
        body.contains("id=\"error\"") && body.contains("contact"),
        "{body}"
    );
    assert!(body.contains("value=\"病院\""), "typed name kept");
    // Forged: no CSRF token.
    let resp = test::call_service(
        &app,
        post(
            "/verifiers",
            "csrf=forged&name=X&contact=Y&signing=on&rate_limit=5",
        ),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let resp = test::call_service(&app, post("/verifiers", &format!("csrf={csrf}&name=Clinic+D&contact=d%40example.jp&signing=on&authentication=on&rate_limit=600"))).await;
    assert_eq!(resp.status(), 303);
    let page = resp
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let resp = test::call_service(
        &app,
        post(&format!("{page}/tokens"), &format!("csrf={csrf}&label=api")),
    )
    .await;
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    let token = body
        .split("<pre id=\"secret\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap()
        .to_string();
    assert!(token.starts_with("kofuv_"), "{body}");
    let whoami = |t: &str| {
        test::TestRequest::get()
            .uri("/api/v1/verifier")
            .insert_header(("authorization", format!("Bearer {t}")))
            .to_request()
    };
    assert_eq!(test::call_service(&app, whoami(&token)).await.status(), 200);
    let resp = test::call_service(
        &app,
        post(
            &format!("{page}/status"),
            &format!("csrf={csrf}&status=suspended"),
        ),
    )
    .await;
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(body.contains("data-status=\"suspended\""), "{body}");
    assert_eq!(test::call_service(&app, whoami(&token)).await.status(), 403);
    // The list shows it; the token is not shown again.
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/verifiers")
            .insert_header(("cookie", cookie.clone()))
            .to_request(),
    )
    .await;
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(
        body.contains("Clinic D") && !body.contains(&token),
        "{body}"
    );
}
