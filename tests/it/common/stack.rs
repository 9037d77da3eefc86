//! Card-stack fixtures: SoftHSM2 standing in for card readers, batches of verified
//! applications ordered by a second office member, and `kofu batch run` against them.

use super::*;
use diesel::prelude::*;
use kofu::db::models::card::CardRow;
use kofu::service::auth::StaffUser;
use kofu::service::intake::{self, ApplicationInput, Forms};
use kofu::service::users::Role;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The SoftHSM2 PKCS#11 module.
pub fn softhsm_module() -> PathBuf {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("SoftHSM2 is installed (scripts/setup installs softhsm2)")
}

/// A SoftHSM2 configuration in `dir` whose tokens live in `dir/<name>` (empty at first).
pub fn softhsm_conf(dir: &std::path::Path, name: &str) -> PathBuf {
    let tokens = dir.join(name);
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    conf
}

/// A SoftHSM2 configuration with an empty token directory: only blank cards.
pub fn blank_cards(dir: &Path) -> PathBuf {
    softhsm_conf(dir, "cards")
}

/// An office member (a StaffUser as the web layer would pass it), made on first use.
pub fn staff(env: &Env, name: &str) -> StaffUser {
    let existing = kofu::db::models::user::User::by_username(&mut env.conn(), name).unwrap();
    let u = match existing {
        Some(u) => u,
        None => {
            kofu::service::users::add(
                &mut env.conn(),
                name,
                Role::Office,
                None,
                &Actor::new("test", "cli"),
                now(),
            )
            .unwrap()
            .0
        }
    };
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
    let births: Vec<&str> = (0..n)
        .map(|i| {
            if i % 5 == 4 {
                "2014-06-01"
            } else {
                "昭和50年4月1日"
            }
        })
        .collect();
    ordered_batch_born(env, &births)
}

