//! Verifiers as they work with kofu: registered by the admin (API and CLI), calling
//! `kofu serve` over real TLS with a client certificate (curl) or with a token, registering
//! serials, following a renewal chain of three, reading the change feed with a cursor; and
//! refused when suspended, when the certificate or token is revoked, when asking about
//! another verifier's serials (answered as unknown, audited), over the rate limit, and on
//! bad input.

use crate::common::*;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::ca::profile::CaName;
use kofu::db::models::card::CardRow;
use kofu::db::schema::{applications, certificates};
use kofu::service::revocation::{self, Action, By};
use kofu::service::users::Role;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

#[test]
fn verifiers_over_mutual_tls_and_tokens() {
    each_backend(|env| {
        let conf = ca_config(env);
        let h = init(env, &conf);
        let (cards, pins) = written_cards(env, &conf);
        // Card 1 renewed twice: a chain of three signing certificates.
        renew(env, &conf, &cards[1], &pins[1], "KF-RENEW-00001");
        renew(env, &conf, &cards[1], &pins[1], "KF-RENEW-00002");
        let chain = serials(env, &cards[1], "signing");
        assert_eq!(chain.len(), 3, "{chain:?}");
        let auth1 = serials(env, &cards[1], "authentication");
        assert_eq!(auth1.len(), 1);
        let s0 = serials(env, &cards[0], "signing")[0].clone();
        let s3 = serials(env, &cards[3], "signing")[0].clone();
        let admin = ready_user(env, "admin-v", Role::Admin, None);

        let mut cmd = env.command();
        cmd.env("KOFU_CA_CONFIG", &conf)
            .env("KOFU_TLS_HOSTNAMES", "localhost");
        let (server, tls_port) = Server::start_with_tls(cmd);
        let tls = Tls {
            base: format!("https://localhost:{tls_port}"),
            root: ca_pem(env, &h, CaName::Root),
            dir: env.dir.path().to_path_buf(),
        };

        // The admin registers verifier A through the API, B through the CLI.
        let (status, a) = api(
            &server,
            &admin,
            "POST",
            "/api/v1/verifiers",
            Some(
                json!({"name": "Hospital A", "contact": "情報システム課 03-0000-0000", "cas": ["signing", "authentication"]}),
            ),
        );
        assert_eq!(status, 201, "{a}");
        let a_id = a["id"].as_i64().unwrap();
        let (status, v) = api(
            &server,
            &admin,
            "POST",
            "/api/v1/verifiers",
            Some(json!({"name": "Hospital A", "contact": "x", "cas": ["root"]})),
        );
        assert_eq!(status, 422, "{v}");
        assert_eq!(v["field"], "cas", "{v}");
        cli(
            env,
            &conf,
            &[
                "verifier",
                "add",
                "Bank B",
                "--contact",
                "bank@example.jp",
                "--cas",
                "signing",
            ],
        );
        let b_token = cli(
            env,
            &conf,
            &["verifier", "token", "Bank B", "--label", "batch"],
        )
        .trim()
        .to_string();
        assert!(b_token.starts_with("kofuv_"));

        // A's client certificate from its CSR (verifier-client profile) and a token.
        let (key, csr) = csr("Hospital A mTLS", &[]);
        let (status, issued) = api(
            &server,
            &admin,
            "POST",
            &format!("/api/v1/verifiers/{a_id}/certificates"),
            Some(json!({"label": "mtls", "csr": String::from_utf8(csr).unwrap()})),
        );
        assert_eq!(status, 201, "{issued}");
        let cert_cred = issued["credential"].as_i64().unwrap();
        let cert_pem =
            write(&env.path("a.pem"), issued["certificate"].as_str().unwrap()).to_path_buf();
        let key_pem =
            write(&env.path("a.key"), key.private_key_to_pem_pkcs8().unwrap()).to_path_buf();
        let lint = pkilint_errors("lint_pkix_cert", &cert_pem);
        assert!(lint.is_empty(), "{lint:?}");
        let (status, t) = api(
            &server,
            &admin,
            "POST",
            &format!("/api/v1/verifiers/{a_id}/tokens"),
            Some(json!({"label": "fallback"})),
        );
        assert_eq!(status, 201, "{t}");
        let a_token = t["token"].as_str().unwrap().to_string();
        let token_cred = t["credential"].as_i64().unwrap();
        let cert = Creds {
            cert: Some((&cert_pem, &key_pem)),
            token: None,
        };
        let token = Creds {
            cert: None,
            token: Some(&a_token),
        };
        let b = Creds {
            cert: None,
            token: Some(&b_token),
        };

        // Who am I, over TLS: by certificate, by token; nothing → 401.
        let (status, me) = tls.json(cert, "GET", "/api/v1/verifier", None);
        assert_eq!(
            (status, me["name"].as_str(), me["via"].as_str()),
            (200, Some("Hospital A"), Some("certificate")),
            "{me}"
        );
        let (status, me) = tls.json(token, "GET", "/api/v1/verifier", None);
        assert_eq!((status, me["via"].as_str()), (200, Some("token")), "{me}");
        let (status, _) = tls.json(Creds::default(), "GET", "/api/v1/verifier", None);
        assert_eq!(status, 401);
        // A staff token is not a verifier credential.
        let (status, _) = tls.json(
            Creds {
                cert: None,
                token: Some(&admin),
            },
            "GET",
            "/api/v1/verifier",
            None,
        );
        assert_eq!(status, 401);

        // Registration: idempotent; unknown serials named.
        let bogus = "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFF";
        let (status, r) = tls.json(
            cert,
            "POST",
            "/api/v1/linkage/serials",
            Some(&json!({"serials": [chain[0], s0.to_lowercase(), bogus]})),
        );
        assert_eq!(status, 200, "{r}");
        assert_eq!(
            (r["registered"].as_u64(), r["already_registered"].as_u64()),
            (Some(2), Some(0)),
            "{r}"
        );
        assert_eq!(r["unknown"], json!([bogus]));
        let (status, r) = tls.json(
            token,
            "POST",
            "/api/v1/linkage/serials",
            Some(&json!({"serials": [chain[0], s0]})),
        );
        assert_eq!(status, 200, "{r}");
        assert_eq!(
            (r["registered"].as_u64(), r["already_registered"].as_u64()),
            (Some(0), Some(2)),
            "{r}"
        );
        let (status, r) = tls.json(
            b,
            "POST",
            "/api/v1/linkage/serials",
            Some(&json!({"serials": [s3]})),
        );
        assert_eq!((status, r["registered"].as_u64()), (200, Some(1)), "{r}");

        // Query: the chain of three is followed to its newest certificate; the
        // authentication serial and statuses come with it.
        let (status, q) = tls.json(
            cert,
            "POST",
            "/api/v1/linkage/query",
            Some(&json!({"serials": [chain[0], s0, s3, bogus]})),
        );
        assert_eq!(status, 200, "{q}");
        let res = q["results"].as_array().unwrap();
        assert_eq!(res[0]["found"], true, "{q}");
        assert_eq!(res[0]["certificate"]["status"], "revoked");
        assert_eq!(res[0]["certificate"]["reason"], "superseded");
        assert_eq!(res[0]["newest_signing"]["serial"], chain[2].as_str());
        assert_eq!(res[0]["newest_signing"]["status"], "good");
        assert_eq!(res[0]["renewals"], json!([chain[1], chain[2]]));
        assert_eq!(res[0]["authentication"]["serial"], auth1[0].as_str());
        assert_eq!(res[0]["authentication"]["status"], "good");
        assert_eq!(res[1]["found"], true);
        assert_eq!(res[1]["newest_signing"]["serial"], s0.as_str());
        // B's serial and a serial that does not exist: the same answer.
        assert_eq!(res[2], json!({"serial": s3, "found": false}));
        assert_eq!(res[3], json!({"serial": bogus, "found": false}));
        // Nothing personal in any answer.
        let text = q.to_string();
        for word in ["name", "address", "birth", "kana", "sex"] {
            assert!(!text.contains(word), "{word} in {text}");
        }
        // The attempt on B's serial is audited with the verifier's identity.
        let audit = kofu::audit::list(&mut env.conn(), None, 5000).unwrap();
        let attempt = audit
            .iter()
            .find(|e| e.action == "linkage.unregistered")
            .expect("attempt audited");
        assert_eq!(attempt.actor, "verifier:Hospital A");
        assert!(
            attempt.detail.contains(&s3) && attempt.detail.contains("existing=1"),
            "{}",
            attempt.detail
        );
        assert!(
            audit
                .iter()
                .any(|e| e.action == "linkage.register" && e.actor == "verifier:Bank B")
        );
        // B may not use authentication data: its answer has no authentication serial.
        let (_, qb) = tls.json(
            b,
            "POST",
            "/api/v1/linkage/query",
            Some(&json!({"serials": [s3]})),
        );
        assert_eq!(qb["results"][0]["found"], true, "{qb}");
        assert!(qb["results"][0].get("authentication").is_none(), "{qb}");

        // The change feed: everything so far, then only what is new, then nothing.
        let (status, first, headers) = tls.call(cert, "GET", "/api/v1/linkage/changes", None);
        assert_eq!(status, 200, "{first}");
        assert!(
            headers
                .to_lowercase()
                .contains("content-type: application/jsonl"),
            "{headers}"
        );
        let first = lines(&first);
        let kinds: Vec<&str> = first.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "renewed").count(),
            2,
            "{first:?}"
        );
        assert_eq!(
            kinds.iter().filter(|k| **k == "linked").count(),
            2,
            "{first:?}"
        );
        let linked1 = first
            .iter()
            .find(|e| e["type"] == "linked" && e["serial"] == chain[0].as_str())
            .unwrap();
        assert_eq!(linked1["related_serial"], auth1[0].as_str());
        let renewed: Vec<(&str, &str)> = first
            .iter()
            .filter(|e| e["type"] == "renewed")
            .map(|e| {
                (
                    e["serial"].as_str().unwrap(),
                    e["related_serial"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            renewed,
            vec![
                (chain[0].as_str(), chain[1].as_str()),
                (chain[1].as_str(), chain[2].as_str())
            ]
        );
        assert!(first.iter().any(|e| e["type"] == "revoked"
            && e["serial"] == chain[1].as_str()
            && e["reason"] == "superseded"));
        assert!(
            !first.iter().any(|e| e["serial"] == s3.as_str()),
            "B's card is not in A's feed"
        );
        let cursor = next_cursor(&headers);
        // A loss report on card 0: both certificates on hold.
        let card0 =
            revocation::card_by_number(&mut env.conn(), &card_number(&cards[0].card_number))
                .unwrap();
        revocation::apply(
            &mut env.conn(),
            &card0,
            Action::ReportLoss,
            By::Callcenter,
            None,
            &Actor::new("t", "callcenter"),
            "",
            now(),
        )
        .unwrap();
        let (status, second, headers2) = tls.call(
            token,
            "GET",
            &format!("/api/v1/linkage/changes?cursor={cursor}"),
            None,
        );
        assert_eq!(status, 200);
        let second = lines(&second);
        assert_eq!(second.len(), 2, "{second:?}");
        assert!(
            second
                .iter()
                .all(|e| e["type"] == "revoked" && e["reason"] == "certificateHold")
        );
        let which: Vec<&str> = second
            .iter()
            .map(|e| e["certificate"].as_str().unwrap())
            .collect();
        assert!(
            which.contains(&"signing") && which.contains(&"authentication"),
            "{which:?}"
        );
        let cursor2 = next_cursor(&headers2);
        let (_, third, headers3) = tls.call(
            cert,
            "GET",
            &format!("/api/v1/linkage/changes?cursor={cursor2}"),
            None,
        );
        assert!(third.is_empty(), "{third}");
        assert_eq!(next_cursor(&headers3), cursor2);
        // Each change exactly once: a download from the start in small pages, resumed from
        // each page's last entry, is the two downloads together.
        let mut paged = Vec::new();
        let mut at = String::new();
        loop {
            let (_, page, _) = tls.call(
                token,
                "GET",
                &format!("/api/v1/linkage/changes?limit=3&cursor={at}"),
                None,
            );
            let page = lines(&page);
            if page.is_empty() {
                break;
            }
            at = page.last().unwrap()["cursor"].as_str().unwrap().to_string();
            paged.extend(page);
        }
        let both: Vec<Value> = first.iter().chain(second.iter()).cloned().collect();
        assert_eq!(paged, both);
        // CSV: the same entries.
        let (status, csv, headers) =
            tls.call(cert, "GET", "/api/v1/linkage/changes?format=csv", None);
        assert_eq!(status, 200);
        assert!(headers.to_lowercase().contains("text/csv"), "{headers}");
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(
            rows[0],
            "cursor,type,serial,certificate,related_serial,reason,at"
        );
        assert_eq!(rows.len(), both.len() + 1);

        // Revocation data is for verifiers, and only for the CAs each may use.
        let crl_file =
            kofu::service::crl::file_name(CaName::Signing, None, kofu::service::crl::Kind::Full);
        let (status, _, _) = tls.call(Creds::default(), "GET", &format!("/crl/{crl_file}"), None);
        assert_eq!(status, 401);
        let (status, _, _) = tls.call(cert, "GET", &format!("/crl/{crl_file}"), None);
        assert!(status == 200 || status == 404, "{status}");
        let auth_crl = kofu::service::crl::file_name(
            CaName::Authentication,
            None,
            kofu::service::crl::Kind::Full,
        );
        let (status, v, _) = tls.call(b, "GET", &format!("/crl/{auth_crl}"), None);
        assert_eq!(status, 403, "{v}");
        // OCSP with openssl's client, a verifier token in a header, over plain HTTP.
        let sign_ca = ca_pem(env, &h, CaName::Signing);
        let newest = write(&env.path("newest.pem"), {
            let der: Vec<u8> = certificates::table
                .filter(certificates::serial.eq(&chain[2]))
                .select(certificates::cert_der.assume_not_null())
                .first(&mut *env.conn())
                .unwrap();
            kofu::ca::der_to_pem(&der).unwrap()
        })
        .to_path_buf();
        let ocsp = |auth: Option<&str>| {
            let mut cmd = Command::new("openssl");
            cmd.args(["ocsp", "-url", &format!("{}/ocsp/signing", server.base)])
                .arg("-issuer")
                .arg(&sign_ca)
                .arg("-CAfile")
                .arg(&tls.root)
                .arg("-verify_other")
                .arg(&sign_ca)
                .arg("-cert")
                .arg(&newest);
            if let Some(t) = auth {
                cmd.args(["-header", &format!("Authorization=Bearer {t}")]);
            }
            let out = run(&mut cmd);
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        };
        let anon = ocsp(None);
        assert!(!anon.contains(": good"), "{anon}");
        let good = ocsp(Some(&a_token));
        assert!(
            good.contains(": good") && good.contains("Response verify OK"),
            "{good}"
        );

        // Bad input: named, nothing changed.
        let (status, v) = tls.json(
            cert,
            "POST",
            "/api/v1/linkage/query",
            Some(&json!({"serials": ["01AB", "xyz", "80FF"]})),
        );
        assert_eq!(status, 422, "{v}");
        let fields: Vec<&str> = v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["serials[1]", "serials[2]"]);
        let many: Vec<String> = (0..100_000).map(|i| format!("01{i:030X}")).collect();
        let (status, v) = api(
            &server,
            &a_token,
            "POST",
            "/api/v1/linkage/serials",
            Some(json!({ "serials": many })),
        );
        assert_eq!(status, 422, "{v}");
        assert_eq!(v["field"], "serials");
        assert!(v["error"].as_str().unwrap().contains("10000"), "{v}");
        for bad in ["abc", "-1", "99999999999"] {
            let (status, v) = tls.json(
                cert,
                "GET",
                &format!("/api/v1/linkage/changes?cursor={bad}"),
                None,
            );
            assert_eq!(status, 422, "{bad}: {v}");
            assert_eq!(v["field"], "cursor", "{v}");
        }
        let (status, v) = tls.json(cert, "GET", "/api/v1/linkage/changes?format=xml", None);
        assert_eq!((status, v["field"].as_str()), (422, Some("format")), "{v}");
        let registered: i64 = kofu::db::schema::verifier_serials::table
            .count()
            .get_result(&mut *env.conn())
            .unwrap();
        assert_eq!(registered, 3);

        // Rate limit: a verifier allowed 3 requests a minute gets a clear 429 on the 4th.
        cli(
            env,
            &conf,
            &[
                "verifier",
                "add",
                "Platform C",
                "--contact",
                "c@example.jp",
                "--rate-limit",
                "3",
            ],
        );
        let c_token = cli(env, &conf, &["verifier", "token", "Platform C"])
            .trim()
            .to_string();
        let c = Creds {
            cert: None,
            token: Some(&c_token),
        };
        for _ in 0..3 {
            assert_eq!(tls.json(c, "GET", "/api/v1/verifier", None).0, 200);
        }
        let (status, v, headers) = tls.call(c, "GET", "/api/v1/verifier", None);
        assert_eq!(status, 429, "{v}");
        assert!(headers.to_lowercase().contains("retry-after:"), "{headers}");
        assert!(v.contains("3 requests a minute"), "{v}");
        // A refused verifier over its limit is not audited request by request.
        cli(env, &conf, &["verifier", "suspend", "Platform C"]);
        let (status, _, _) = tls.call(c, "GET", "/api/v1/verifier", None);
        assert_eq!(status, 429);
        let audit = kofu::audit::list(&mut env.conn(), None, 5000).unwrap();
        assert!(
            !audit
                .iter()
                .any(|e| e.action == "verifier.refused" && e.actor == "verifier:Platform C")
        );

        // Refusals take effect at once: a revoked token, a revoked client certificate, a
        // suspended verifier.
        let (status, _) = api(
            &server,
            &admin,
            "POST",
            &format!("/api/v1/verifiers/{a_id}/credentials/{token_cred}/revoke"),
            None,
        );
        assert_eq!(status, 200);
        let (status, v) = tls.json(token, "GET", "/api/v1/verifier", None);
        assert_eq!(status, 403, "{v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("token has been revoked"),
            "{v}"
        );
        assert_eq!(
            tls.json(cert, "GET", "/api/v1/verifier", None).0,
            200,
            "the certificate still works"
        );
        let (status, _) = api(
            &server,
            &admin,
            "POST",
            &format!("/api/v1/verifiers/{a_id}/credentials/{cert_cred}/revoke"),
            None,
        );
        assert_eq!(status, 200);
        let (status, v) = tls.json(cert, "GET", "/api/v1/verifier", None);
        assert_eq!(status, 403, "{v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("certificate has been revoked"),
            "{v}"
        );
        let cert_serial = issued["serial"].as_str().unwrap();
        let reason: Option<i32> = certificates::table
            .filter(certificates::serial.eq(cert_serial))
            .select(certificates::revocation_reason)
            .first(&mut *env.conn())
            .unwrap();
        assert_eq!(
            reason,
            Some(5),
            "the client certificate is revoked in the infrastructure CA's data too"
        );
        assert_eq!(tls.json(b, "GET", "/api/v1/verifier", None).0, 200);
        cli(env, &conf, &["verifier", "suspend", "Bank B"]);
        let (status, v) = tls.json(b, "GET", "/api/v1/verifier", None);
        assert_eq!(status, 403, "{v}");
        assert!(v["error"].as_str().unwrap().contains("suspended"), "{v}");
        cli(env, &conf, &["verifier", "activate", "Bank B"]);
        assert_eq!(tls.json(b, "GET", "/api/v1/verifier", None).0, 200);
        let audit = kofu::audit::list(&mut env.conn(), None, 5000).unwrap();
        let refused: Vec<&str> = audit
            .iter()
            .filter(|e| e.action == "verifier.refused")
            .map(|e| e.actor.as_str())
            .collect();
        assert!(
            refused.contains(&"verifier:Hospital A") && refused.contains(&"verifier:Bank B"),
            "{refused:?}"
        );
        assert!(
            audit
                .iter()
                .any(|e| e.action == "crl.download" && e.actor == "verifier:Hospital A")
        );
        let list = cli(env, &conf, &["verifier", "list"]);
        assert!(
            list.contains("Hospital A") && list.contains("revoked"),
            "{list}"
        );
        let out = run(env.command().args(["audit", "verify"]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
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
