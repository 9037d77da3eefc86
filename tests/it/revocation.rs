//! Revocation as the call centre, the office, the registry and a verifier's tools see it:
//! cards written by `kofu batch run`, `kofu serve` answering OCSP and serving CRLs, the
//! `openssl ocsp` client and `openssl verify -crl_check` as the verifier, pkilint on every
//! CRL, and the change feed through `kofu registry changes`.

use crate::common::*;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::db::schema::{applications, cards, certificates};
use kofu::service::revocation::{self, Action, By};
use kofu::service::users::Role;
use std::path::{Path, PathBuf};
use std::process::Command;

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
fn loss_hold_lift_revoke_and_the_change_feed_as_verifiers_see_them() {
    use kofu::ca::profile::CaName;
    each_backend(|env| {
        let conf = public_ca_config(env, 0);
        let h = init(env, &conf);
        let (cards, pins) = written_cards(env, &conf);
        let root = ca_pem(env, &h, CaName::Root);
        let signing = ca_pem(env, &h, CaName::Signing);
        let authentication = ca_pem(env, &h, CaName::Authentication);
        let pems: Vec<(Option<PathBuf>, PathBuf)> =
            cards.iter().map(|c| card_pems(env, c)).collect();
        let callcenter = ready_user(env, "cc", Role::Callcenter, None);
        let officer = ready_user(env, "officer", Role::Office, None);
        let admin = ready_user(env, "admin2", Role::Admin, None);
        let server = serve(env, &conf);
        let number = |i: usize| cards[i].card_number.clone();
        let sign = |i: usize| pems[i].0.clone().unwrap();

        // Wrong answers: refused, audited, nothing changes.
        let (status, v) = server.post(
            &callcenter,
            &format!("/api/v1/cards/{}/loss-report", number(1)),
            serde_json::json!({"kind": "lost", "answers": {"name_kana": "ヤマダ タロウ", "birth_date": "S50.4.1"}}),
        );
        assert_eq!(status, 403, "{v}");
        assert_eq!(status_of(env, &number(1)), "active");
        let audit = kofu::audit::list(&mut env.conn(), None, 5000).unwrap();
        let refused = audit
            .iter()
            .find(|e| e.action == "card.report_loss_refused")
            .expect("refusal audited");
        assert_eq!(
            refused.detail,
            "questions=name_kana=mismatch,birth_date=match"
        );

        // Good answers (kana typed half-width, era date): both certificates on hold at once.
        let good = server.ocsp(
            env,
            &signing,
            &root,
            "signing",
            &["-cert", sign(1).to_str().unwrap()],
        );
        assert!(good.contains(": good"), "{good}");
        let (status, v) = server.post(
            &callcenter,
            &format!("/api/v1/cards/{}/loss-report", number(1)),
            serde_json::json!({"kind": "stolen", "answers": {"name_kana": "ｼｹﾝ ﾀﾛｳ", "birth_date": "昭和50年4月1日", "postal_code": "〒100-0001"}}),
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "suspended");
        assert_eq!(v["certificates"].as_array().unwrap().len(), 2, "{v}");
        // The cached "good" answer was signed again at once.
        let held = server.ocsp(
            env,
            &signing,
            &root,
            "signing",
            &["-cert", sign(1).to_str().unwrap()],
        );
        assert!(held.contains(": revoked"), "{held}");
        assert!(held.contains("Reason: certificateHold"), "{held}");
        assert!(held.contains("Response verify OK"), "{held}");
        assert!(!held.contains("WARNING: no nonce"), "nonce echoed: {held}");
        let audit = kofu::audit::list(&mut env.conn(), None, 5000).unwrap();
        let report = audit
            .iter()
            .find(|e| e.action == "card.report_loss")
            .unwrap();
        assert!(
            report.detail.contains(
                "kind=stolen questions=name_kana=match,birth_date=match,postal_code=match"
            ),
            "{}",
            report.detail
        );
        assert!(!report.detail.contains("シケン") && !report.detail.contains("1975"));

        // good, unknown, unauthorized (a foreign issuer), malformed; GET and POST alike.
        let other = server.ocsp(
            env,
            &signing,
            &root,
            "signing",
            &["-cert", sign(2).to_str().unwrap(), "-no_nonce"],
        );
        assert!(other.contains(": good"), "{other}");
        let unknown = server.ocsp(
            env,
            &signing,
            &root,
            "signing",
            &["-serial", "0x0123456789"],
        );
        assert!(unknown.contains(": unknown"), "{unknown}");
        let foreign = server.ocsp(env, &root, &root, "signing", &["-serial", "0x01"]);
        assert!(foreign.contains("unauthorized"), "{foreign}");
        let mut resp = server
            .agent
            .post(&format!("{}/ocsp/signing", server.base))
            .header("content-type", "application/ocsp-request")
            .send(&b"not DER"[..])
            .unwrap();
        assert_eq!(
            resp.body_mut().read_to_vec().unwrap(),
            [0x30, 0x03, 0x0a, 0x01, 0x01]
        );
        let req = env.path("req.der");
        run(Command::new("openssl")
            .args(["ocsp", "-no_nonce", "-issuer"])
            .arg(&signing)
            .arg("-cert")
            .arg(sign(1))
            .arg("-reqout")
            .arg(&req));
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).unwrap());
        let (status, got, ct, _) = server.get_bytes(
            &format!(
                "/ocsp/signing/{}",
                b64.replace('/', "%2F")
                    .replace('+', "%2B")
                    .replace('=', "%3D")
            ),
            None,
        );
        assert_eq!(
            (status, ct.as_deref()),
            (200, Some("application/ocsp-response"))
        );
        let resp_path = write(&env.path("get.der"), &got).to_path_buf();
        let text = run(Command::new("openssl")
            .args(["ocsp", "-respin"])
            .arg(&resp_path)
            .arg("-issuer")
            .arg(&signing)
            .arg("-CAfile")
            .arg(&root)
            .arg("-verify_other")
            .arg(&signing)
            .arg("-cert")
            .arg(sign(1))
            .arg("-no_nonce"));
        let text = String::from_utf8_lossy(&text.stdout).into_owned()
            + &String::from_utf8_lossy(&text.stderr);
        assert!(text.contains(": revoked"), "{text}");

        // CRLs: the held card fails -crl_check, a good one passes; pkilint is clean.
        publish(&server, &admin, false);
        let full = fetch_crl(env, &server, "signing.crl");
        fetch_crl(env, &server, "signing-delta.crl");
        let (ok, out) = verify_with_crl(&root, &signing, &full, &sign(1));
        assert!(!ok && out.contains("certificate revoked"), "{out}");
        let (ok, out) = verify_with_crl(&root, &signing, &full, &sign(0));
        assert!(ok, "{out}");

        // Forbidden transitions are refused with a clear error and change nothing.
        let before = kofu::audit::list(&mut env.conn(), None, 5000)
            .unwrap()
            .len();
        for (i, action, why) in [
            (0, "lift_hold", "applies only to a card that is suspended"),
            (0, "revoke", "applies only to a card that is suspended"),
            (
                2,
                "destroy",
                "applies only to a card that is written or shipped or returned",
            ),
        ] {
            let (status, v) = server.post(
                &officer,
                &format!("/api/v1/cards/{}/status", number(i)),
                serde_json::json!({"action": action}),
            );
            assert_eq!(status, 409, "{action}: {v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(why)
                    || v.to_string().contains(why),
                "{action}: {v}"
            );
        }
        let (status, _) = server.post(
            &officer,
            &format!("/api/v1/cards/{}/status", number(0)),
            serde_json::json!({"action": "death"}),
        );
        assert_eq!(status, 422, "not an office action");
        assert_eq!(
            kofu::audit::list(&mut env.conn(), None, 5000)
                .unwrap()
                .len(),
            before
        );
        assert_eq!(status_of(env, &number(0)), "active");

        // The card is found: the hold is lifted; the next delta says removeFromCRL, the next
        // full CRL drops the entry, and the certificate verifies again.
        let (status, v) = server.post(
            &officer,
            &format!("/api/v1/cards/{}/status", number(1)),
            serde_json::json!({"action": "lift_hold"}),
        );
        assert_eq!(status, 200, "{v}");
        let lifted = server.ocsp(
            env,
            &signing,
            &root,
            "signing",
            &["-cert", sign(1).to_str().unwrap()],
        );
        assert!(lifted.contains(": good"), "{lifted}");
        publish(&server, &admin, true);
        let delta = crl_text(&fetch_crl(env, &server, "signing-delta.crl"));
        let serial1 = serial_of(&sign(1));
        assert!(
            delta.contains(&serial1) && delta.contains("Remove From CRL"),
            "{delta}"
        );
        assert!(delta.contains("Delta CRL Indicator"), "{delta}");
        publish(&server, &admin, false);
        let full = fetch_crl(env, &server, "signing.crl");
        assert!(!crl_text(&full).contains(&serial1));
        let (ok, out) = verify_with_crl(&root, &signing, &full, &sign(1));
        assert!(ok, "{out}");

        // Lost for good: hold, then revoke (keyCompromise) and a reissue application opens.
        let (status, _) = server.post(
            &callcenter,
            &format!("/api/v1/cards/{}/loss-report", number(0)),
            serde_json::json!({"kind": "lost", "answers": {"name_kana": "シケン タロウ", "birth_date": "1975-04-01"}}),
        );
        assert_eq!(status, 200);
        let (status, v) = server.post(
            &officer,
            &format!("/api/v1/cards/{}/status", number(0)),
            serde_json::json!({"action": "revoke"}),
        );
        assert_eq!(status, 200, "{v}");
        let follow: (String, String, Option<i64>) = applications::table
            .find(v["follow_up"]["id"].as_i64().unwrap())
            .select((
                applications::kind,
                applications::state,
                applications::previous_application_id,
            ))
            .first(&mut *env.conn())
            .unwrap();
        assert_eq!(
            follow,
            (
                "reissue".into(),
                "documents_incomplete".into(),
                Some(cards[0].application_id)
            )
        );
        let revoked = server.ocsp(
            env,
            &signing,
            &root,
            "signing",
            &["-cert", sign(0).to_str().unwrap()],
        );
        assert!(revoked.contains("Reason: keyCompromise"), "{revoked}");
        let auth0 = server.ocsp(
            env,
            &authentication,
            &root,
            "authentication",
            &["-cert", pems[0].1.to_str().unwrap()],
        );
        assert!(auth0.contains("Reason: keyCompromise"), "{auth0}");

        // Returned undeliverable: destroyed, its certificate revoked (unspecified).
        let (status, v) = server.post(
            &officer,
            &format!("/api/v1/cards/{}/delivery", number(4)),
            serde_json::json!({"event": "returned"}),
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(status_of(env, &number(4)), "destroyed");
        let returned = server.ocsp(
            env,
            &authentication,
            &root,
            "authentication",
            &["-cert", pems[4].1.to_str().unwrap()],
        );
        assert!(returned.contains(": revoked"), "{returned}");

        // The change feed: card 2's holder moves (address), card 3's holder dies.
        let extract = "resident_code,municipality_code,name,name_kana,birth_date,sex,address,postal_code,status\n\
            131016-900001,131016,試験 太郎2,シケン タロウ,1975-04-01,1,東京都千代田区千代田1-1-3,1000001,resident\n\
            131016-900002,131016,試験 太郎3,シケン タロウ,1975-04-01,2,東京都千代田区千代田1-1-4,1000001,resident\n";
        kofu::registry::extract::import_extract(
            &mut env.conn(),
            &data_key(),
            extract.as_bytes(),
            &Actor::new("t", "cli"),
            now(),
        )
        .unwrap();
        let residents: Vec<i64> = kofu::db::schema::residents::table
            .order(kofu::db::schema::residents::id.asc())
            .select(kofu::db::schema::residents::id)
            .load(&mut *env.conn())
            .unwrap();
        for (card, resident) in [(&cards[2], residents[0]), (&cards[3], residents[1])] {
            diesel::update(applications::table.find(card.application_id))
                .set(applications::resident_id.eq(resident))
                .execute(&mut *env.conn())
                .unwrap();
        }
        let feed = "event_id,municipality_code,resident_code,kind,effective_date,name,name_kana,birth_date,sex,address,postal_code\n\
            E-1,131016,131016-900001,move_within,2026-11-01,,,,,東京都千代田区丸の内1-1-1,1000005\n\
            E-2,131016,131016-900002,death,2026-11-02,,,,,,\n";
        let feed_path = write(&env.path("feed.csv"), feed).to_path_buf();
        for _ in 0..2 {
            let out = run(env
                .command()
                .env("KOFU_CA_CONFIG", &conf)
                .args(["registry", "changes"])
                .arg(&feed_path));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let moved_sign = server.ocsp(
            env,
            &signing,
            &root,
            "signing",
            &["-cert", sign(2).to_str().unwrap()],
        );
        assert!(
            moved_sign.contains("Reason: affiliationChanged"),
            "{moved_sign}"
        );
        let moved_auth = server.ocsp(
            env,
            &authentication,
            &root,
            "authentication",
            &["-cert", pems[2].1.to_str().unwrap()],
        );
        assert!(moved_auth.contains(": good"), "{moved_auth}");
        for (pem, ca, issuer) in [
            (sign(3), "signing", &signing),
            (pems[3].1.clone(), "authentication", &authentication),
        ] {
            let dead = server.ocsp(env, issuer, &root, ca, &["-cert", pem.to_str().unwrap()]);
            assert!(dead.contains("Reason: cessationOfOperation"), "{dead}");
        }
        assert_eq!(status_of(env, &number(2)), "active");
        assert_eq!(status_of(env, &number(3)), "revoked");
        // Run twice, acted on once: one renewal for the move, none for the death.
        let renewals: Vec<Option<i64>> = applications::table
            .filter(applications::kind.eq("renewal"))
            .select(applications::card_id)
            .load(&mut *env.conn())
            .unwrap();
        assert_eq!(renewals, vec![Some(cards[2].id)]);
        publish(&server, &admin, false);
        let auth_crl = crl_text(&fetch_crl(env, &server, "authentication.crl"));
        assert!(
            !auth_crl.contains(&serial_of(&pems[2].1)),
            "the move stays out of the authentication CRL"
        );
        assert!(auth_crl.contains(&serial_of(&pems[3].1)));
        let sign_crl = crl_text(&fetch_crl(env, &server, "signing.crl"));
        assert!(
            sign_crl.contains(&serial_of(&sign(2))) && sign_crl.contains("Affiliation Changed"),
            "{sign_crl}"
        );

        // Renewal at the counter after the move: the renewal carries the registry's new
        // address; once the office has the forms and the clerk has checked it, the operator
        // writes a new signing key and certificate to the same card with the holder's PIN.
        let operator = ready_user(env, "operator-r", Role::Operator, None);
        let renewal: i64 = applications::table
            .filter(applications::kind.eq("renewal"))
            .select(applications::id)
            .first(&mut *env.conn())
            .unwrap();
        let renewed_applicant = kofu::service::intake::applicant(
            &data_key(),
            &kofu::db::models::application::ApplicationRow::get(&mut env.conn(), renewal)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(renewed_applicant.person.address, "東京都千代田区丸の内1-1-1");
        let (status, v) = server.post(
            &operator,
            &format!("/api/v1/cards/{}/renewal", number(2)),
            serde_json::json!({ "pin": pins[2] }),
        );
        assert_eq!(status, 409, "not yet checked by the clerk: {v}");
        kofu::service::intake::update_forms(
            &mut env.conn(),
            renewal,
            kofu::service::intake::Forms {
                application: true,
                power_of_attorney: true,
                consent: true,
            },
            &Actor::new("t", "office"),
            now(),
        )
        .unwrap();
        // The clerk's check is the intake tests' business.
        mark_verified(env, &[renewal]);
        let (status, v) = server.post(
            &operator,
            &format!("/api/v1/cards/{}/renewal", number(2)),
            serde_json::json!({ "pin": "0000" }),
        );
        assert_eq!(status, 403, "wrong PIN: {v}");
        let (status, v) = server.post(
            &operator,
            &format!("/api/v1/cards/{}/renewal", number(2)),
            serde_json::json!({ "pin": pins[2] }),
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["old_reason"], "affiliationChanged", "{v}");
        let new_serial = v["new_serial"].as_str().unwrap().to_string();
        let (new_id, new_der): (i64, Vec<u8>) = certificates::table
            .filter(certificates::serial.eq(&new_serial))
            .select((certificates::id, certificates::cert_der.assume_not_null()))
            .first(&mut *env.conn())
            .unwrap();
        let linked: i64 = kofu::db::schema::certificate_links::table
            .filter(kofu::db::schema::certificate_links::new_certificate_id.eq(new_id))
            .count()
            .get_result(&mut *env.conn())
            .unwrap();
        assert_eq!(linked, 1);
        // The card holds the new certificate (read back as a card tool would).
        let tokens = blank_cards(env.dir.path());
        let read = run(Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", &tokens)
            .args(["--module", softhsm_module().to_str().unwrap()])
            .args([
                "--token-label",
                &number(2),
                "--read-object",
                "--type",
                "cert",
                "--id",
            ])
            .arg(hex::encode("signing")));
        assert_eq!(
            read.stdout,
            new_der,
            "{}",
            String::from_utf8_lossy(&read.stderr)
        );
        let new_pem = write(
            &env.path("renewed.pem"),
            kofu::ca::der_to_pem(&new_der).unwrap(),
        )
        .to_path_buf();
        let fresh = server.ocsp(
            env,
            &signing,
            &root,
            "signing",
            &["-cert", new_pem.to_str().unwrap()],
        );
        assert!(fresh.contains(": good"), "{fresh}");

        // The holder's own renewal of a good certificate (card 1, at the counter, CLI):
        // the old one is superseded.
        let printed = crate::verifiers::renew(env, &conf, &cards[1], &pins[1], "KF-RENEW-00001");
        assert!(printed.contains("superseded"), "{printed}");
        let superseded = (0..50)
            .map(|_| {
                // The server follows the database's status changes once a second.
                let r = server.ocsp(
                    env,
                    &signing,
                    &root,
                    "signing",
                    &["-cert", sign(1).to_str().unwrap()],
                );
                if !r.contains("Reason: superseded") {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                r
            })
            .find(|r| r.contains("Reason: superseded"));
        assert!(superseded.is_some(), "old signing certificate superseded");

        // The table itself: the call centre cannot revoke, the office cannot report a loss.
        let card = revocation::card_by_number(&mut env.conn(), &card_number(&number(2))).unwrap();
        let e = revocation::apply(
            &mut env.conn(),
            &card,
            Action::Revoke,
            By::Callcenter,
            None,
            &Actor::new("t", "callcenter"),
            "",
            now(),
        )
        .unwrap_err();
        assert!(matches!(e, kofu::error::Error::Forbidden(_)), "{e}");
    });
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
