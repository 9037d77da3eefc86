//! Revocation as the call centre, the office, the registry and a verifier's tools see it:
//! cards written by `kofu batch run`, `kofu serve` answering OCSP and serving CRLs, the
//! `openssl ocsp` client and `openssl verify -crl_check` as the verifier, pkilint on every
//! CRL, and the change feed through `kofu registry changes`.

use crate::common::*;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::ca::profile::CaName;
use kofu::db::models::card::CardRow;
use kofu::db::schema::{applications, cards, certificates};
use kofu::service::revocation::{self, Action, By};
use kofu::service::users::Role;
use std::path::{Path, PathBuf};
use std::process::Command;

mod loss;

fn serve(env: &Env, conf: &Path) -> Server {
    let mut cmd = env.command();
    cmd.env("KOFU_CA_CONFIG", conf)
        .env("SOFTHSM2_CONF", blank_cards(env.dir.path()))
        .env("KOFU_CARD_MODULE", softhsm_module())
        .env("KOFU_CARD_KEYGEN", "software");
    Server::start(cmd)
}

impl Server {
    fn post(&self, token: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let mut resp = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("authorization", &format!("Bearer {token}"))
            .send_json(body)
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_json().unwrap_or_default())
    }

    fn get_bytes(
        &self,
        path: &str,
        etag: Option<&str>,
    ) -> (u16, Vec<u8>, Option<String>, Option<String>) {
        let mut req = self.agent.get(&format!("{}{path}", self.base));
        if let Some(e) = etag {
            req = req.header("if-none-match", e);
        }
        let mut resp = req.call().unwrap();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (ct, tag) = (header("content-type"), header("etag"));
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_vec().unwrap_or_default();
        (status, body, ct, tag)
    }

    /// `openssl ocsp` against the responder; returns its stdout and stderr.
    fn ocsp(&self, env: &Env, issuer: &Path, root: &Path, ca: &str, what: &[&str]) -> String {
        let out = run(Command::new("openssl")
            .args(["ocsp", "-url", &format!("{}/ocsp/{ca}", self.base)])
            .arg("-issuer")
            .arg(issuer)
            .arg("-CAfile")
            .arg(root)
            .arg("-verify_other")
            .arg(issuer)
            .args(what)
            .arg("-resp_text")
            .current_dir(env.dir.path()));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

fn status_of(env: &Env, number: &str) -> String {
    cards::table
        .filter(cards::card_number.eq(number))
        .select(cards::status)
        .first(&mut *env.conn())
        .unwrap()
}

/// The CRL at `file` as served, written as PEM; also checks the HTTP headers and ETag.
fn fetch_crl(env: &Env, server: &Server, file: &str) -> PathBuf {
    let (status, der, ct, etag) = server.get_bytes(&format!("/crl/{file}"), None);
    assert_eq!(status, 200, "{file}");
    assert_eq!(ct.as_deref(), Some("application/pkix-crl"));
    let etag = etag.expect("ETag");
    let (again, body, _, _) = server.get_bytes(&format!("/crl/{file}"), Some(&etag));
    assert_eq!(again, 304, "unchanged CRL with its ETag");
    assert!(body.is_empty());
    let der_path = env.path(&format!("{file}.der"));
    std::fs::write(&der_path, &der).unwrap();
    let pem = env.path(&format!("{file}.pem"));
    let out = run(Command::new("openssl")
        .args(["crl", "-inform", "DER", "-in"])
        .arg(&der_path)
        .arg("-out")
        .arg(&pem));
    assert!(out.status.success());
    assert!(
        pkilint_crl(&der_path).is_empty(),
        "{file}: {:?}",
        pkilint_crl(&der_path)
    );
    pem
}

/// pkilint's ERROR and FATAL findings on a CRL (PKIX profile).
pub fn pkilint_crl(der: &Path) -> Vec<String> {
    let out = run(Command::new("lint_crl")
        .args(["lint", "-t", "CRL", "-p", "PKIX", "-s", "ERROR"])
        .arg(der));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("Traceback"), "lint_crl crashed: {text}");
    text.lines()
        .filter(|l| l.contains("ERROR") || l.contains("FATAL"))
        .map(str::to_string)
        .collect()
}

