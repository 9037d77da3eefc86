//! Issuance batches written to cards: SoftHSM2 tokens stand in for cards (one token each).
//! `kofu batch run` writes them; pkcs11-tool and openssl read them back as a card operator's
//! tools would. The crash test kills the runner with SIGKILL at many points and reruns it.

use crate::common::*;
use crate::pkcs11::softhsm_module;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::card::number;
use kofu::db::models::card::CardRow;
use kofu::service::auth::StaffUser;
use kofu::service::intake::{self, ApplicationInput, Forms};
use kofu::service::users::Role;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A SoftHSM2 configuration with an empty token directory: only blank cards.
pub fn blank_cards(dir: &Path) -> PathBuf {
    crate::pkcs11::softhsm_conf(dir, "cards")
}

/// An office member (a StaffUser as the web layer would pass it).
pub fn staff(env: &Env, name: &str) -> StaffUser {
    let (u, _) = kofu::service::users::add(
        &mut env.conn(),
        name,
        Role::Office,
        None,
        &Actor::new("test", "cli"),
        now(),
    )
    .unwrap();
    StaffUser {
        id: u.id,
        username: u.username,
        role: Role::Office,
        municipality_code: None,
        csrf: None,
        must_change_password: false,
    }
}

/// `n` verified applications (every fifth holder is 12, too young for a signing key),
/// ordered into one batch by a second office member. Returns the batch id.
pub fn ordered_batch(env: &Env, n: usize) -> i64 {
    let recorder = staff(env, "recorder");
    let orderer = staff(env, "orderer");
    let mut ids = Vec::new();
    for i in 0..n {
        let input = ApplicationInput {
            kind: "new".into(),
            name: format!("試験 太郎{i}"),
            name_kana: "シケン タロウ".into(),
            birth_date: if i % 5 == 4 {
                "2014-06-01".into()
            } else {
                "昭和50年4月1日".into()
            },
            sex: if i % 2 == 0 { "male" } else { "female" }.into(),
            address: format!("東京都千代田区千代田1-1-{}", i + 1),
            postal_code: "100-0001".into(),
            municipality_code: "131016".into(),
            delivery: if i % 3 == 0 { "counter" } else { "mail" }.into(),
            email: None,
            forms: Forms {
                application: true,
                power_of_attorney: true,
                consent: true,
            },
        };
        let (id, _, _) = intake::create(
            &mut env.conn(),
            &data_key(),
            &input,
            recorder.id,
            &recorder.actor(),
            now(),
        )
        .unwrap();
        ids.push(id);
    }
    // The clerk's check is another test's business: mark them verified directly.
    diesel::update(
        kofu::db::schema::applications::table
            .filter(kofu::db::schema::applications::id.eq_any(&ids)),
    )
    .set(kofu::db::schema::applications::state.eq("verified"))
    .execute(&mut *env.conn())
    .unwrap();
    kofu::service::orders::order(&mut env.conn(), &orderer, &ids, now())
        .unwrap()
        .id
}

/// `kofu batch run ID` with the cards of `conf`.
pub fn batch_command(env: &Env, conf: &Path, id: i64) -> Command {
    let mut c = env.command();
    c.env("SOFTHSM2_CONF", conf)
        .env("KOFU_CARD_MODULE", softhsm_module())
        .args(["batch", "run", &id.to_string()]);
    c
}

fn pkcs11_tool(conf: &Path, args: &[&str]) -> std::process::Output {
    run(Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", conf)
        .arg("--module")
        .arg(softhsm_module())
        .args(args))
}

fn hex_id(purpose: &str) -> String {
    hex::encode(purpose.as_bytes())
}

/// Read a card back with pkcs11-tool and openssl and check it as an operator would.
fn check_card(env: &Env, conf: &Path, card: &CardRow, adult: bool) {
    let pins = kofu::service::batches::pins(&data_key(), card)
        .unwrap()
        .expect("PINs kept until the mailer goes out");
    assert_eq!(pins.auth.len(), 4);
    assert_eq!(pins.sign.is_some(), adult);
    let num = &card.card_number;
    let listing = pkcs11_tool(
        conf,
        &[
            "--token-label",
            num,
            "--login",
            "--pin",
            &pins.auth,
            "--list-objects",
        ],
    );
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let keys = if adult { 2 } else { 1 };
    assert_eq!(
        listing
            .matches("Access:     sensitive, always sensitive, never extractable, local")
            .count(),
        keys,
        "private keys generated on the card, sensitive and never extractable:\n{listing}"
    );
    assert_eq!(listing.matches("Private Key Object").count(), keys);
    assert_eq!(listing.matches("Certificate Object").count(), keys);
    assert!(listing.contains("'card_number'"), "{listing}");
    assert!(listing.contains("'face'"), "{listing}");
    assert_eq!(
        listing.contains("'signing_pin_verifier'"),
        adult,
        "{listing}"
    );

    check_certificates(env, conf, card, adult);
    // A wrong PIN does not open the card.
    let wrong = if pins.auth == "2580" { "2581" } else { "2580" };
    let out = pkcs11_tool(
        conf,
        &[
            "--token-label",
            num,
            "--login",
            "--pin",
            wrong,
            "--list-objects",
        ],
    );
    assert!(!out.status.success(), "card {num} opened with a wrong PIN");
}

