//! The verifiers' scenario over mutual TLS and tokens: registration, queries, the change feed,
//! revocation data, bad input, rate limits and refusals, each step a function over one
//! [`VerifierScene`].

use super::*;

#[test]
fn verifiers_over_mutual_tls_and_tokens() {
    each_backend(|env| {
        let s = verifier_scene(env);
        who_am_i_over_tls(&s);
        the_tls_listener_serves_verifiers_only(&s);
        registration_is_idempotent_and_names_unknown_serials(&s);
        a_query_follows_the_renewal_chain(&s);
        the_change_feed_gives_each_change_once(&s);
        revocation_data_only_for_the_cas_granted(&s);
        bad_input_is_named_and_changes_nothing(&s);
        the_rate_limit_answers_429(&s);
        refusals_take_effect_at_once(&s);
    });
}

/// A serial no certificate has.
const BOGUS: &str = "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFF";

/// What the steps of the verifiers' scenario share: four written cards (card 1 renewed twice), a
/// server with its TLS listener, and verifiers A (client certificate and token, both CAs) and B
/// (token, signing only) registered by the admin. The steps run in order.
struct VerifierScene<'a> {
    env: &'a Env,
    conf: PathBuf,
    h: Hierarchy,
    cards: Vec<CardRow>,
    chain: Vec<String>,
    auth1: Vec<String>,
    s0: String,
    s3: String,
    admin: String,
    server: Server,
    tls: Tls,
    a_id: i64,
    a_token: String,
    b_token: String,
    cert_pem: PathBuf,
    key_pem: PathBuf,
    cert_cred: i64,
    token_cred: i64,
    cert_serial: String,
}

fn verifier_scene(env: &Env) -> VerifierScene<'_> {
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
    let cert_pem = write(&env.path("a.pem"), issued["certificate"].as_str().unwrap()).to_path_buf();
    let key_pem = write(&env.path("a.key"), key.private_key_to_pem_pkcs8().unwrap()).to_path_buf();
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
    VerifierScene {
        env,
        conf,
        h,
        cards,
        chain,
        auth1,
        s0,
        s3,
        admin,
        server,
        tls,
        a_id,
        a_token,
        b_token,
        cert_pem,
        key_pem,
        cert_cred,
        token_cred,
        cert_serial: issued["serial"].as_str().unwrap().to_string(),
    }
}

/// Who am I, over TLS: by certificate, by token; nothing → 401; a staff token is not a verifier
/// credential.
fn who_am_i_over_tls(s: &VerifierScene) {
    let VerifierScene {
        admin,
        tls,
        a_token,
        cert_pem,
        key_pem,
        ..
    } = s;
    let cert = Creds {
        cert: Some((cert_pem.as_path(), key_pem.as_path())),
        token: None,
    };
    let token = Creds {
        cert: None,
        token: Some(a_token.as_str()),
    };
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
            token: Some(admin),
        },
        "GET",
        "/api/v1/verifier",
        None,
    );
    assert_eq!(status, 401);
}

/// The TLS listener serves verifiers only by default: every answer carries HSTS, staff
/// routes are 404 there even with a good staff token (they work on the plain listener). Where
/// `KOFU_TLS_SERVES` lets staff in, the cookies set over TLS are `Secure` (and not over plain
/// HTTP, whose public URL is http here).
fn the_tls_listener_serves_verifiers_only(s: &VerifierScene) {
    let VerifierScene {
        env,
        conf,
        admin,
        server,
        tls,
        cert_pem,
        key_pem,
        ..
    } = s;
    let cert = Creds {
        cert: Some((cert_pem.as_path(), key_pem.as_path())),
        token: None,
    };
    let staff = Creds {
        cert: None,
        token: Some(admin),
    };
    let (status, _, headers) = tls.call(cert, "GET", "/api/v1/verifier", None);
    assert_eq!(status, 200);
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{headers}"
    );
    for (method, path) in [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/verifiers"),
        ("POST", "/api/v1/verifiers"),
        ("GET", "/login"),
        ("GET", "/"),
    ] {
        let (status, body, headers) = tls.call(staff, method, path, None);
        assert_eq!(status, 404, "{method} {path} over TLS: {body}");
        assert!(
            headers
                .to_ascii_lowercase()
                .contains("strict-transport-security"),
            "{headers}"
        );
    }
    assert_eq!(api(server, admin, "GET", "/api/v1/me", None).0, 200);

    let mut cmd = env.command();
    cmd.env("KOFU_CA_CONFIG", conf)
        .env("KOFU_TLS_HOSTNAMES", "localhost")
        .env("KOFU_TLS_SERVES", "staff,verifiers");
    let (both, port) = Server::start_with_tls(cmd);
    let over_tls = Tls {
        base: format!("https://localhost:{port}"),
        root: tls.root.clone(),
        dir: tls.dir.clone(),
    };
    let (status, me) = over_tls.json(staff, "GET", "/api/v1/me", None);
    assert_eq!(status, 200, "{me}");
    let (status, _, headers) = over_tls.call(Creds::default(), "GET", "/login", None);
    assert_eq!(status, 200);
    let set_cookie: Vec<&str> = headers
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .collect();
    assert!(!set_cookie.is_empty(), "{headers}");
    for c in &set_cookie {
        assert!(c.contains("; Secure"), "over TLS: {c}");
    }
    let plain = both
        .agent
        .get(format!("{}/login", both.base))
        .call()
        .unwrap();
    let plain_cookie: Vec<String> = plain
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(!plain_cookie.is_empty());
    for c in &plain_cookie {
        assert!(!c.contains("Secure"), "over plain HTTP: {c}");
    }
}

