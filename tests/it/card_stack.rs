//! Tokens in the card stack that are not what kofu expects (issue 12), each built directly
//! with softhsm2-util as a killed run or a stray card would leave it: the run sets it aside
//! (recorded with its chip serial and reason, audited, shown to the operator), never gives
//! its number to a written card, and completes the batch in the same run.

use crate::common::*;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::card::readers::Token;
use kofu::db::models::application::ApplicationRow;
use kofu::db::models::card::CardRow;
use kofu::service::batches;
use kofu::service::card_stack;
use kofu::service::users::Role;
use std::process::Command;

/// `softhsm2-util --init-token` on the next blank card: a token labelled `label` with
/// security-officer PIN `so_pin`. Returns its chip serial.
fn init_token(conf: &std::path::Path, label: &str, so_pin: &str) -> String {
    let before = initialised_tokens(conf);
    let out = run(Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            so_pin,
            "--pin",
            "1234",
        ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    initialised_tokens(conf)
        .into_iter()
        .find(|t| !before.contains(t) && t.0 == label)
        .map(|t| t.1)
        .expect("the new token")
}

fn applications_of(env: &Env, batch: i64) -> Vec<ApplicationRow> {
    use kofu::db::schema::applications as a;
    a::table
        .filter(a::batch_id.eq(batch))
        .order(a::id)
        .select(ApplicationRow::as_select())
        .load(&mut *env.conn())
        .unwrap()
}

fn written_card_of(env: &Env, app: i64) -> CardRow {
    CardRow::for_application(&mut env.conn(), app)
        .unwrap()
        .filter(|c| c.state == "written")
        .expect("a written card")
}

#[actix_web::test]
async fn unexpected_tokens_are_set_aside_and_the_batch_completes() {
    for env in envs() {
        eprintln!("--- backend: {}", env.db.label);
        env.init_ca();
        let conf = blank_cards(env.dir.path());
        let batch = ordered_batch(&env, 3);
        let apps = applications_of(&env, batch);
        let actor = Actor::new("test", "cli");
        let key = data_key();

        // Numbers allocated for two applications, as a run killed before it touched a card
        // leaves them; then the stack as killed runs and strays leave it.
        let a =
            batches::allocate(&env.pool, &key, &actor, &apps[0], signing_min_age(), now()).unwrap();
        let b =
            batches::allocate(&env.pool, &key, &actor, &apps[1], signing_min_age(), now()).unwrap();
        // A token carrying a's number whose security-officer PIN is not a's.
        let foreign_so = init_token(&conf, &a.card_number, "99999999");
        // A token carrying b's number with b's own SO PIN (a run killed after C_InitToken):
        // taken back and personalised again, not set aside.
        init_token(
            &conf,
            &b.card_number,
            &batches::so_pin(&key, &b.card_number),
        );
        // A card initialised elsewhere, and one with a number kofu never gave out.
        let unknown = init_token(&conf, "TEST CARD 01", "12345678");
        let stray_number = kofu::card::number::generate().unwrap();
        let stray = init_token(&conf, &stray_number, "12345678");

        let out = run(&mut batch_command(&env, &conf, batch));
        assert!(
            out.status.success(),
            "the batch completes in one run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("3 of 3 cards written"));

        // a's number is burnt (its card spoiled) and a's application has a new card; b kept
        // its number; nobody got the stray's number.
        let a_card = written_card_of(&env, apps[0].id);
        assert_ne!(a_card.card_number, a.card_number);
        let a_row = CardRow::by_number(&mut env.conn(), &a.card_number)
            .unwrap()
            .unwrap();
        assert_eq!(a_row.state, "spoiled");
        assert_eq!(written_card_of(&env, apps[1].id).card_number, b.card_number);
        assert!(
            cards_of(&env, batch)
                .iter()
                .all(|c| c.card_number != stray_number)
        );
        let mut aside = set_aside(&env, batch);
        aside.sort();
        let mut expected = vec![
            (
                foreign_so.clone(),
                a.card_number.clone(),
                "so_pin_mismatch".to_string(),
            ),
            (
                unknown.clone(),
                "TEST CARD 01".to_string(),
                "unknown_label".to_string(),
            ),
            (
                stray.clone(),
                stray_number.clone(),
                "unknown_label".to_string(),
            ),
        ];
        expected.sort();
        assert_eq!(aside, expected);
        let rows = card_stack::for_batch(&mut env.conn(), batch).unwrap();
        let burnt = rows.iter().find(|r| r.chip_serial == foreign_so).unwrap();
        assert_eq!(burnt.card_id, Some(a_row.id), "linked to the card it burnt");
        assert!(burnt.detail.contains("PinIncorrect"), "{}", burnt.detail);
        assert_batch_invariants(&env, &conf, batch, 3);

        // The operator sees them: `kofu batch show` and the batch page.
        let show = run(env.command().args(["batch", "show", &batch.to_string()]));
        let text = String::from_utf8_lossy(&show.stdout);
        for chip in [&foreign_so, &unknown, &stray] {
            assert!(text.contains(chip.as_str()), "{text}");
        }
        assert!(text.contains("so_pin_mismatch") && text.contains("unknown_label"));
        let token = ready_user(&env, "operator1", Role::Operator, None);
        let app = actix_web::test::init_service(kofu::http::app(state(&env))).await;
        let req = actix_web::test::TestRequest::get()
            .uri(&format!("/batches/{batch}"))
            .insert_header(("authorization", format!("Bearer {token}")))
            .to_request();
        let resp = actix_web::test::call_service(&app, req).await;
        assert_eq!(resp.status(), 200);
        let page = String::from_utf8(actix_web::test::read_body(resp).await.to_vec()).unwrap();
        assert!(page.contains("抜き取るカード"), "{page}");
        for chip in [&foreign_so, &unknown, &stray] {
            assert!(page.contains(chip.as_str()));
        }
        assert!(page.contains("セキュリティ責任者PINが一致しない"));

        // A later run records nothing twice, and sets aside a second chip that carries the
        // number of a card already written on another.
        let audited = |env: &Env| {
            kofu::audit::list(&mut env.conn(), None, 100_000)
                .unwrap()
                .iter()
                .filter(|e| e.action == "card.set_aside")
                .count()
        };
        let before = audited(&env);
        let dup = init_token(&conf, &b.card_number, "12345678");
        let out = run(&mut batch_command(&env, &conf, batch));
        assert!(out.status.success());
        let aside = set_aside(&env, batch);
        assert_eq!(aside.len(), 4, "{aside:?}");
        assert!(aside.contains(&(dup, b.card_number.clone(), "other_card".to_string())));
        assert_eq!(audited(&env), before + 1);
    }
}

/// The survey's other findings, classified against the database directly: an unreadable
/// token is set aside, a blank card and a card being personalised are not.
#[test]
fn unreadable_tokens_are_set_aside_and_blank_ones_are_not() {
    each_backend(|env| {
        env.init_ca();
        let batch = ordered_batch(env, 1);
        let apps = applications_of(env, batch);
        let card = batches::allocate(
            &env.pool,
            &data_key(),
            &Actor::new("test", "cli"),
            &apps[0],
            signing_min_age(),
            now(),
        )
        .unwrap();
        let tokens = [
            Token::Blank { slot: 1 },
            Token::Unreadable {
                slot: 2,
                error: "CKR_DEVICE_ERROR".into(),
            },
            Token::Labelled {
                slot: 3,
                label: card.card_number.clone(),
                serial: "0011223344556677".into(),
            },
            Token::Labelled {
                slot: 4,
                label: String::new(),
                serial: "8899aabbccddeeff".into(),
            },
        ];
        let found = card_stack::classify(&mut env.conn(), &tokens).unwrap();
        let reasons: Vec<(u64, &str)> = found
            .iter()
            .map(|(t, _)| (t.slot, t.reason.as_str()))
            .collect();
        assert_eq!(reasons, [(2, "unreadable"), (4, "unknown_label")]);
    });
}
