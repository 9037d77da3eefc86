//! Several `kofu serve` instances on one PostgreSQL database (SPEC §11, issue 13), each with
//! its own card stack: one run of a batch at a time, taken over when its instance is killed;
//! the instance duties (mail, CRLs) done once, and taken over when their holder stops. What
//! every round must leave: one written card per application, and every issued certificate
//! either on its application's written card (read back from the card) or revoked (as OCSP
//! answers).

use crate::common::*;
use diesel::prelude::*;
use kofu::ca::profile::CaName;
use kofu::db::models::card::CardRow;
use kofu::service::users::Role;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One instance: `kofu serve` named `name` with serial prefix `prefix`, its own card stack,
/// a 5-second batch lease, and `extra` environment.
fn instance(
    env: &Env,
    ca: &Path,
    name: &str,
    prefix: u16,
    extra: &[(&str, String)],
) -> (Server, PathBuf) {
    let stack = softhsm_conf(env.dir.path(), &format!("cards-{name}"));
    let mut cmd = env.command();
    cmd.env("KOFU_CA_CONFIG", ca)
        .env("SOFTHSM2_CONF", &stack)
        .env("KOFU_CARD_MODULE", softhsm_module())
        .env("KOFU_INSTANCE_NAME", name)
        .env("KOFU_INSTANCE_PREFIX", prefix.to_string())
        .env("KOFU_CARD_LEASE_S", "5")
        .env("KOFU_CARD_WORKERS", "2");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    (Server::start(cmd), stack)
}

