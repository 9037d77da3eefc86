//! Issuance batches written to cards: SoftHSM2 tokens stand in for cards (one token each).
//! `kofu batch run` writes them; pkcs11-tool and openssl read them back as a card operator's
//! tools would. The crash test kills the runner with SIGKILL at many points and reruns it.

use crate::common::*;
use diesel::prelude::*;
use kofu::card::number;
use kofu::db::models::card::CardRow;
use kofu::service::users::Role;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn a_batch_of_20_cards_is_written_and_reads_back() {
    each_backend(|env| {
        env.init_ca();
        let conf = blank_cards(env.dir.path());
        let batch = ordered_batch(env, 20);
        let out = run(&mut batch_command(env, &conf, batch));
        assert!(
            out.status.success(),
            "batch run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("20 of 20 cards written"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        // A clean run logs no errors (cryptoki's complaints about vendor mechanisms included).
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("ERROR"), "{stderr}");
        let cards = cards_of(env, batch);
        assert_eq!(cards.len(), 20);
        let numbers: std::collections::BTreeSet<&str> =
            cards.iter().map(|c| c.card_number.as_str()).collect();
        assert_eq!(numbers.len(), 20, "card numbers are unique");
        for (card, adult) in cards.iter().zip(adults(env, &cards)) {
            assert_eq!(card.state, "written");
            assert_eq!(card.keygen.as_deref(), Some("card"));
            assert_eq!(number::parse(&card.card_number).unwrap(), card.card_number);
            check_card(env, &conf, card, adult);
        }
        let (b, items) = kofu::service::orders::show(&mut env.conn(), batch).unwrap();
        assert_eq!(b.state, "completed");
        assert!(items.iter().all(|i| i.2 == "issued"), "{items:?}");

        // Running it again writes nothing twice.
        let out = run(&mut batch_command(env, &conf, batch));
        assert!(out.status.success());
        let issued: i64 = kofu::db::schema::certificates::table
            .filter(kofu::db::schema::certificates::state.eq("issued"))
            .filter(kofu::db::schema::certificates::card_id.is_not_null())
            .count()
            .get_result(&mut *env.conn())
            .unwrap();
        assert_eq!(
            issued,
            20 + 16,
            "20 authentication and 16 signing certificates"
        );
    });
}

