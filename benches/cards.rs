//! Card writing throughput on SoftHSM2: a batch of COUNT adult holders (two key pairs each)
//! through the batch runner, beside the raw rate of RSA-2048 key generation on the same
//! SoftHSM2 installation, measured in this run with the same number of threads.
//!
//! Usage: cargo bench --bench cards -- [COUNT] [THREADS] [WORKERS]
//! THREADS: key generation threads of the peer (the machine's cores); WORKERS: cards the
//! runner writes at once (default THREADS + 1, so that a core never waits while a card is
//! between key generations).
//! Needs softhsm2; SOFTHSM2_CONF is set here to a fresh token directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::ca::config::CaConfig;
use kofu::card::readers::Readers;
use kofu::card::token::Keygen;
use kofu::config::{Config, Secret};
use kofu::service::auth::StaffUser;
use kofu::service::intake::{ApplicationInput, Forms};
use kofu::service::users::Role;
use std::path::PathBuf;
use std::time::Instant;

fn module() -> PathBuf {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("softhsm2 installed")
}

fn office(conn: &mut kofu::db::DbConn, name: &str) -> StaffUser {
    let actor = Actor::new("bench", "cli");
    let (u, _) =
        kofu::service::users::add(conn, name, Role::Office, None, &actor, chrono::Utc::now())
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

/// RSA-2048 key pairs per second generated on one SoftHSM2 token by `threads` sessions.
fn raw_keygen(ctx: &Pkcs11, count: usize, threads: usize, label: &str) -> f64 {
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| !ctx.get_token_info(*s).unwrap().token_initialized())
        .unwrap();
    let so = AuthPin::from("12345678".to_string());
    ctx.init_token(slot, &so, label).unwrap();
    let s = ctx.open_rw_session(slot).unwrap();
    s.login(UserType::So, Some(&so)).unwrap();
    s.init_pin(&AuthPin::from("1234".to_string())).unwrap();
    s.logout().unwrap();
    s.login(UserType::User, Some(&AuthPin::from("1234".to_string())))
        .unwrap();
    let started = Instant::now();
    std::thread::scope(|sc| {
        for t in 0..threads {
            let ctx = ctx.clone();
            sc.spawn(move || {
                let session = ctx.open_rw_session(slot).unwrap();
                for i in (t..count).step_by(threads) {
                    let id = format!("k{i}").into_bytes();
                    session
                        .generate_key_pair(
                            &Mechanism::RsaPkcsKeyPairGen,
                            &[
                                Attribute::Token(true),
                                Attribute::Id(id.clone()),
                                Attribute::ModulusBits(2048u64.into()),
                                Attribute::PublicExponent(vec![1, 0, 1]),
                                Attribute::Verify(true),
                            ],
                            &[
                                Attribute::Token(true),
                                Attribute::Id(id),
                                Attribute::Private(true),
                                Attribute::Sensitive(true),
                                Attribute::Extractable(false),
                                Attribute::Sign(true),
                            ],
                        )
                        .unwrap();
                }
            });
        }
    });
    count as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let count: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(200);
    let threads: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let workers: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(threads + 1);

    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    // SAFETY: single-threaded here, before anything reads the environment.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };

    let cfg = Config {
        data_dir: dir.path().join("data"),
        database_url: Some(dir.path().join("bench.db").to_string_lossy().into_owned()),
        ca_config: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ca-config/ca.toml"),
        ca_passphrase: Some(Secret::new("benchmark passphrase".into())),
        ..Config::default()
    };
    let db = kofu::db::Db::open(&cfg.database_url(), threads as u32 + 1).unwrap();
    kofu::db::migrate(&mut db.read.get().unwrap()).unwrap();
    let now = chrono::Utc::now();
    let ca_cfg = CaConfig::load(&cfg.ca_config).unwrap();
    let mut conn = db.write.get().unwrap();
    kofu::service::ca::init(&mut conn, &cfg, &ca_cfg, &Actor::new("bench", "cli"), now).unwrap();
    let h = kofu::service::ca::load(&mut conn, &cfg, ca_cfg).unwrap();
    let key = kofu::pii::DataKey::from_hex(&kofu::pii::DataKey::generate_hex().unwrap()).unwrap();

    // COUNT verified adult applications, ordered by a second office member.
    let recorder = office(&mut conn, "recorder");
    let orderer = office(&mut conn, "orderer");
    let mut ids = Vec::new();
    for i in 0..count {
        let input = ApplicationInput {
            kind: "new".into(),
            name: format!("試験 太郎{i}"),
            name_kana: "シケン タロウ".into(),
            birth_date: "1975-04-01".into(),
            sex: "male".into(),
            address: format!("東京都千代田区千代田1-1-{}", i + 1),
            postal_code: "100-0001".into(),
            municipality_code: "131016".into(),
            delivery: "mail".into(),
            email: None,
            forms: Forms {
                application: true,
                power_of_attorney: true,
                consent: true,
            },
        };
        let (id, _, _) = kofu::service::intake::create(
            &mut conn,
            &key,
            &input,
            recorder.id,
            &recorder.actor(),
            now,
        )
        .unwrap();
        ids.push(id);
    }
    use kofu::db::schema::applications as a;
    // Approved by a clerk, as the four-field check would.
    let clerk = kofu::service::users::add(
        &mut conn,
        "bench-clerk",
        Role::Clerk,
        Some("131016"),
        &Actor::new("bench", "cli"),
        now,
    )
    .unwrap()
    .0
    .id;
    diesel::update(a::table.filter(a::id.eq_any(&ids)))
        .set((a::state.eq("verified"), a::decided_by.eq(Some(clerk))))
        .execute(&mut *conn)
        .unwrap();
    let batch = kofu::service::orders::order(&mut conn, &orderer, &ids, now)
        .unwrap()
        .id;
    drop(conn);

    // The peer runs before and after the batch (the machine's speed drifts): the mean counts.
    let ctx = Pkcs11::new(module()).unwrap();
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let before = raw_keygen(&ctx, count, threads, "raw-before");

    let readers = Readers::open(&module()).unwrap();
    let lease = kofu::service::batches::claim(
        &mut db.write.get().unwrap(),
        batch,
        "bench",
        cfg.cards.lease_s,
        chrono::Utc::now(),
    )
    .unwrap();
    let runner = kofu::service::batches::Runner {
        db: &db.write,
        ca: &h,
        key: &key,
        readers: &readers,
        keygen: Keygen::Card,
        workers,
        prefix: 1,
        clock: &kofu::clock::SystemClock,
        actor: Actor::new("bench", "operator"),
        lease: &lease,
    };
    let started = Instant::now();
    let summary = runner.run(batch, &|_| {}).unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(summary.written, count, "{:?}", summary.failed);
    println!(
        "kofu_batch cards={count} workers={workers} seconds={secs:.2} cards_per_second={:.2}",
        count as f64 / secs
    );

    // The peer: the same module, the same number of threads, two key pairs per card.
    let after = raw_keygen(&ctx, count, threads, "raw-after");
    let keys_per_second = (before + after) / 2.0;
    println!(
        "raw_keygen keys={} threads={threads} before={before:.2} after={after:.2} keys_per_second={keys_per_second:.2} cards_per_second_limit={:.2}",
        2 * count,
        keys_per_second / 2.0
    );
}