/// An ordered batch of one new application per birth date (same fixtures as
/// [`ordered_batch`] otherwise).
pub fn ordered_batch_born(env: &Env, births: &[&str]) -> i64 {
    let recorder = staff(env, "recorder");
    let orderer = staff(env, "orderer");
    let mut ids = Vec::new();
    for (i, birth) in births.iter().enumerate() {
        let input = ApplicationInput {
            kind: "new".into(),
            name: format!("試験 太郎{i}"),
            name_kana: "シケン タロウ".into(),
            birth_date: (*birth).into(),
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
    mark_verified(env, &ids);
    kofu::service::orders::order(&mut env.conn(), &orderer, &ids, now())
        .unwrap()
        .id
}

/// The clerk who approves the fixtures' applications (made once per environment).
pub fn fixture_clerk(env: &Env) -> i64 {
    if let Some(u) =
        kofu::db::models::user::User::by_username(&mut env.conn(), "fixture-clerk").unwrap()
    {
        return u.id;
    }
    kofu::service::users::add(
        &mut env.conn(),
        "fixture-clerk",
        Role::Clerk,
        Some("131016"),
        &kofu::audit::Actor::new("test", "cli"),
        now(),
    )
    .unwrap()
    .0
    .id
}

/// Mark applications approved by a clerk, as the four-field check would (tests of what comes
/// after it).
pub fn mark_verified(env: &Env, ids: &[i64]) {
    use kofu::db::schema::applications as a;
    let clerk = fixture_clerk(env);
    diesel::update(a::table.filter(a::id.eq_any(ids)))
        .set((
            a::state.eq("verified"),
            a::decided_by.eq(Some(clerk)),
            a::decided_at.eq(Some(now().timestamp())),
        ))
        .execute(&mut *env.conn())
        .unwrap();
}

/// A new CA and a batch of `n` cards written with software-made keys on blank SoftHSM2
/// tokens (the run must succeed); returns the batch id and the cards' SoftHSM2 configuration.
pub fn software_batch(env: &Env, n: usize) -> (i64, PathBuf) {
    env.init_ca();
    let conf = blank_cards(env.dir.path());
    let batch = ordered_batch(env, n);
    let out = run(batch_command(env, &conf, batch).env("KOFU_CARD_KEYGEN", "software"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (batch, conf)
}

/// `kofu batch run ID` with the cards of `conf`.
pub fn batch_command(env: &Env, conf: &Path, id: i64) -> Command {
    let mut c = env.command();
    c.env("SOFTHSM2_CONF", conf)
        .env("KOFU_CARD_MODULE", softhsm_module())
        .args(["batch", "run", &id.to_string()]);
    c
}

pub fn pkcs11_tool(conf: &Path, args: &[&str]) -> std::process::Output {
    run(Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", conf)
        .arg("--module")
        .arg(softhsm_module())
        .args(args))
}

/// The cards of a batch, oldest first.
pub fn cards_of(env: &Env, batch: i64) -> Vec<CardRow> {
    CardRow::for_batch(&mut env.conn(), batch).unwrap()
}

/// The initialised tokens (cards that went through personalisation): (label, chip serial).
pub fn initialised_tokens(conf: &Path) -> Vec<(String, String)> {
    let out = run(Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .arg("--show-slots"));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tokens = Vec::new();
    let (mut serial, mut initialised) = (String::new(), false);
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Serial number:") {
            serial = v.trim().to_string();
        }
        if let Some(v) = line.strip_prefix("Initialized:") {
            initialised = v.trim() == "yes";
        }
        if let Some(label) = line.strip_prefix("Label:")
            && initialised
        {
            tokens.push((label.trim().to_string(), serial.clone()));
        }
    }
    tokens
}

/// The tokens set aside while batch `batch` was written: (chip serial, label, reason).
pub fn set_aside(env: &Env, batch: i64) -> Vec<(String, String, String)> {
    kofu::service::card_stack::for_batch(&mut env.conn(), batch)
        .unwrap()
        .into_iter()
        .map(|t| (t.chip_serial, t.token_label, t.reason))
        .collect()
}

pub fn hex_id(purpose: &str) -> String {
    hex::encode(purpose.as_bytes())
}

/// Read a card back with pkcs11-tool and openssl and check it as an operator would.
pub fn check_card(env: &Env, conf: &Path, card: &CardRow, adult: bool) {
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
pub fn check_card_certificates(env: &Env, conf: &Path, card: &CardRow) {
    check_certificates(env, conf, card, true);
}

pub fn check_certificates(env: &Env, conf: &Path, card: &CardRow, adult: bool) {
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

pub fn adults(env: &Env, cards: &[CardRow]) -> Vec<bool> {
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
            who.person.birth_date.format("%Y").to_string() != "2014"
        })
        .collect()
}

/// card id, serial, profile, state, DER, revocation reason.
pub type CertRow = (
    Option<i64>,
    String,
    String,
    String,
    Option<Vec<u8>>,
    Option<i32>,
);

/// What must hold of a batch's cards and the card stack once a run has finished, however
/// many runs were killed before it: each application has exactly one written card, every
/// token in the stack is a written card's chip or set aside (so no number is on two usable
/// cards), each written card holds its issued certificates, every other issued certificate
/// is revoked, no intent is left between signing and storage, and everything is audited.
/// Returns the written cards.
pub fn assert_batch_invariants(env: &Env, conf: &Path, batch: i64, apps: usize) -> Vec<CardRow> {
    let all = cards_of(env, batch);
    let (written, spoiled): (Vec<CardRow>, Vec<CardRow>) =
        all.into_iter().partition(|c| c.state == "written");
    assert_eq!(written.len(), apps, "one written card per application");
    let per_app: std::collections::BTreeSet<i64> =
        written.iter().map(|c| c.application_id).collect();
    assert_eq!(per_app.len(), apps, "no application has two written cards");
    assert!(spoiled.iter().all(|c| c.state == "spoiled"));
    eprintln!("{} cards spoiled", spoiled.len());

    let aside = set_aside(env, batch);
    eprintln!("{} tokens set aside: {aside:?}", aside.len());
    let aside_chips: std::collections::BTreeSet<&str> =
        aside.iter().map(|(chip, _, _)| chip.as_str()).collect();
    for (label, serial) in initialised_tokens(conf) {
        let is_written = written
            .iter()
            .any(|c| c.card_number == label && c.chip_serial.as_deref() == Some(serial.as_str()));
        assert!(
            is_written || aside_chips.contains(serial.as_str()),
            "token {label} (chip {serial}) is neither a written card nor set aside"
        );
    }
    let adults = adults(env, &written);
    for (card, adult) in written.iter().zip(&adults) {
        check_card(env, conf, card, *adult);
    }

    use kofu::db::schema::certificates as c;
    let ids: Vec<i64> = cards_of(env, batch).iter().map(|c| c.id).collect();
    let rows: Vec<CertRow> = c::table
        .filter(c::card_id.eq_any(&ids))
        .select((
            c::card_id,
            c::serial,
            c::profile,
            c::state,
            c::cert_der,
            c::revocation_reason,
        ))
        .load(&mut *env.conn())
        .unwrap();
    assert!(
        rows.iter().all(|r| r.3 == "issued" || r.3 == "abandoned"),
        "intents left behind: {:?}",
        rows.iter().map(|r| &r.3).collect::<Vec<_>>()
    );
    let issued: Vec<&CertRow> = rows.iter().filter(|r| r.3 == "issued").collect();
    eprintln!("{} intents abandoned", rows.len() - issued.len());
    for card in &written {
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
                    opened(r.4.as_ref().unwrap()),
                    "the card holds the issued certificate"
                );
                assert_eq!(r.5, None, "a written card's certificate is good");
            }
        }
    }
    let on_written = issued
        .iter()
        .filter(|r| written.iter().any(|c| Some(c.id) == r.0))
        .count();
    let signing = adults.iter().filter(|a| **a).count();
    assert_eq!(on_written, apps + signing, "one certificate per key");
    let audit = kofu::audit::list(&mut env.conn(), None, 100_000).unwrap();
    for r in issued
        .iter()
        .filter(|r| !written.iter().any(|c| Some(c.id) == r.0))
    {
        assert!(
            r.5.is_some() && r.5 != Some(6),
            "certificate {} of a spoiled card is not revoked for good ({:?})",
            r.1,
            r.5
        );
    }
    for card in &spoiled {
        let entry = audit.iter().find(|e| {
            e.action == "card.spoiled" && e.target == format!("card:{}", card.card_number)
        });
        assert!(
            entry.is_some(),
            "spoiling of {} is audited",
            card.card_number
        );
        eprintln!("spoiled {}: {}", card.card_number, entry.unwrap().detail);
        assert!(
            aside.iter().any(|(_, label, _)| *label == card.card_number),
            "spoiled card {} is on the pull list",
            card.card_number
        );
    }
    for (chip, _, reason) in &aside {
        assert!(
            audit.iter().any(|e| e.action == "card.set_aside"
                && e.target == format!("chip:{}", if chip.is_empty() { "-" } else { chip })
                && e.detail.contains(&format!("reason={reason}"))),
            "setting aside chip {chip} is audited"
        );
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
    written
}