/// Registration: idempotent; unknown serials named.
fn registration_is_idempotent_and_names_unknown_serials(s: &VerifierScene) {
    let VerifierScene {
        chain,
        s0,
        s3,
        tls,
        a_token,
        b_token,
        cert_pem,
        key_pem,
        ..
    } = s;
    let cert = Creds {
        cert: Some((cert_pem.as_path(), key_pem.as_path())),
        token: None,
    };
    let token = Creds {
        cert: None,
        token: Some(a_token.as_str()),
    };
    let b = Creds {
        cert: None,
        token: Some(b_token.as_str()),
    };
    let (status, r) = tls.json(
        cert,
        "POST",
        "/api/v1/linkage/serials",
        Some(&json!({"serials": [chain[0], s0.to_lowercase(), BOGUS]})),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["registered"].as_u64(), r["already_registered"].as_u64()),
        (Some(2), Some(0)),
        "{r}"
    );
    assert_eq!(r["unknown"], json!([BOGUS]));
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
}

/// Query: the chain of three is followed to its newest certificate, with the authentication
/// serial and statuses; another verifier's serial is not found, nothing personal is answered,
/// and the attempt is audited.
fn a_query_follows_the_renewal_chain(s: &VerifierScene) {
    let VerifierScene {
        env,
        chain,
        auth1,
        s0,
        s3,
        tls,
        b_token,
        cert_pem,
        key_pem,
        ..
    } = s;
    let cert = Creds {
        cert: Some((cert_pem.as_path(), key_pem.as_path())),
        token: None,
    };
    let b = Creds {
        cert: None,
        token: Some(b_token.as_str()),
    };
    let (status, q) = tls.json(
        cert,
        "POST",
        "/api/v1/linkage/query",
        Some(&json!({"serials": [chain[0], s0, s3, BOGUS]})),
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
    assert_eq!(res[3], json!({"serial": BOGUS, "found": false}));
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
        attempt.detail.contains(s3.as_str()) && attempt.detail.contains("existing=1"),
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
}

/// The change feed: everything so far, then only what is new, then nothing; paged downloads and
/// CSV give the same entries.
fn the_change_feed_gives_each_change_once(s: &VerifierScene) {
    let VerifierScene {
        env,
        cards,
        chain,
        auth1,
        s3,
        tls,
        a_token,
        cert_pem,
        key_pem,
        ..
    } = s;
    let cert = Creds {
        cert: Some((cert_pem.as_path(), key_pem.as_path())),
        token: None,
    };
    let token = Creds {
        cert: None,
        token: Some(a_token.as_str()),
    };
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
        revocation::card_by_number(&mut env.conn(), &card_number(&cards[0].card_number)).unwrap();
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
    let (status, csv, headers) = tls.call(cert, "GET", "/api/v1/linkage/changes?format=csv", None);
    assert_eq!(status, 200);
    assert!(headers.to_lowercase().contains("text/csv"), "{headers}");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "cursor,type,serial,certificate,related_serial,reason,at"
    );
    assert_eq!(rows.len(), both.len() + 1);
}

