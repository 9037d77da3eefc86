//! Issuance throughput: certificates through the whole issuer (encode, lint, check the key,
//! store serial + TBS + intent, sign, check, store certificate + audit) on SQLite. The
//! service path issues TLS-server certificates from a set of P-256 keys (the profile that may
//! certify a key again: holder certificates are issued only through the workflow, and each
//! holder key once); the breakdown measures the signing profile in the CA layer alone.
//! Run by scripts/bench, which prints it beside `openssl speed rsa2048`.
//!
//! Usage: cargo bench --bench issuance -- [COUNT] [THREADS] [BATCH]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kofu::audit::Actor;
use kofu::ca::config::CaConfig;
use kofu::ca::csr;
use kofu::ca::identity::Identity;
use kofu::ca::profile::Profile;
use kofu::config::{Config, Secret};
use kofu::service::issuance::{self, IssueRequest};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let count: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let threads: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(250);

    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data_dir: dir.path().join("data"),
        database_url: Some(dir.path().join("bench.db").to_string_lossy().into_owned()),
        ca_config: std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ca-config/ca.toml"),
        ca_passphrase: Some(Secret::new("benchmark passphrase".into())),
        ..Config::default()
    };
    // As the service opens it: a read pool and, on SQLite, a one-connection write pool.
    let db = kofu::db::Db::open(&cfg.database_url(), threads as u32 + 1).unwrap();
    let pool = db.read.clone();
    kofu::db::migrate(&mut pool.get().unwrap()).unwrap();
    let ca_cfg = CaConfig::load(&cfg.ca_config).unwrap();
    let now = chrono::Utc::now();
    kofu::service::ca::init(
        &mut pool.get().unwrap(),
        &cfg,
        &ca_cfg,
        &Actor::new("bench", "cli"),
        now,
    )
    .unwrap();
    let h = Arc::new(kofu::service::ca::load(&mut pool.get().unwrap(), &cfg, ca_cfg).unwrap());

    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
    b.set_pubkey(&key).unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let csr = csr::check(&b.build().to_pem().unwrap()).unwrap();
    let identity = Identity::from_json(
        r#"{"name":"山田 太郎","name_kana":"ヤマダ タロウ","birth_date":"1980-06-15","sex":"male","address":"東京都千代田区千代田1-1","postal_code":"100-0001","municipality_code":"131016"}"#,
    )
    .unwrap();
    let holder = IssueRequest {
        profile: Profile::Signing,
        ca: None,
        csr,
        identity: Some(identity),
    };
    // As many keys as a batch holds (a request may not name one key twice).
    let reqs: Arc<Vec<IssueRequest>> = Arc::new(
        (0..batch)
            .map(|_| {
                let group =
                    openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                        .unwrap();
                let key =
                    openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
                        .unwrap();
                IssueRequest {
                    profile: Profile::TlsServer,
                    ca: None,
                    csr: kofu::ca::csr::CheckedCsr {
                        spki_der: key.public_key_to_der().unwrap(),
                        common_name: Some("bench.kofu.example".into()),
                        dns_names: vec!["bench.kofu.example".into()],
                    },
                    identity: None,
                }
            })
            .collect(),
    );
    let req = &holder;

    if std::env::var_os("KOFU_BENCH_BREAKDOWN").is_some() {
        use kofu::ca::profile::{CaName, EeRequest, ee_parts};
        use kofu::ca::serial::Serial;
        let ca = h.ca(CaName::Signing).unwrap();
        let n = 1000;
        let t = Instant::now();
        for _ in 0..n {
            ca.signer.sign(b"0123456789abcdef0123456789abcdef").unwrap();
        }
        println!("signer only: {:.0}/s", n as f64 / t.elapsed().as_secs_f64());
        let ee = EeRequest {
            profile: Profile::Signing,
            spki_der: req.csr.spki_der.clone(),
            identity: req.identity.clone(),
            common_name: None,
            dns_names: vec![],
        };
        let ctx = ca.ee_lint_context(Profile::Signing).unwrap();
        let t = Instant::now();
        for _ in 0..n {
            let parts = ee_parts(
                &h.config,
                &h.urls,
                &ca.view,
                &ee,
                Serial::generate(1).unwrap(),
                now,
            )
            .unwrap();
            kofu::ca::issuer::prepare(&parts, &ctx).unwrap();
        }
        println!(
            "prepare only: {:.0}/s",
            n as f64 / t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        for _ in 0..n {
            let parts = ee_parts(
                &h.config,
                &h.urls,
                &ca.view,
                &ee,
                Serial::generate(1).unwrap(),
                now,
            )
            .unwrap();
            kofu::ca::issuer::prepare(&parts, &ctx)
                .unwrap()
                .sign(ca.signer.as_ref(), &ca.public_key)
                .unwrap();
        }
        println!(
            "prepare+sign: {:.0}/s",
            n as f64 / t.elapsed().as_secs_f64()
        );
    }

    // One certificate per call (the CLI and API path), `threads` callers.
    let single = run(&db.write, &h, &reqs, count / 4, threads, 1);
    println!(
        "kofu_issue mode=single certificates={} threads={threads} seconds={:.3} per_second={:.0}",
        count / 4,
        single,
        (count / 4) as f64 / single
    );
    // Batches (the card-issuance path), `threads` callers each issuing `batch` at a time.
    let batched = run(&db.write, &h, &reqs, count, threads, batch);
    println!(
        "kofu_issue mode=batch batch={batch} certificates={count} threads={threads} seconds={batched:.3} per_second={:.0}",
        count as f64 / batched
    );
    let audit = kofu::audit::verify(&mut pool.get().unwrap()).unwrap();
    assert!(
        audit.entries as usize >= 2 * (count + count / 4),
        "every issuance audited"
    );
}

fn run(
    pool: &kofu::db::DbPool,
    h: &Arc<kofu::ca::Hierarchy>,
    reqs: &Arc<Vec<IssueRequest>>,
    count: usize,
    threads: usize,
    batch: usize,
) -> f64 {
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (pool, h, reqs) = (pool.clone(), Arc::clone(h), Arc::clone(reqs));
            let n = count / threads + usize::from(t < count % threads);
            std::thread::spawn(move || {
                // The service's SQLite write pool: one connection, lent per transaction.
                let mut source = &pool;
                let actor = Actor::new("bench", "operator");
                let mut left = n;
                while left > 0 {
                    let k = left.min(batch);
                    let issued = issuance::issue_batch(
                        &mut source,
                        &h,
                        &reqs[..k],
                        &actor,
                        1,
                        chrono::Utc::now(),
                    )
                    .unwrap();
                    assert_eq!(issued.len(), k);
                    left -= k;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    start.elapsed().as_secs_f64()
}
