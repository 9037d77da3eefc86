//! The loss-report scenario: a card reported lost on the phone, held, found, lost for good,
//! returned; the change feed moving and burying holders; renewals; each step a function over
//! one [`LossScene`].

use super::*;

#[test]
fn loss_hold_lift_revoke_and_the_change_feed_as_verifiers_see_them() {
    each_backend(|env| {
        let s = loss_scene(env);
        wrong_answers_on_the_phone_are_refused(&s);
        a_loss_report_holds_both_certificates(&s);
        ocsp_answers_each_kind_of_request(&s);
        crls_show_the_hold(&s);
        forbidden_transitions_change_nothing(&s);
        a_found_card_is_released(&s);
        a_card_lost_for_good_is_revoked_and_reissued(&s);
        a_returned_card_is_destroyed(&s);
        the_change_feed_opens_one_renewal_for_a_move(&s);
        the_renewal_after_the_move_is_written_to_the_card(&s);
        the_holders_own_renewal_supersedes_the_old_one(&s);
        the_rule_table_binds_each_role(&s);
    });
}

/// What the steps of the loss-report scenario share: a public CA, four written cards, a call-centre
/// user, an officer, an admin and one running server. The steps run in order; each starts
/// where the one before left the cards.
struct LossScene<'a> {
    env: &'a Env,
    conf: PathBuf,
    cards: Vec<CardRow>,
    pins: Vec<String>,
    root: PathBuf,
    signing: PathBuf,
    authentication: PathBuf,
    pems: Vec<(Option<PathBuf>, PathBuf)>,
    callcenter: String,
    officer: String,
    admin: String,
    server: Server,
}

fn loss_scene(env: &Env) -> LossScene<'_> {
    let conf = public_ca_config(env, 0);
    let h = init(env, &conf);
    let (cards, pins) = written_cards(env, &conf);
    let root = ca_pem(env, &h, CaName::Root);
    let signing = ca_pem(env, &h, CaName::Signing);
    let authentication = ca_pem(env, &h, CaName::Authentication);
    let pems: Vec<(Option<PathBuf>, PathBuf)> = cards.iter().map(|c| card_pems(env, c)).collect();
    let callcenter = ready_user(env, "cc", Role::Callcenter, None);
    let officer = ready_user(env, "officer", Role::Office, None);
    let admin = ready_user(env, "admin2", Role::Admin, None);
    let server = serve(env, &conf);
    LossScene {
        env,
        conf,
        cards,
        pins,
        root,
        signing,
        authentication,
        pems,
        callcenter,
        officer,
        admin,
        server,
    }
}