/// Revocation data is for verifiers, and only for the CAs each may use; OCSP with openssl's
/// client and a verifier token over plain HTTP.
fn revocation_data_only_for_the_cas_granted(s: &VerifierScene) {
    let VerifierScene {
        env,
        h,
        chain,
        server,
        tls,
        a_token,
        b_token,
        cert_pem,
        key_pem,
        ..
    } = s;
    let cert = Creds {
        cert: Some((cert_pem.as_path(), key_pem.as_path())),
        token: None,
    };
    let b = Creds {
        cert: None,
        token: Some(b_token.as_str()),
    };
    let crl_file =
        kofu::service::crl::file_name(CaName::Signing, None, kofu::service::crl::Kind::Full);
    let (status, _, _) = tls.call(Creds::default(), "GET", &format!("/crl/{crl_file}"), None);
    assert_eq!(status, 401);
    let (status, _, _) = tls.call(cert, "GET", &format!("/crl/{crl_file}"), None);
    assert!(status == 200 || status == 404, "{status}");
    let auth_crl =
        kofu::service::crl::file_name(CaName::Authentication, None, kofu::service::crl::Kind::Full);
    let (status, v, _) = tls.call(b, "GET", &format!("/crl/{auth_crl}"), None);
    assert_eq!(status, 403, "{v}");
    // OCSP with openssl's client, a verifier token in a header, over plain HTTP.
    let sign_ca = ca_pem(env, h, CaName::Signing);
    let newest = write(&env.path("newest.pem"), {
        let der: Vec<u8> = certificates::table
            .filter(certificates::serial.eq(&chain[2]))
            .select(certificates::cert_der.assume_not_null())
            .first(&mut *env.conn())
            .unwrap();
        kofu::ca::der_to_pem(&opened(&der)).unwrap()
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
    let good = ocsp(Some(a_token));
    assert!(
        good.contains(": good") && good.contains("Response verify OK"),
        "{good}"
    );
}

/// Bad input: named, nothing changed.
fn bad_input_is_named_and_changes_nothing(s: &VerifierScene) {
    let VerifierScene {
        env,
        server,
        tls,
        a_token,
        cert_pem,
        key_pem,
        ..
    } = s;
    let cert = Creds {
        cert: Some((cert_pem.as_path(), key_pem.as_path())),
        token: None,
    };
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
        server,
        a_token,
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
}

/// Rate limit: a verifier allowed 3 requests a minute gets a clear 429 on the 4th; a refused
/// verifier over its limit is not audited request by request.
fn the_rate_limit_answers_429(s: &VerifierScene) {
    let VerifierScene { env, conf, tls, .. } = s;
    cli(
        env,
        conf,
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
    let c_token = cli(env, conf, &["verifier", "token", "Platform C"])
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
    cli(env, conf, &["verifier", "suspend", "Platform C"]);
    let (status, _, _) = tls.call(c, "GET", "/api/v1/verifier", None);
    assert_eq!(status, 429);
    let audit = kofu::audit::list(&mut env.conn(), None, 5000).unwrap();
    assert!(
        !audit
            .iter()
            .any(|e| e.action == "verifier.refused" && e.actor == "verifier:Platform C")
    );
}

/// Refusals take effect at once: a revoked token, a revoked client certificate, a suspended
/// verifier.
fn refusals_take_effect_at_once(s: &VerifierScene) {
    let VerifierScene {
        env,
        conf,
        admin,
        server,
        tls,
        a_id,
        a_token,
        b_token,
        cert_pem,
        key_pem,
        cert_cred,
        token_cred,
        cert_serial,
        ..
    } = s;
    let cert = Creds {
        cert: Some((cert_pem.as_path(), key_pem.as_path())),
        token: None,
    };
    let token = Creds {
        cert: None,
        token: Some(a_token.as_str()),
    };
    let b = Creds {
        cert: None,
        token: Some(b_token.as_str()),
    };
    let (status, _) = api(
        server,
        admin,
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
        server,
        admin,
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
    cli(env, conf, &["verifier", "suspend", "Bank B"]);
    let (status, v) = tls.json(b, "GET", "/api/v1/verifier", None);
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("suspended"), "{v}");
    cli(env, conf, &["verifier", "activate", "Bank B"]);
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
    let list = cli(env, conf, &["verifier", "list"]);
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
}