/// Both certificates of an adult's card verify against the chain, and the public keys on
/// the card are theirs.
fn check_card_certificates(env: &Env, conf: &Path, card: &CardRow) {
    check_certificates(env, conf, card, true);
}

fn check_certificates(env: &Env, conf: &Path, card: &CardRow, adult: bool) {
    let num = &card.card_number;
    // The card number object holds the number; the face data needs the PIN.
    let dir = env.dir.path();
    let purposes: &[(&str, &str)] = if adult {
        &[("authentication", "authentication"), ("signing", "signing")]
    } else {
        &[("authentication", "authentication")]
    };
    for (purpose, ca) in purposes {
        let cert = dir.join(format!("{num}-{purpose}.der"));
        let out = pkcs11_tool(
            conf,
            &[
                "--token-label",
                num,
                "--read-object",
                "--type",
                "cert",
                "--id",
                &hex_id(purpose),
                "--output-file",
                cert.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = dir.join(format!("{num}-{purpose}.pem"));
        let conv = run(Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(&cert)
            .arg("-out")
            .arg(&pem));
        assert!(conv.status.success());
        let ca_dir = env.cfg.ca_dir();
        let v = openssl_verify(
            &ca_dir.join("root.pem"),
            Some(&ca_dir.join(format!("{ca}.pem"))),
            &pem,
            &[],
        );
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));

        // The public key on the card is the certificate's.
        let pubkey = dir.join(format!("{num}-{purpose}.pub.der"));
        let out = pkcs11_tool(
            conf,
            &[
                "--token-label",
                num,
                "--read-object",
                "--type",
                "pubkey",
                "--id",
                &hex_id(purpose),
                "--output-file",
                pubkey.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let from_cert = run(Command::new("openssl")
            .args(["x509", "-in"])
            .arg(&pem)
            .args(["-noout", "-pubkey"]));
        let from_card = run(Command::new("openssl")
            .args(["pkey", "-pubin", "-inform", "DER", "-in"])
            .arg(&pubkey));
        assert!(
            from_card.status.success(),
            "{}",
            String::from_utf8_lossy(&from_card.stderr)
        );
        assert_eq!(
            from_cert.stdout, from_card.stdout,
            "card {num} {purpose} key"
        );
    }
}

fn cards_of(env: &Env, batch: i64) -> Vec<CardRow> {
    CardRow::for_batch(&mut env.conn(), batch).unwrap()
}

fn adults(env: &Env, cards: &[CardRow]) -> Vec<bool> {
    cards
        .iter()
        .map(|c| {
            let app = kofu::db::models::application::ApplicationRow::get(
                &mut env.conn(),
                c.application_id,
            )
            .unwrap()
            .unwrap();
            let who = intake::applicant(&data_key(), &app).unwrap();
            who.birth_date.format("%Y").to_string() != "2014"
        })
        .collect()
}

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

/// The labels of the initialised tokens (cards that went through personalisation).
fn token_labels(conf: &Path) -> Vec<String> {
    let out = run(Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .arg("--show-slots"));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut labels = Vec::new();
    let mut initialised = false;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Initialized:") {
            initialised = v.trim() == "yes";
        }
        if let Some(label) = line.strip_prefix("Label:")
            && initialised
        {
            labels.push(label.trim().to_string());
        }
    }
    labels
}

/// card id, serial, profile, state, DER.
type CertRow = (Option<i64>, String, String, String, Option<Vec<u8>>);