/// Wrong answers to the call centre's questions: refused, audited, nothing changes.
fn wrong_answers_on_the_phone_are_refused(s: &LossScene) {
    let LossScene {
        env,
        cards,
        callcenter,
        server,
        ..
    } = s;
    let number = |i: usize| cards[i].card_number.clone();
    let (status, v) = server.post(
        callcenter,
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
}

/// Good answers (kana typed half-width, era date): both certificates on hold at once, and the
/// OCSP answer cached as good is signed again.
fn a_loss_report_holds_both_certificates(s: &LossScene) {
    let LossScene {
        env,
        cards,
        root,
        signing,
        pems,
        callcenter,
        server,
        ..
    } = s;
    let number = |i: usize| cards[i].card_number.clone();
    let sign = |i: usize| pems[i].0.clone().unwrap();
    let good = server.ocsp(
        env,
        signing,
        root,
        "signing",
        &["-cert", sign(1).to_str().unwrap()],
    );
    assert!(good.contains(": good"), "{good}");
    let (status, v) = server.post(
        callcenter,
        &format!("/api/v1/cards/{}/loss-report", number(1)),
        serde_json::json!({"kind": "stolen", "answers": {"name_kana": "ｼｹﾝ ﾀﾛｳ", "birth_date": "昭和50年4月1日", "postal_code": "〒100-0001"}}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "suspended");
    assert_eq!(v["certificates"].as_array().unwrap().len(), 2, "{v}");
    // The cached "good" answer was signed again at once.
    let held = server.ocsp(
        env,
        signing,
        root,
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
        report
            .detail
            .contains("kind=stolen questions=name_kana=match,birth_date=match,postal_code=match"),
        "{}",
        report.detail
    );
    assert!(!report.detail.contains("シケン") && !report.detail.contains("1975"));
}

/// OCSP: good, unknown, unauthorized (a foreign issuer), malformed; GET and POST alike.
fn ocsp_answers_each_kind_of_request(s: &LossScene) {
    let LossScene {
        env,
        root,
        signing,
        authentication,
        pems,
        server,
        ..
    } = s;
    let sign = |i: usize| pems[i].0.clone().unwrap();
    let other = server.ocsp(
        env,
        signing,
        root,
        "signing",
        &["-cert", sign(2).to_str().unwrap(), "-no_nonce"],
    );
    assert!(other.contains(": good"), "{other}");
    let unknown = server.ocsp(env, signing, root, "signing", &["-serial", "0x0123456789"]);
    assert!(unknown.contains(": unknown"), "{unknown}");
    let foreign = server.ocsp(env, root, root, "signing", &["-serial", "0x01"]);
    assert!(foreign.contains("unauthorized"), "{foreign}");
    // A responder answers only for its own CA: an authentication certificate asked of the
    // signing responder is not answered (nor is the answer the other responder signed).
    let auth = pems[2].1.to_str().unwrap();
    let right = server.ocsp(
        env,
        authentication,
        root,
        "authentication",
        &["-cert", auth, "-no_nonce"],
    );
    assert!(right.contains(": good"), "{right}");
    for nonce in [&[][..], &["-no_nonce"][..]] {
        let args = [&["-cert", auth][..], nonce].concat();
        let wrong = server.ocsp(env, authentication, root, "signing", &args);
        assert!(wrong.contains("unauthorized"), "{wrong}");
        assert!(!wrong.contains(": good"), "{wrong}");
    }
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
        .arg(signing)
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
        .arg(signing)
        .arg("-CAfile")
        .arg(root)
        .arg("-verify_other")
        .arg(signing)
        .arg("-cert")
        .arg(sign(1))
        .arg("-no_nonce"));
    let text =
        String::from_utf8_lossy(&text.stdout).into_owned() + &String::from_utf8_lossy(&text.stderr);
    assert!(text.contains(": revoked"), "{text}");
}

/// CRLs: the held card fails -crl_check, a good one passes; pkilint is clean.
fn crls_show_the_hold(s: &LossScene) {
    let LossScene {
        env,
        root,
        signing,
        pems,
        admin,
        server,
        ..
    } = s;
    let sign = |i: usize| pems[i].0.clone().unwrap();
    publish(server, admin, false);
    let full = fetch_crl(env, server, "signing.crl");
    fetch_crl(env, server, "signing-delta.crl");
    let (ok, out) = verify_with_crl(root, signing, &full, &sign(1));
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = verify_with_crl(root, signing, &full, &sign(0));
    assert!(ok, "{out}");
}

/// Forbidden transitions are refused with a clear error and change nothing.
fn forbidden_transitions_change_nothing(s: &LossScene) {
    let LossScene {
        env,
        cards,
        officer,
        server,
        ..
    } = s;
    let number = |i: usize| cards[i].card_number.clone();
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
            officer,
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
        officer,
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
}

/// The card is found: the hold is lifted; the next delta says removeFromCRL, the next full CRL
/// drops the entry, and the certificate verifies again.
fn a_found_card_is_released(s: &LossScene) {
    let LossScene {
        env,
        cards,
        root,
        signing,
        pems,
        officer,
        admin,
        server,
        ..
    } = s;
    let number = |i: usize| cards[i].card_number.clone();
    let sign = |i: usize| pems[i].0.clone().unwrap();
    let (status, v) = server.post(
        officer,
        &format!("/api/v1/cards/{}/status", number(1)),
        serde_json::json!({"action": "lift_hold"}),
    );
    assert_eq!(status, 200, "{v}");
    let lifted = server.ocsp(
        env,
        signing,
        root,
        "signing",
        &["-cert", sign(1).to_str().unwrap()],
    );
    assert!(lifted.contains(": good"), "{lifted}");
    publish(server, admin, true);
    let delta = crl_text(&fetch_crl(env, server, "signing-delta.crl"));
    let serial1 = serial_of(&sign(1));
    assert!(
        delta.contains(&serial1) && delta.contains("Remove From CRL"),
        "{delta}"
    );
    assert!(delta.contains("Delta CRL Indicator"), "{delta}");
    publish(server, admin, false);
    let full = fetch_crl(env, server, "signing.crl");
    assert!(!crl_text(&full).contains(&serial1));
    let (ok, out) = verify_with_crl(root, signing, &full, &sign(1));
    assert!(ok, "{out}");
}

/// Lost for good: hold, then revoke (keyCompromise) and a reissue application opens.
fn a_card_lost_for_good_is_revoked_and_reissued(s: &LossScene) {
    let LossScene {
        env,
        cards,
        root,
        signing,
        authentication,
        pems,
        callcenter,
        officer,
        server,
        ..
    } = s;
    let number = |i: usize| cards[i].card_number.clone();
    let sign = |i: usize| pems[i].0.clone().unwrap();
    let (status, _) = server.post(
        callcenter,
        &format!("/api/v1/cards/{}/loss-report", number(0)),
        serde_json::json!({"kind": "lost", "answers": {"name_kana": "シケン タロウ", "birth_date": "1975-04-01"}}),
    );
    assert_eq!(status, 200);
    let (status, v) = server.post(
        officer,
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
        signing,
        root,
        "signing",
        &["-cert", sign(0).to_str().unwrap()],
    );
    assert!(revoked.contains("Reason: keyCompromise"), "{revoked}");
    let auth0 = server.ocsp(
        env,
        authentication,
        root,
        "authentication",
        &["-cert", pems[0].1.to_str().unwrap()],
    );
    assert!(auth0.contains("Reason: keyCompromise"), "{auth0}");
}

/// Returned undeliverable: destroyed, its certificate revoked (unspecified).
fn a_returned_card_is_destroyed(s: &LossScene) {
    let LossScene {
        env,
        cards,
        root,
        authentication,
        pems,
        officer,
        server,
        ..
    } = s;
    let number = |i: usize| cards[i].card_number.clone();
    let (status, v) = server.post(
        officer,
        &format!("/api/v1/cards/{}/delivery", number(4)),
        serde_json::json!({"event": "returned"}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(status_of(env, &number(4)), "destroyed");
    let returned = server.ocsp(
        env,
        authentication,
        root,
        "authentication",
        &["-cert", pems[4].1.to_str().unwrap()],
    );
    assert!(returned.contains(": revoked"), "{returned}");
}

/// The change feed: card 2's holder moves (address), card 3's holder dies; run twice, acted on
/// once: one renewal for the move, none for the death.
fn the_change_feed_opens_one_renewal_for_a_move(s: &LossScene) {
    let LossScene {
        env,
        conf,
        cards,
        root,
        signing,
        authentication,
        pems,
        admin,
        server,
        ..
    } = s;
    let number = |i: usize| cards[i].card_number.clone();
    let sign = |i: usize| pems[i].0.clone().unwrap();
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
            .env("KOFU_CA_CONFIG", conf)
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
        signing,
        root,
        "signing",
        &["-cert", sign(2).to_str().unwrap()],
    );
    assert!(
        moved_sign.contains("Reason: affiliationChanged"),
        "{moved_sign}"
    );
    let moved_auth = server.ocsp(
        env,
        authentication,
        root,
        "authentication",
        &["-cert", pems[2].1.to_str().unwrap()],
    );
    assert!(moved_auth.contains(": good"), "{moved_auth}");
    for (pem, ca, issuer) in [
        (sign(3), "signing", &signing),
        (pems[3].1.clone(), "authentication", &authentication),
    ] {
        let dead = server.ocsp(env, issuer, root, ca, &["-cert", pem.to_str().unwrap()]);
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
    publish(server, admin, false);
    let auth_crl = crl_text(&fetch_crl(env, server, "authentication.crl"));
    assert!(
        !auth_crl.contains(&serial_of(&pems[2].1)),
        "the move stays out of the authentication CRL"
    );
    assert!(auth_crl.contains(&serial_of(&pems[3].1)));
    let sign_crl = crl_text(&fetch_crl(env, server, "signing.crl"));
    assert!(
        sign_crl.contains(&serial_of(&sign(2))) && sign_crl.contains("Affiliation Changed"),
        "{sign_crl}"
    );
}

/// Renewal at the counter after the move: the new signing key and certificate carry the
/// registry's new address and are written to the same card.
fn the_renewal_after_the_move_is_written_to_the_card(s: &LossScene) {
    let LossScene {
        env,
        cards,
        pins,
        root,
        signing,
        server,
        ..
    } = s;
    let number = |i: usize| cards[i].card_number.clone();
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
    assert_eq!(
        renewed_applicant.person.address,
        "東京都千代田区丸の内1-1-1"
    );
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
    let new_der = opened(&new_der);
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
        signing,
        root,
        "signing",
        &["-cert", new_pem.to_str().unwrap()],
    );
    assert!(fresh.contains(": good"), "{fresh}");
}

/// The holder's own renewal of a good certificate (card 1, at the counter, CLI): the old one is
/// superseded.
fn the_holders_own_renewal_supersedes_the_old_one(s: &LossScene) {
    let LossScene {
        env,
        conf,
        cards,
        pins,
        root,
        signing,
        pems,
        server,
        ..
    } = s;
    let sign = |i: usize| pems[i].0.clone().unwrap();
    let printed = crate::verifiers::renew(env, conf, &cards[1], &pins[1], "KF-RENEW-00001");
    assert!(printed.contains("superseded"), "{printed}");
    let superseded = (0..50)
        .map(|_| {
            // The server follows the database's status changes once a second.
            let r = server.ocsp(
                env,
                signing,
                root,
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
}

/// The table itself: the call centre cannot revoke, the office cannot report a loss.
fn the_rule_table_binds_each_role(s: &LossScene) {
    let LossScene { env, cards, .. } = s;
    let number = |i: usize| cards[i].card_number.clone();
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
}