fn crl_text(pem: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(pem));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn serial_of(pem: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(pem));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_string()
}

fn verify_with_crl(root: &Path, issuing: &Path, crl: &Path, cert: &Path) -> (bool, String) {
    let out = run(Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(root)
        .arg("-untrusted")
        .arg(issuing)
        .arg("-CRLfile")
        .arg(crl)
        .arg(cert));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn publish(server: &Server, admin: &str, delta_only: bool) {
    let (status, v) = server.post(
        admin,
        "/api/v1/crls/publish",
        serde_json::json!({ "delta_only": delta_only }),
    );
    assert_eq!(status, 200, "{v}");
}

#[test]
fn sharded_crls_point_each_certificate_at_its_shard() {
    use kofu::ca::profile::CaName;
    let env = envs().into_iter().next().unwrap();
    let conf = public_ca_config(&env, 4);
    let h = init(&env, &conf);
    let (cards, _) = written_cards(&env, &conf);
    let root = ca_pem(&env, &h, CaName::Root);
    let auth_ca = ca_pem(&env, &h, CaName::Authentication);
    // Revoke one holder (death through the table, as the feed would).
    let card =
        revocation::card_by_number(&mut env.conn(), &card_number(&cards[1].card_number)).unwrap();
    revocation::apply(
        &mut env.conn(),
        &card,
        Action::Death,
        By::Registry,
        None,
        &Actor::new("t", "cli"),
        "",
        now(),
    )
    .unwrap();
    let published = kofu::service::crl::publish_all(
        &kofu::db::Db {
            read: env.pool.clone(),
            write: env.pool.clone(),
        },
        &h,
        false,
        &Actor::new("t", "cli"),
        now(),
    )
    .unwrap();
    // Whole CRL and 4 shards, full and delta, for three CAs.
    assert_eq!(published.len(), 3 * 5 * 2);
    let (_, auth_pem) = card_pems(&env, &cards[1]);
    let shard: Option<i32> = certificates::table
        .filter(certificates::card_id.eq(cards[1].id))
        .filter(certificates::profile.eq("authentication"))
        .select(certificates::crl_shard)
        .first(&mut *env.conn())
        .unwrap();
    let shard = shard.expect("sharded") as u16;
    let text = String::from_utf8_lossy(
        &run(Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&auth_pem))
        .stdout,
    )
    .into_owned();
    assert!(
        text.contains(&format!("/crl/authentication-{shard}.crl")),
        "{text}"
    );
    assert!(
        text.contains(&format!("/crl/authentication-{shard}-delta.crl")),
        "FreshestCRL: {text}"
    );
    let conn = &mut env.conn();
    for s in 0..4u16 {
        for kind in [
            kofu::service::crl::Kind::Full,
            kofu::service::crl::Kind::Delta,
        ] {
            let row = kofu::service::crl::latest(conn, CaName::Authentication, Some(s), kind)
                .unwrap()
                .unwrap();
            let der = kofu::service::crl::der(conn, row.id).unwrap();
            let path = env.path(&format!("auth-{s}-{}.der", kind.as_str()));
            std::fs::write(&path, &der).unwrap();
            assert!(
                pkilint_crl(&path).is_empty(),
                "shard {s} {kind:?}: {:?}",
                pkilint_crl(&path)
            );
            let pem = env.path(&format!("auth-{s}-{}.pem", kind.as_str()));
            run(Command::new("openssl")
                .args(["crl", "-inform", "DER", "-in"])
                .arg(&path)
                .arg("-out")
                .arg(&pem));
            let t = crl_text(&pem);
            assert!(t.contains("Issuing Distribution Point"), "{t}");
            assert_eq!(
                t.contains(&serial_of(&auth_pem)),
                s == shard && kind == kofu::service::crl::Kind::Full,
                "shard {s} {kind:?}"
            );
            if s == shard && kind == kofu::service::crl::Kind::Full {
                let (ok, out) = verify_with_crl(&root, &auth_ca, &pem, &auth_pem);
                assert!(!ok && out.contains("certificate revoked"), "{out}");
            }
        }
    }
}