/// The signing minimum age is ca-config's alone: raised to 16, a 15-year-old's card is
/// written with the authentication application only (no signing key, PIN or certificate),
/// and the batch completes; before, the runner's own constant of 15 asked for a signing
/// certificate that the profile then refused.
#[test]
fn the_signing_minimum_age_comes_from_ca_config() {
    each_backend(|env| {
        let text = std::fs::read_to_string(repo().join("ca-config/ca.toml")).unwrap();
        assert!(text.contains("signing_min_age = 15"));
        let conf = env.path("ca-16.toml");
        std::fs::write(
            &conf,
            text.replace("signing_min_age = 15", "signing_min_age = 16"),
        )
        .unwrap();
        init(env, &conf);
        let tokens = blank_cards(env.dir.path());
        // 15 on the fixed day (2026-11-21), and an adult beside.
        let batch = ordered_batch_born(env, &["2011-06-01", "昭和50年4月1日"]);
        let out = run(batch_command(env, &tokens, batch).env("KOFU_CA_CONFIG", &conf));
        assert!(
            out.status.success(),
            "batch run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cards = cards_of(env, batch);
        assert_eq!(cards.len(), 2);
        let (b, _) = kofu::service::orders::show(&mut env.conn(), batch).unwrap();
        assert_eq!(b.state, "completed");
        let profiles = |card: &CardRow| -> Vec<String> {
            let mut p: Vec<String> = kofu::db::schema::certificates::table
                .filter(kofu::db::schema::certificates::card_id.eq(card.id))
                .filter(kofu::db::schema::certificates::state.eq("issued"))
                .select(kofu::db::schema::certificates::profile)
                .load(&mut *env.conn())
                .unwrap();
            p.sort();
            p
        };
        let by_app: Vec<&CardRow> = {
            let mut v: Vec<&CardRow> = cards.iter().collect();
            v.sort_by_key(|c| c.application_id);
            v
        };
        check_card(env, &tokens, by_app[0], false);
        assert_eq!(profiles(by_app[0]), ["authentication"]);
        check_card(env, &tokens, by_app[1], true);
        assert_eq!(profiles(by_app[1]), ["authentication", "signing"]);
    });
}

/// Where a crash test kills the runner: right after the `nth` card step (counted in one
/// run, two cards at a time) whose log line contains `step` ("" = any step).
struct KillPoint(&'static str, usize);

/// The kill points, cycled until a run finishes: first around personalisation (right
/// after `C_InitToken`, after `C_InitPIN`, after the first object is written), then at
/// every later step and at counted steps anywhere.
const KILL_POINTS: &[KillPoint] = &[
    KillPoint("token initialised", 1),
    KillPoint("pin set", 1),
    KillPoint("key made", 1),
    KillPoint("", 1),
    KillPoint("token initialised", 2),
    KillPoint("certificate written", 1),
    KillPoint("pin set", 2),
    KillPoint("\"personalised\"", 1),
    KillPoint("key made", 2),
    KillPoint("\"allocated\"", 2),
    KillPoint("\"certified\"", 1),
    KillPoint("token initialised", 1),
    KillPoint("\"written\"", 1),
    KillPoint("\"read back\"", 1),
    KillPoint("", 5),
    KillPoint("pin set", 1),
    KillPoint("", 9),
    KillPoint("token initialised", 3),
    KillPoint("", 13),
    KillPoint("certificate written", 2),
    KillPoint("", 17),
    KillPoint("", 23),
];

/// Run `kofu batch run` again and again, killing it (SIGKILL) at the kill points, until a
/// run is not killed; that run must succeed. Returns the kill points that were reached.
fn kill_until_done(env: &Env, conf: &Path, batch: i64) -> Vec<&'static str> {
    let mut points = KILL_POINTS.iter().cycle();
    let mut kills = Vec::new();
    for _ in 0..80 {
        let KillPoint(step, nth) = points.next().unwrap();
        let mut child = batch_command(env, conf, batch)
            .env("KOFU_LOG", "kofu=debug")
            .env("KOFU_CARD_WORKERS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (mut seen, mut killed) = (0, false);
        let mut log = String::new();
        for line in stderr.lines() {
            let line = line.unwrap();
            log.push_str(&line);
            log.push('\n');
            if line.contains("card step") && line.contains(step) {
                seen += 1;
                if seen == *nth {
                    child.kill().unwrap(); // SIGKILL
                    killed = true;
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        if killed {
            kills.push(*step);
            continue;
        }
        assert!(status.success(), "the last run failed: {status}\n{log}");
        return kills;
    }
    panic!("the batch never finished");
}

#[test]
fn a_batch_killed_at_any_point_finishes_on_rerun() {
    each_backend(|env| {
        env.init_ca();
        let conf = blank_cards(env.dir.path());
        let batch = ordered_batch(env, 10);
        let kills = kill_until_done(env, &conf, batch);
        eprintln!("killed {} times: {kills:?}", kills.len());
        assert!(kills.len() >= 12);
        for step in ["token initialised", "pin set", "key made"] {
            assert!(kills.contains(&step), "killed right after {step}");
        }
        assert_batch_invariants(env, &conf, batch, 10);
    });
}

fn pdf_text(bytes: &[u8], dir: &Path, name: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    let out = run(Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-"));
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[actix_web::test]
async fn delivery_documents_and_records() {
    use actix_web::http::StatusCode;
    use actix_web::test;
    use serde_json::json;
    for env in envs() {
        env.init_ca();
        let conf = blank_cards(env.dir.path());
        let batch = ordered_batch(&env, 4); // 0 and 3 to the counter, 1 and 2 by mail
        let out = run(&mut batch_command(&env, &conf, batch));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cards = cards_of(&env, batch);
        cards.sort_by_key(|c| c.application_id); // in application order
        let office = ready_user(&env, "office-d", Role::Office, None);
        let operator = ready_user(&env, "operator-d", Role::Operator, None);
        let app = test::init_service(kofu::http::app(state(&env))).await;
        let get_pdf = |uri: String, token: String| {
            test::TestRequest::get()
                .uri(&uri)
                .insert_header(("authorization", format!("Bearer {token}")))
                .to_request()
        };

        // The batch page: progress, card states; the office gets the documents' links.
        let page = |token: String| {
            test::TestRequest::get()
                .uri(&format!("/batches/{batch}"))
                .insert_header(("authorization", format!("Bearer {token}")))
                .to_request()
        };
        let resp = test::call_service(&app, page(operator.clone())).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        assert!(
            html.contains("4 / 4 枚") && html.contains("書込完了"),
            "{html}"
        );
        assert!(html.contains(&kofu::card::number::display(&cards[0].card_number)));
        assert!(
            !html.contains("labels.pdf"),
            "operators do not print labels"
        );
        let resp = test::call_service(&app, page(office.clone())).await;
        let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        assert!(
            html.contains("labels.pdf") && !html.contains("id=\"run\""),
            "{html}"
        );

        // Labels: the two mail cards, each with 〒, name 様 and the marking.
        let resp = test::call_service(
            &app,
            get_pdf(
                format!("/api/v1/batches/{batch}/labels.pdf"),
                office.clone(),
            ),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/pdf"
        );
        let text = pdf_text(&test::read_body(resp).await, env.dir.path(), "labels.pdf");
        assert_eq!(text.matches("本人限定受取").count(), 2, "{text}");
        assert!(
            text.contains("〒100-0001") && text.contains("試験 太郎1 様"),
            "{text}"
        );
        assert!(
            !text.contains("試験 太郎0 様"),
            "counter cards get no label"
        );
        let resp = test::call_service(
            &app,
            get_pdf(
                format!("/api/v1/batches/{batch}/labels.pdf?layout=single"),
                office.clone(),
            ),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let resp = test::call_service(
            &app,
            get_pdf(
                format!("/api/v1/batches/{batch}/labels.pdf?layout=roll"),
                office.clone(),
            ),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let resp = test::call_service(
            &app,
            get_pdf(
                format!("/api/v1/batches/{batch}/labels.pdf"),
                operator.clone(),
            ),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);

        // PIN mailers for all four, with the PINs kofu holds sealed.
        let resp = test::call_service(
            &app,
            get_pdf(
                format!("/api/v1/batches/{batch}/pin-mailers.pdf"),
                office.clone(),
            ),
        )
        .await;
        let text = pdf_text(&test::read_body(resp).await, env.dir.path(), "pins.pdf");
        assert_eq!(text.matches("暗証番号通知書").count(), 4);
        for card in &cards {
            let pins = kofu::service::batches::pins(&data_key(), card)
                .unwrap()
                .unwrap();
            assert!(text.contains(&pins.auth));
        }
        let resp = test::call_service(
            &app,
            get_pdf(
                format!("/api/v1/batches/{batch}/counter-notices.pdf"),
                office.clone(),
            ),
        )
        .await;
        let text = pdf_text(&test::read_body(resp).await, env.dir.path(), "notices.pdf");
        assert_eq!(text.matches("交付通知書").count(), 2);

        let number = |i: usize| cards[i].card_number.clone();
        let post =
            |n: String, body: serde_json::Value| (format!("/api/v1/cards/{n}/delivery"), body);
        // Bad input changes nothing.
        let (uri, body) = post(
            number(1),
            json!({"event": "shipped", "tracking_number": "12-34"}),
        );
        let (st, b) = call!(app, post, uri, office, body);
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["field"], "tracking_number", "{b}");
        let (uri, body) = post(
            number(0),
            json!({"event": "shipped", "tracking_number": "1234-5678-9012"}),
        );
        assert_eq!(
            call!(app, post, uri, office, body).0,
            StatusCode::CONFLICT,
            "counter card not shipped"
        );
        let (uri, body) = post(
            number(0),
            json!({"event": "handed_over", "identity_checked": false}),
        );
        assert_eq!(
            call!(app, post, uri, office, body).0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let (st, b) = call!(app, get, format!("/api/v1/cards/{}", number(1)), office);
        assert_eq!((st, b["state"].as_str()), (StatusCode::OK, Some("written")));

        // Shipped, then delivered; shipped, then returned; handed over at the counter.
        let (uri, body) = post(
            number(1),
            json!({"event": "shipped", "tracking_number": "1234-5678-9012"}),
        );
        let (st, b) = call!(app, post, uri, office, body);
        assert_eq!(
            (st, b["state"].as_str()),
            (StatusCode::OK, Some("shipped")),
            "{b}"
        );
        assert_eq!(b["tracking_number"], "123456789012");
        let (uri, body) = post(number(1), json!({"event": "delivered"}));
        assert_eq!(call!(app, post, uri, office, body).1["state"], "delivered");
        let (uri, body) = post(number(1), json!({"event": "returned"}));
        assert_eq!(
            call!(app, post, uri, office, body).0,
            StatusCode::CONFLICT,
            "a delivered card cannot come back"
        );
        let (uri, body) = post(
            number(2),
            json!({"event": "shipped", "tracking_number": "98765432109"}),
        );
        assert_eq!(call!(app, post, uri, office, body).0, StatusCode::OK);
        let (uri, body) = post(number(2), json!({"event": "returned"}));
        assert_eq!(call!(app, post, uri, office, body).1["state"], "returned");
        let (uri, body) = post(
            number(0),
            json!({"event": "handed_over", "identity_checked": true}),
        );
        assert_eq!(
            call!(app, post, uri, office, body).1["state"],
            "handed_over"
        );

        // The office's form on the batch page: the identity check must be ticked.
        let session = login_session(&env, "office-d");
        let cookie = actix_web::cookie::Cookie::new("kofu_session", session.cookie.clone());
        let form = |fields: Vec<(&'static str, String)>| {
            test::TestRequest::post()
                .uri(&format!("/cards/{}/delivery", number(3)))
                .cookie(cookie.clone())
                .set_form(fields)
                .to_request()
        };
        let resp = test::call_service(
            &app,
            form(vec![
                ("csrf", session.csrf.clone()),
                ("event", "handed_over".into()),
            ]),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        assert!(
            html.contains("identity_checked"),
            "the refusal names the box: {html}"
        );
        let resp = test::call_service(
            &app,
            form(vec![
                ("csrf", "forged".into()),
                ("event", "handed_over".into()),
                ("identity_checked", "on".into()),
            ]),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "CSRF checked");
        let resp = test::call_service(
            &app,
            form(vec![
                ("csrf", session.csrf.clone()),
                ("event", "handed_over".into()),
                ("identity_checked", "on".into()),
            ]),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let row = CardRow::by_number(&mut env.conn(), &number(3))
            .unwrap()
            .unwrap();
        assert_eq!(row.state, "handed_over");

        // Shipped and handed-over cards no longer hold PINs: no mailer for them.
        for i in [0, 1, 2, 3] {
            let row = CardRow::by_number(&mut env.conn(), &number(i))
                .unwrap()
                .unwrap();
            assert!(row.pins.is_none(), "PINs erased once the card left");
        }
        let resp = test::call_service(
            &app,
            get_pdf(
                format!("/api/v1/batches/{batch}/pin-mailers.pdf"),
                office.clone(),
            ),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::CONFLICT, "nothing left to print");

        let audit = kofu::audit::list(&mut env.conn(), None, 1000).unwrap();
        for action in [
            "card.shipped",
            "card.delivered",
            "card.returned",
            "card.handed_over",
            "batch.labels",
            "batch.pin_mailers",
        ] {
            assert!(
                audit
                    .iter()
                    .any(|e| e.action == action && e.actor == "office-d"),
                "{action}"
            );
        }
    }
}

#[test]
fn cards_that_cannot_generate_get_keys_written_from_software() {
    each_backend(|env| {
        let (batch, conf) = software_batch(env, 2);
        for card in cards_of(env, batch) {
            assert_eq!(card.keygen.as_deref(), Some("software"));
            let pins = kofu::service::batches::pins(&data_key(), &card)
                .unwrap()
                .unwrap();
            let listing = pkcs11_tool(
                &conf,
                &[
                    "--token-label",
                    &card.card_number,
                    "--login",
                    "--pin",
                    &pins.auth,
                    "--list-objects",
                    "--type",
                    "privkey",
                ],
            );
            let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
            // Written keys are sensitive and not extractable, and honestly not "local".
            assert_eq!(
                listing.matches("Private Key Object").count(),
                2,
                "{listing}"
            );
            assert_eq!(
                listing.matches("Access:     sensitive\n").count(),
                2,
                "{listing}"
            );
            assert!(!listing.contains("local"), "{listing}");
            check_card_certificates(env, &conf, &card);
        }
    });
}

/// The operator's button path end to end: `kofu serve` with the card readers, a run started
/// over HTTP, and the batch page's data followed until the batch is complete.
#[test]
fn a_batch_started_over_http_runs_to_completion() {
    let env = envs().into_iter().next().unwrap(); // SQLite; the runner is the same code
    env.init_ca();
    let conf = blank_cards(env.dir.path());
    let batch = ordered_batch(&env, 3);
    let operator = ready_user(&env, "operator-w", Role::Operator, None);
    let mut cmd = env.command();
    cmd.env("SOFTHSM2_CONF", &conf)
        .env("KOFU_CARD_MODULE", softhsm_module());
    let server = Server::start(cmd);
    let (base, agent) = (&server.base, &server.agent);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let auth = format!("Bearer {operator}");
    let resp = agent
        .post(&format!("{base}/api/v1/batches/{batch}/run"))
        .header("authorization", &auth)
        .send_empty()
        .unwrap();
    assert_eq!(resp.status(), 202);
    loop {
        let mut resp = agent
            .get(&format!("{base}/api/v1/batches/{batch}"))
            .header("authorization", &auth)
            .call()
            .unwrap();
        let v: serde_json::Value = resp.body_mut().read_json().unwrap();
        if v["batch"]["state"] == "completed" {
            assert_eq!(v["cards"]["written"], 3, "{v}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "batch not done: {v}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let audit = kofu::audit::list(&mut env.conn(), None, 1000).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "batch.started" && e.actor == "operator-w")
    );
    assert_eq!(
        audit.iter().filter(|e| e.action == "card.written").count(),
        3
    );
}