#[test]
fn a_batch_killed_at_any_point_finishes_on_rerun() {
    each_backend(|env| {
        env.init_ca();
        let conf = blank_cards(env.dir.path());
        let batch = ordered_batch(env, 6);
        // Kill after the n-th card step the runner logs (allocated, personalised, keys,
        // certified, written, read back; two cards at a time), for many n.
        let mut points = [1usize, 2, 3, 5, 4, 7, 6, 9, 11, 8, 13, 10, 17, 12, 23]
            .into_iter()
            .cycle();
        let (mut kills, mut runs) = (0, 0);
        loop {
            runs += 1;
            assert!(runs <= 60, "the batch never finished");
            let kill_after = points.next().unwrap();
            let mut child = batch_command(env, &conf, batch)
                .env("KOFU_LOG", "kofu=debug")
                .env("KOFU_CARD_WORKERS", "2")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = BufReader::new(child.stderr.take().unwrap());
            let mut seen = 0;
            let mut killed = false;
            let mut log = String::new();
            for line in stderr.lines() {
                let line = line.unwrap();
                log.push_str(&line);
                log.push('\n');
                if line.contains("card step") {
                    seen += 1;
                    if seen == kill_after {
                        child.kill().unwrap(); // SIGKILL
                        killed = true;
                        break;
                    }
                }
            }
            let status = child.wait().unwrap();
            if killed {
                kills += 1;
                continue;
            }
            assert!(status.success(), "the last run failed: {status}\n{log}");
            break;
        }
        eprintln!("killed {kills} times in {runs} runs");
        assert!(kills >= 5);

        let all = cards_of(env, batch);
        let numbers: std::collections::BTreeSet<String> =
            all.iter().map(|c| c.card_number.clone()).collect();
        assert_eq!(numbers.len(), all.len(), "no card number reused");
        let (cards, spoiled): (Vec<CardRow>, Vec<CardRow>) =
            all.into_iter().partition(|c| c.state == "written");
        assert_eq!(cards.len(), 6, "one written card per application");
        assert!(spoiled.iter().all(|c| c.state == "spoiled"));
        eprintln!("{} cards spoiled by a kill", spoiled.len());
        // Every card that was personalised is one of the batch's cards, and every written
        // card is in a reader.
        let labels = token_labels(&conf);
        assert!(
            labels.iter().all(|l| numbers.contains(l)),
            "{labels:?} vs {numbers:?}"
        );
        let adults = adults(env, &cards);
        for (card, adult) in cards.iter().zip(&adults) {
            assert!(labels.contains(&card.card_number));
            check_card(env, &conf, card, *adult);
        }

        // No certificate issued twice, none left between intent and storage, and each
        // issued one is the one on its card.
        use kofu::db::schema::certificates as c;
        let rows: Vec<CertRow> = c::table
            .filter(c::card_id.is_not_null())
            .select((c::card_id, c::serial, c::profile, c::state, c::cert_der))
            .load(&mut *env.conn())
            .unwrap();
        assert!(
            rows.iter().all(|r| r.3 == "issued" || r.3 == "abandoned"),
            "intents left behind: {:?}",
            rows.iter().map(|r| &r.3).collect::<Vec<_>>()
        );
        let issued: Vec<_> = rows.iter().filter(|r| r.3 == "issued").collect();
        eprintln!(
            "{} intents abandoned after a kill",
            rows.len() - issued.len()
        );
        let audit = kofu::audit::list(&mut env.conn(), None, 10_000).unwrap();
        for card in &cards {
            for profile in ["authentication", "signing"] {
                let mine: Vec<_> = issued
                    .iter()
                    .filter(|r| r.0 == Some(card.id) && r.2 == profile)
                    .collect();
                assert!(
                    mine.len() <= 1,
                    "card {} has two {profile} certificates",
                    card.card_number
                );
                if let Some(r) = mine.first() {
                    let file = env.path(&format!("{}-{profile}.der", card.card_number));
                    assert_eq!(
                        std::fs::read(&file).unwrap(),
                        *r.4.as_ref().unwrap(),
                        "the card holds the issued certificate"
                    );
                }
            }
        }
        let on_written = issued
            .iter()
            .filter(|r| cards.iter().any(|c| Some(c.id) == r.0))
            .count();
        assert_eq!(
            on_written,
            6 + 5,
            "one per key: 6 authentication, 5 signing"
        );
        // Certificates of spoiled cards are named for revocation.
        for card in &spoiled {
            let entry = audit
                .iter()
                .find(|e| {
                    e.action == "card.spoiled" && e.target == format!("card:{}", card.card_number)
                })
                .expect("spoiling is audited");
            for r in issued.iter().filter(|r| r.0 == Some(card.id)) {
                assert!(entry.detail.contains(&r.1), "{}", entry.detail);
            }
        }
        // Every issued certificate had its intent recorded first; the chain is whole.
        for r in &issued {
            let target = format!("serial:{}", r.1);
            assert!(
                audit
                    .iter()
                    .any(|e| e.action == "certificate.sign_intent" && e.target == target)
            );
        }
        let out = run(env.command().args(["audit", "verify"]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
        let app = test::init_service(kofu::app::app(crate::routes::state(&env))).await;
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
        let session = kofu::service::auth::login(
            &mut env.conn(),
            "office-d",
            "a long enough password",
            now(),
        )
        .unwrap();
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
        env.init_ca();
        let conf = blank_cards(env.dir.path());
        let batch = ordered_batch(env, 2);
        let out = run(batch_command(env, &conf, batch).env("KOFU_CARD_KEYGEN", "software"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