/// The call centre's and the office's screens: the loss report form (CSRF, identity
/// questions, the answer shown next to the form), the office's list of suspended cards and
/// the card page with the actions the table allows.
#[actix_web::test]
async fn call_centre_and_office_screens() {
    use actix_web::http::StatusCode;
    use actix_web::test;
    let env = envs().into_iter().next().unwrap();
    let conf = public_ca_config(&env, 0);
    init(&env, &conf);
    let (cards, _) = written_cards(&env, &conf);
    let number = cards[1].card_number.clone();
    ready_user(&env, "cc-web", Role::Callcenter, None);
    ready_user(&env, "office-web", Role::Office, None);
    let app = test::init_service(kofu::http::app(state(&env))).await;
    let session = |name: &str| login_session(&env, name);
    let cc = session("cc-web");
    let cc_cookie = actix_web::cookie::Cookie::new("kofu_session", cc.cookie.clone());
    let page = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/callcenter")
            .cookie(cc_cookie.clone())
            .to_request(),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = String::from_utf8(test::read_body(page).await.to_vec()).unwrap();
    assert!(html.contains("紛失・盗難の受付") && html.contains("name=\"birth_date\""));
    let report = |csrf: &str, kana: &str| {
        test::TestRequest::post()
            .uri("/callcenter/loss-report")
            .cookie(cc_cookie.clone())
            .set_form([
                ("csrf", csrf),
                ("card_number", number.as_str()),
                ("kind", "lost"),
                ("name_kana", kana),
                ("birth_date", "S50.4.1"),
                ("postal_code", ""),
            ])
            .to_request()
    };
    let forged = test::call_service(&app, report("forged", "シケン タロウ")).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = test::call_service(&app, report(&cc.csrf, "ヤマダ ハナコ")).await;
    let html = String::from_utf8(test::read_body(wrong).await.to_vec()).unwrap();
    assert!(html.contains("do not match"), "{html}");
    assert!(html.contains("ヤマダ ハナコ"), "what was typed is kept");
    assert_eq!(status_of(&env, &number), "active");
    let ok = test::call_service(&app, report(&cc.csrf, "シケン タロウ")).await;
    let html = String::from_utf8(test::read_body(ok).await.to_vec()).unwrap();
    assert!(html.contains("一時停止しました"), "{html}");
    assert_eq!(status_of(&env, &number), "suspended");

    let office = session("office-web");
    let office_cookie = actix_web::cookie::Cookie::new("kofu_session", office.cookie.clone());
    let get = |uri: String| {
        test::TestRequest::get()
            .uri(&uri)
            .cookie(office_cookie.clone())
            .to_request()
    };
    let list = test::call_service(&app, get("/cards".into())).await;
    let html = String::from_utf8(test::read_body(list).await.to_vec()).unwrap();
    assert!(html.contains(&format!("/cards/{number}")), "{html}");
    let card = test::call_service(&app, get(format!("/cards/{number}"))).await;
    let html = String::from_utf8(test::read_body(card).await.to_vec()).unwrap();
    assert!(html.contains("id=\"action-revoke\"") && html.contains("id=\"action-lift_hold\""));
    assert!(
        !html.contains("id=\"action-destroy\""),
        "not for a delivered card"
    );
    assert!(html.contains("certificateHold"), "{html}");
    let lift = test::call_service(
        &app,
        test::TestRequest::post()
            .uri(&format!("/cards/{number}/status"))
            .cookie(office_cookie.clone())
            .set_form([("csrf", office.csrf.as_str()), ("action", "lift_hold")])
            .to_request(),
    )
    .await;
    let html = String::from_utf8(test::read_body(lift).await.to_vec()).unwrap();
    assert!(html.contains("一時停止の解除"), "{html}");
    assert_eq!(status_of(&env, &number), "active");
}