/// Public revocation data and a delta CRL one second after a revocation.
fn quick_ca_config(env: &Env) -> PathBuf {
    let text = std::fs::read_to_string(public_ca_config(env, 0))
        .unwrap()
        .replace("publish_delay_seconds = 3600", "publish_delay_seconds = 1");
    let path = env.path("ca-quick.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn post(server: &Server, token: &str, path: &str) -> u16 {
    server
        .agent
        .post(&format!("{}{path}", server.base))
        .header("authorization", &format!("Bearer {token}"))
        .send_empty()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn batch_state(env: &Env, batch: i64) -> String {
    use kofu::db::schema::issuance_batches as b;
    b::table
        .find(batch)
        .select(b::state)
        .first(&mut *env.conn())
        .unwrap()
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `openssl ocsp` for one serial: "good", "revoked" or "unknown".
fn ocsp(env: &Env, server: &Server, ca: CaName, serial: &str) -> String {
    let issuer = kofu::service::ca::cert_path(&env.cfg, ca);
    let root = kofu::service::ca::cert_path(&env.cfg, CaName::Root);
    let out = run(Command::new("openssl")
        .args([
            "ocsp",
            "-no_nonce",
            "-url",
            &format!("{}/ocsp/{}", server.base, ca.as_str()),
        ])
        .arg("-issuer")
        .arg(&issuer)
        .arg("-CAfile")
        .arg(&root)
        .args(["-serial", &format!("0x{serial}")]));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for s in ["good", "revoked", "unknown"] {
        if text.contains(&format!(": {s}")) {
            return s.into();
        }
    }
    panic!(
        "no OCSP answer for {serial}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One written card per application, each read back from the stack it is in, and every
/// other certificate of the batch's cards revoked, as OCSP answers.
fn assert_one_writer(env: &Env, server: &Server, stacks: &[&Path], batch: i64, apps: usize) {
    let all = cards_of(env, batch);
    let written: Vec<&CardRow> = all.iter().filter(|c| c.state == "written").collect();
    assert_eq!(written.len(), apps, "one written card per application");
    let per_app: std::collections::BTreeSet<i64> =
        written.iter().map(|c| c.application_id).collect();
    assert_eq!(per_app.len(), apps);
    assert!(
        all.iter()
            .all(|c| c.state == "written" || c.state == "spoiled")
    );
    let owned: Vec<CardRow> = written.iter().map(|c| (*c).clone()).collect();
    for (card, adult) in written.iter().zip(adults(env, &owned)) {
        let chip = card.chip_serial.clone().unwrap();
        let stack = stacks
            .iter()
            .find(|s| initialised_tokens(s).contains(&(card.card_number.clone(), chip.clone())))
            .unwrap_or_else(|| panic!("card {} is in no stack", card.card_number));
        check_card(env, stack, card, adult);
    }
    use kofu::db::schema::certificates as c;
    let ids: Vec<i64> = all.iter().map(|c| c.id).collect();
    let certs: Vec<(Option<i64>, String, String, Option<i32>)> = c::table
        .filter(c::card_id.eq_any(&ids))
        .filter(c::state.eq("issued"))
        .select((c::card_id, c::serial, c::issuer, c::revocation_reason))
        .load(&mut *env.conn())
        .unwrap();
    for (card_id, serial, issuer, reason) in certs {
        let on_written = written.iter().any(|w| Some(w.id) == card_id);
        let ca = CaName::parse(&issuer).unwrap();
        let want = if on_written { "good" } else { "revoked" };
        assert_eq!(
            reason.is_none(),
            on_written,
            "certificate {serial}: reason {reason:?}"
        );
        // OCSP caches catch up with status changes within a second or two.
        let mut got = String::new();
        for _ in 0..25 {
            got = ocsp(env, server, ca, &serial);
            if got == want {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(got, want, "OCSP for certificate {serial}");
    }
}

#[test]
fn two_instances_run_each_batch_once_and_take_over_a_killed_run() {
    for env in envs().into_iter().filter(|e| e.db.label == "postgres") {
        env.init_ca();
        let ca = public_ca_config(&env, 0);
        let operator = ready_user(&env, "operator-2", Role::Operator, None);
        let (a, stack_a) = instance(&env, &ca, "instance-a", 0x0a0a, &[]);
        let (b, stack_b) = instance(&env, &ca, "instance-b", 0x0b0b, &[]);
        for round in 0..10 {
            let batch = ordered_batch(&env, 3);
            let path = format!("/api/v1/batches/{batch}/run");
            let barrier = std::sync::Barrier::new(2);
            let (sa, sb) = std::thread::scope(|s| {
                let ta = s.spawn(|| {
                    barrier.wait();
                    post(&a, &operator, &path)
                });
                let tb = s.spawn(|| {
                    barrier.wait();
                    post(&b, &operator, &path)
                });
                (ta.join().unwrap(), tb.join().unwrap())
            });
            let mut got = [sa, sb];
            got.sort_unstable();
            assert_eq!(got, [202, 409], "round {round}: exactly one run");
            wait_for("the batch to complete", 90, || {
                batch_state(&env, batch) == "completed"
            });
            assert_one_writer(&env, &a, &[&stack_a, &stack_b], batch, 3);
        }

        // The holder is killed mid-run: the other refuses until the lease runs out, then takes
        // the run over and finishes it.
        let batch = ordered_batch(&env, 8);
        assert_eq!(
            post(&a, &operator, &format!("/api/v1/batches/{batch}/run")),
            202
        );
        wait_for("two cards written", 60, || {
            cards_of(&env, batch)
                .iter()
                .filter(|c| c.state == "written")
                .count()
                >= 2
        });
        let mut a = a;
        a.child.kill().unwrap(); // SIGKILL
        a.child.wait().unwrap();
        let path = format!("/api/v1/batches/{batch}/run");
        assert_eq!(
            post(&b, &operator, &path),
            409,
            "the killed run's lease still holds"
        );
        wait_for("the lease to run out", 30, || {
            post(&b, &operator, &path) == 202
        });
        wait_for("the batch to complete", 120, || {
            batch_state(&env, batch) == "completed"
        });
        assert_one_writer(&env, &b, &[&stack_a, &stack_b], batch, 8);
        let spoiled = cards_of(&env, batch)
            .into_iter()
            .filter(|c| c.state == "spoiled")
            .count();
        eprintln!("after the kill: {spoiled} card(s) left on the killed instance's stack spoiled");
        let out = run(env.command().args(["audit", "verify"]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn maildir_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn queue_notice(env: &Env, n: usize) {
    use kofu::service::intake::{self, ApplicationInput, Forms};
    let office = staff(env, "recorder");
    let input = ApplicationInput {
        kind: "new".into(),
        name: format!("通知 太郎{n}"),
        name_kana: "ツウチ タロウ".into(),
        birth_date: "1980-01-01".into(),
        sex: "1".into(),
        address: format!("東京都千代田区千代田1-{n}"),
        postal_code: "1000001".into(),
        municipality_code: "131016".into(),
        delivery: "mail".into(),
        email: Some(format!("holder{n}@example.jp")),
        forms: Forms {
            application: true,
            power_of_attorney: true,
            consent: true,
        },
    };
    intake::create(
        &mut env.conn(),
        &data_key(),
        &input,
        office.id,
        &office.actor(),
        now(),
    )
    .unwrap();
}

fn duties_holder(env: &Env) -> Option<String> {
    use kofu::db::schema::leases as l;
    l::table
        .find("duties")
        .select(l::instance)
        .first(&mut *env.conn())
        .optional()
        .unwrap()
}

fn newest_crl(env: &Env) -> i64 {
    use kofu::db::schema::crls as c;
    c::table
        .select(diesel::dsl::max(c::id))
        .first::<Option<i64>>(&mut *env.conn())
        .unwrap()
        .unwrap_or(0)
}

#[test]
fn the_instance_duties_run_once_and_move_when_their_holder_stops() {
    for env in envs().into_iter().filter(|e| e.db.label == "postgres") {
        env.init_ca();
        let ca = quick_ca_config(&env);
        let port = free_port();
        let maildir = env.dir.path().join("maildir");
        let _smtp = start_smtp(port, &maildir);
        let mail = [
            ("KOFU_SMTP_HOST", "127.0.0.1".to_string()),
            ("KOFU_SMTP_PORT", port.to_string()),
            ("KOFU_SMTP_SECURITY", "none".to_string()),
            ("KOFU_MAIL_POLL_S", "1".to_string()),
        ];
        for n in 0..6 {
            queue_notice(&env, n);
        }
        let admin = ready_user(&env, "admin-d", Role::Admin, None);
        let a = instance(&env, &ca, "duty-a", 0x0c0c, &mail).0;
        let b = instance(&env, &ca, "duty-b", 0x0d0d, &mail).0;
        wait_for("six notices", 30, || maildir_count(&maildir) >= 6);
        std::thread::sleep(Duration::from_secs(4));
        assert_eq!(maildir_count(&maildir), 6, "each notice delivered once");
        assert_eq!(kofu::mail::pending(&mut env.conn()).unwrap(), 0);

        // Stop the instance holding the duties: the other sends the next mail and publishes
        // the next CRL.
        let holder = duties_holder(&env).expect("an instance holds the duties");
        let (mut stopped, survivor) = if holder == "duty-a" { (a, b) } else { (b, a) };
        stopped.child.kill().unwrap();
        stopped.child.wait().unwrap();
        queue_notice(&env, 6);
        wait_for("the seventh notice", 45, || maildir_count(&maildir) >= 7);
        assert_ne!(
            duties_holder(&env).as_deref(),
            Some(holder.as_str()),
            "taken over"
        );
        // A revocation (a verifier's client certificate) makes a delta CRL due.
        let before = newest_crl(&env);
        let post_json = |path: &str, body: serde_json::Value| -> serde_json::Value {
            let mut r = survivor
                .agent
                .post(&format!("{}{path}", survivor.base))
                .header("authorization", &format!("Bearer {admin}"))
                .send_json(body)
                .unwrap();
            r.body_mut().read_json().unwrap()
        };
        let v = post_json(
            "/api/v1/verifiers",
            serde_json::json!({"name": "病院", "contact": "03-0000-0000", "cas": ["signing"]}),
        );
        let vid = v["id"].as_i64().unwrap();
        let (_, csr) = csr("hospital", &[]);
        let c = post_json(
            &format!("/api/v1/verifiers/{vid}/certificates"),
            serde_json::json!({"csr": String::from_utf8(csr).unwrap(), "label": "mtls"}),
        );
        let cred = c["credential"].as_i64().unwrap_or_else(|| panic!("{c}"));
        post_json(
            &format!("/api/v1/verifiers/{vid}/credentials/{cred}/revoke"),
            serde_json::json!({}),
        );
        wait_for("a CRL from the surviving instance", 30, || {
            newest_crl(&env) > before
        });
        assert_eq!(maildir_count(&maildir), 7);
    }
}