/// A card being written for `identity`'s application — recorded by one office member,
/// approved by a clerk, ordered by another, its card number allocated and the card
/// personalised — the only state in which holder certificates are issued (besides a
/// counter renewal). Returns (card id, application id).
pub fn card_being_written(env: &Env, identity: &kofu::ca::identity::Identity) -> (i64, i64) {
    let tag =
        hex::encode(kofu::service::auth::random_secret().unwrap().as_bytes())[..8].to_string();
    let recorder = staff(env, &format!("rec-{tag}"));
    let orderer = staff(env, &format!("ord-{tag}"));
    let input = ApplicationInput {
        kind: "new".into(),
        name: identity.person.name.clone(),
        name_kana: identity.person.name_kana.clone(),
        birth_date: identity.person.birth_date.format("%Y-%m-%d").to_string(),
        sex: identity.person.sex.iso5218().into(),
        address: identity.person.address.clone(),
        postal_code: identity.person.postal_code.clone(),
        municipality_code: identity.municipality_code.clone(),
        delivery: "mail".into(),
        email: None,
        forms: Forms {
            application: true,
            power_of_attorney: true,
            consent: true,
        },
    };
    let (app, _, _) = intake::create(
        &mut env.conn(),
        &data_key(),
        &input,
        recorder.id,
        &recorder.actor(),
        now(),
    )
    .unwrap();
    mark_verified(env, &[app]);
    kofu::service::orders::order(&mut env.conn(), &orderer, &[app], now()).unwrap();
    let row = kofu::db::models::application::ApplicationRow::get(&mut env.conn(), app)
        .unwrap()
        .unwrap();
    let card = kofu::service::batches::allocate(
        &env.pool,
        &data_key(),
        &kofu::audit::Actor::new("test", "cli"),
        &row,
        signing_min_age(),
        now(),
    )
    .unwrap();
    // As the runner records it once the card is initialised.
    use kofu::db::schema::cards as c;
    diesel::update(c::table.find(card.id))
        .set((
            c::state.eq("personalised"),
            c::chip_serial.eq(Some(format!("test-{tag}"))),
        ))
        .execute(&mut *env.conn())
        .unwrap();
    (card.id, app)
}

/// Issue holder certificates through the workflow's own door for keys on a card being
/// written (see [`card_being_written`]).
pub fn issue_for_card(
    env: &Env,
    h: &kofu::ca::Hierarchy,
    card_id: i64,
    app_id: i64,
    keys: Vec<(kofu::ca::profile::Profile, Vec<u8>)>,
) -> kofu::error::Result<Vec<kofu::service::issuance::Issued>> {
    kofu::service::issuance::issue_holder(
        &mut env.conn(),
        h,
        &data_key(),
        &kofu::service::issuance::HolderRequest {
            card_id,
            application_id: app_id,
            keys,
        },
        None,
        &kofu::audit::Actor::new("op", "operator"),
        1,
        now(),
    )
}