/// The CRL schedule: nothing to do right after publishing; a revocation is published
/// `publish_delay_seconds` after it is first seen, together with everything that came in
/// meanwhile (one delta for many); a full CRL is signed again before it goes stale.
#[test]
fn the_crl_schedule_coalesces_revocations_into_one_delta() {
    use kofu::ca::profile::{CaName, Profile};
    use kofu::service::crl::{self, Kind};
    let env = envs().into_iter().next().unwrap();
    let conf = public_ca_config(&env, 0);
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace("publish_delay_seconds = 3600", "publish_delay_seconds = 60");
    std::fs::write(&conf, text).unwrap();
    let h = init(&env, &conf);
    let db = kofu::db::Db {
        read: env.pool.clone(),
        write: env.pool.clone(),
    };
    let delay = i64::try_from(h.config.crl.publish_delay_seconds).unwrap();
    let ids: Vec<i64> = (0..3)
        .map(|_| {
            let (card, app) = card_being_written(&env, &holder());
            let (_, csr) = checked_csr("holder", &[]);
            let issued = issue_for_card(
                &env,
                &h,
                card,
                app,
                vec![(Profile::Authentication, csr.spki_der)],
            )
            .unwrap()
            .remove(0);
            certificates::table
                .filter(certificates::serial.eq(&issued.serial))
                .select(certificates::id)
                .first(&mut *env.conn())
                .unwrap()
        })
        .collect();
    let mut pending = crl::Pending::new();
    let at = |s: i64| now() + chrono::Duration::seconds(s);
    // First round: every scope gets a full CRL and a delta.
    let first = crl::run_due(&db, &h, &mut pending, at(0)).unwrap();
    assert_eq!(first.len(), 3 * 2);
    assert!(
        crl::run_due(&db, &h, &mut pending, at(1))
            .unwrap()
            .is_empty()
    );
    // A revocation at t=10 is seen, then two more come in before the delay is up.
    let revoke = |id: i64, s: i64| {
        revocation::set_status(
            &mut env.conn(),
            id,
            Some(kofu::ca::crl::Reason::KeyCompromise),
            at(s).timestamp(),
        )
        .unwrap()
    };
    assert!(revoke(ids[0], 10));
    assert!(
        crl::run_due(&db, &h, &mut pending, at(10))
            .unwrap()
            .is_empty()
    );
    assert!(revoke(ids[1], 20));
    assert!(revoke(ids[2], 30));
    assert!(
        crl::run_due(&db, &h, &mut pending, at(10 + delay - 1))
            .unwrap()
            .is_empty()
    );
    let published = crl::run_due(&db, &h, &mut pending, at(10 + delay)).unwrap();
    assert_eq!(published.len(), 1, "one delta for three revocations");
    assert_eq!(
        (published[0].ca, published[0].kind, published[0].entries),
        (CaName::Authentication, Kind::Delta, 3)
    );
    assert!(
        crl::run_due(&db, &h, &mut pending, at(11 + delay))
            .unwrap()
            .is_empty()
    );
    // Three quarters into the full CRL's life it is signed again (with a delta on it).
    let life = i64::from(h.config.crl.next_update_hours) * 3600;
    let later = crl::run_due(&db, &h, &mut pending, at(life * 3 / 4 + 1)).unwrap();
    assert!(
        later
            .iter()
            .any(|p| p.ca == CaName::Authentication && p.kind == Kind::Full && p.entries == 3),
        "{later:?}"
    );
}
