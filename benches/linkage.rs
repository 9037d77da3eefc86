//! Serial-linkage benchmark's kofu side (scripts/bench starts `kofu serve` with its TLS
//! listener and drives it with wrk; the peer runs beside it).
//!
//!   populate DIR N   a kofu data dir (SQLite, revocation data for verifiers) with N cards,
//!                    each with a signing and an authentication certificate (one card in ten
//!                    renewed: a second signing certificate linked to the first, which is
//!                    superseded), one verifier that has registered all N first signing
//!                    serials, its token in DIR/token and the serials in DIR/serials.txt

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use diesel::RunQueryDsl;
use kofu::audit::Actor;
use kofu::ca::config::CaConfig;
use kofu::config::{Config, Secret};
use std::io::Write;
use std::path::Path;

const PASSPHRASE: &str = "benchmark passphrase";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("populate") => populate(Path::new(&args[1]), args[2].parse().unwrap()),
        _ => eprintln!("usage: linkage populate DIR N"),
    }
}

fn populate(dir: &Path, n: u64) {
    std::fs::copy(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ca-config/ca.toml"),
        dir.join("ca.toml"),
    )
    .unwrap();
    let cfg = Config {
        data_dir: dir.join("data"),
        database_url: Some(dir.join("kofu.db").to_string_lossy().into_owned()),
        ca_config: dir.join("ca.toml"),
        ca_passphrase: Some(Secret::new(PASSPHRASE.into())),
        ..Config::default()
    };
    let pool = kofu::db::pool(&cfg.database_url(), 1).unwrap();
    let mut c = pool.get().unwrap();
    kofu::db::migrate(&mut c).unwrap();
    let now = chrono::Utc::now();
    kofu::service::ca::init(
        &mut c,
        &cfg,
        &CaConfig::load(&cfg.ca_config).unwrap(),
        &Actor::new("bench", "cli"),
        now,
    )
    .unwrap();
    let v = kofu::service::verifiers::add(
        &mut c,
        &kofu::service::verifiers::NewVerifier {
            name: "Bench verifier".into(),
            contact: "bench".into(),
            cas: vec![
                kofu::ca::profile::CaName::Signing,
                kofu::ca::profile::CaName::Authentication,
            ],
            rate_limit: 10_000_000,
        },
        &Actor::new("bench", "cli"),
        now,
    )
    .unwrap();
    let (_, token) = kofu::service::verifiers::create_token(
        &mut c,
        v.id,
        "bench",
        &Actor::new("bench", "cli"),
        now,
    )
    .unwrap();
    std::fs::write(dir.join("token"), &token).unwrap();
    let now_s = now.timestamp();
    let (nb, na) = (now_s - 86_400 * 30, now_s + 86_400 * 365 * 5);
    // Cards are not part of what is measured: the certificates point at card ids without
    // card rows (foreign keys off while populating). Rows are as wide as real ones; serials
    // start 7A (first signing), 7B (authentication), 7C (renewed signing).
    let series =
        format!("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})");
    let cert = |prefix: &str, issuer: &str, profile: &str, filter: &str, revoked: &str| {
        format!(
            "{series} INSERT INTO certificates (serial, issuer, profile, state, tbs_der, cert_der, \
               not_before, not_after, created_at, issued_at, card_id, revoked_at, revocation_reason) \
             SELECT '{prefix}' || printf('%030X', i), '{issuer}', '{profile}', 'issued', \
               zeroblob(1150), zeroblob(1430), {nb}, {na}, {nb}, {nb}, i, {revoked} \
             FROM s WHERE {filter}"
        )
    };
    let statements = [
        "PRAGMA foreign_keys = OFF".to_string(),
        "BEGIN".to_string(),
        cert(
            "7A",
            "signing",
            "signing",
            "1",
            &format!("CASE WHEN i % 10 = 0 THEN {now_s} END, CASE WHEN i % 10 = 0 THEN 4 END"),
        ),
        cert("7B", "authentication", "authentication", "1", "NULL, NULL"),
        cert("7C", "signing", "signing", "i % 10 = 0", "NULL, NULL"),
        format!(
            "INSERT INTO certificate_links (old_certificate_id, new_certificate_id, created_at) \
             SELECT o.id, r.id, {now_s} FROM certificates o JOIN certificates r \
               ON r.serial = '7C' || substr(o.serial, 3) WHERE o.serial LIKE '7A%' AND o.card_id % 10 = 0"
        ),
        format!(
            "INSERT INTO verifier_serials (verifier_id, certificate_id, card_id, seq, created_at) \
             SELECT {}, id, card_id, card_id, {now_s} FROM certificates WHERE serial LIKE '7A%' AND card_id IS NOT NULL",
            v.id
        ),
        format!("UPDATE counters SET value = {n} WHERE name = 'linkage_seq'"),
        "COMMIT".to_string(),
        "PRAGMA foreign_keys = ON".to_string(),
    ];
    for s in statements {
        diesel::sql_query(s).execute(&mut *c).unwrap();
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("serials.txt")).unwrap());
    for i in 1..=n {
        writeln!(f, "7A{i:030X}").unwrap();
    }
    f.flush().unwrap();
    println!("populated cards={n} registered={n} renewed={}", n / 10);
}
