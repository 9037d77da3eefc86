//! Revocation benchmarks' kofu side (scripts/bench runs the peers beside them).
//!
//!   crl-populate DIR N     a kofu data dir (SQLite) whose signing CA has N revoked
//!                          certificates, and DIR/index.txt holding the same entries for
//!                          `openssl ca -gencrl`
//!   crl-publish DIR        the full signing CRL from that database to signed DER (what
//!                          `kofu crl publish` does), timed; run under /usr/bin/time for the
//!                          peak memory
//!   ocsp-populate DIR N PEER_CA_PEM
//!                          N issued certificates (one in ten revoked), DIR/index.txt for
//!                          `openssl ocsp -index`, and two files of DER OCSP requests for the
//!                          same serials: DIR/kofu.req (kofu's signing CA) and DIR/peer.req
//!                          (the peer's CA), each request the same length; with the peer
//!                          responder's certificate and key also DIR/cfssl.responses, the
//!                          same statuses as signed OCSP responses of the peer's CA (base64,
//!                          one a line), for `cfssl ocspserve -responses`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use diesel::RunQueryDsl;
use kofu::audit::Actor;
use kofu::ca::config::CaConfig;
use kofu::ca::profile::CaName;
use kofu::config::{Config, Secret};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

const PASSPHRASE: &str = "benchmark passphrase";

fn config(dir: &Path) -> Config {
    Config {
        data_dir: dir.join("data"),
        database_url: Some(dir.join("kofu.db").to_string_lossy().into_owned()),
        ca_config: dir.join("ca.toml"),
        ca_passphrase: Some(Secret::new(PASSPHRASE.into())),
        ..Config::default()
    }
}

fn setup(dir: &Path) -> (Config, kofu::db::DbPool) {
    let text = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ca-config/ca.toml"),
    )
    .unwrap()
    .replace(
        "revocation_access = \"verifiers\"",
        "revocation_access = \"public\"",
    );
    std::fs::write(dir.join("ca.toml"), text).unwrap();
    let cfg = config(dir);
    let pool = kofu::db::pool(&cfg.database_url(), 2).unwrap();
    kofu::db::migrate(&mut pool.get().unwrap()).unwrap();
    kofu::service::ca::init(
        &mut pool.get().unwrap(),
        &cfg,
        &CaConfig::load(&cfg.ca_config).unwrap(),
        &Actor::new("bench", "cli"),
        chrono::Utc::now(),
    )
    .unwrap();
    (cfg, pool)
}

/// Serial i as stored: 16 octets, 0x01 then the index (as kofu's scheme is shaped).
fn serial(i: u64) -> String {
    format!("01{i:030X}")
}

fn asn1_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .format("%y%m%d%H%M%SZ")
        .to_string()
}

/// Rows through SQLite's recursive CTE (the population is the benchmark's input, not
/// what it measures). `revoked_every`: every n-th row revoked (1 = all).
fn populate(pool: &kofu::db::DbPool, n: u64, revoked_every: u64, now: i64) {
    let sql = format!(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
         INSERT INTO certificates (serial, issuer, profile, state, tbs_der, cert_der, not_before, \
           not_after, created_at, issued_at, revoked_at, revocation_reason, status_seq) \
         SELECT '01' || printf('%030X', i), 'signing', 'signing', 'issued', zeroblob({tbs}), \
           zeroblob({cert}), {nb}, {na}, {nb}, {nb}, \
           CASE WHEN i % {revoked_every} = 0 THEN {now} - (i % 86400) END, \
           CASE WHEN i % {revoked_every} = 0 THEN (CASE i % 4 WHEN 0 THEN 1 WHEN 1 THEN 3 WHEN 2 THEN 4 ELSE 5 END) END, \
           CASE WHEN i % {revoked_every} = 0 THEN i END \
         FROM s",
        // A signing certificate's TBS and DER are about this long: the rows are as wide
        // as real ones, so a scan of the rows (not the index) would show.
        tbs = 1_150,
        cert = 1_430,
        nb = now - 86_400 * 30,
        na = now + 86_400 * 365 * 5,
    );
    let mut c = pool.get().unwrap();
    diesel::sql_query(sql).execute(&mut *c).unwrap();
    diesel::sql_query(format!(
        "UPDATE counters SET value = {n} WHERE name = 'status_seq'"
    ))
    .execute(&mut *c)
    .unwrap();
}

/// index.txt lines for openssl ca / openssl ocsp with the same serials and statuses.
fn index(dir: &Path, n: u64, revoked_every: u64, now: i64) {
    let reasons = [
        "keyCompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
    ];
    let expiry = asn1_time(now + 86_400 * 365 * 5);
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("index.txt")).unwrap());
    for i in 1..=n {
        if i % revoked_every == 0 {
            let reason = reasons[[0usize, 1, 2, 3][(i % 4) as usize]];
            writeln!(
                f,
                "R\t{expiry}\t{},{reason}\t{}\tunknown\t/CN=holder{i}",
                asn1_time(now - (i as i64 % 86_400)),
                serial(i)
            )
            .unwrap();
        } else {
            writeln!(f, "V\t{expiry}\t\t{}\tunknown\t/CN=holder{i}", serial(i)).unwrap();
        }
    }
    f.flush().unwrap();
    std::fs::write(dir.join("index.txt.attr"), "unique_subject = no\n").unwrap();
}

/// A DER OCSPRequest for one certificate (SHA-1 CertID, no nonce: what browsers send).
fn request(name_hash: &[u8], key_hash: &[u8], serial: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        assert!(body.len() < 0x80);
        v.push(body.len() as u8);
        v.extend_from_slice(body);
        v
    }
    let alg = [
        0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
    ];
    let cert_id = tlv(
        0x30,
        &[
            &alg[..],
            &tlv(0x04, name_hash),
            &tlv(0x04, key_hash),
            &tlv(0x02, serial),
        ]
        .concat(),
    );
    let one = tlv(0x30, &cert_id);
    let list = tlv(0x30, &one);
    let tbs = tlv(0x30, &list);
    tlv(0x30, &tbs)
}

fn requests(path: &Path, ca_der: &[u8], n: u64) -> usize {
    let hashes = kofu::ca::ocsp::issuer_hashes(ca_der).unwrap();
    let (_, name, key) = &hashes[0];
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut len = 0;
    for i in 1..=n {
        let r = request(name, key, &hex::decode(serial(i)).unwrap());
        len = r.len();
        f.write_all(&r).unwrap();
    }
    f.flush().unwrap();
    len
}

/// Pre-signed responses of the peer's CA for `cfssl ocspserve`: serial i good, one in
/// `every` revoked (as [`populate`] and `index` have them), signed by the peer's responder on
/// every core.
fn cfssl_responses(
    path: &Path,
    ca_der: &[u8],
    cert: &Path,
    key: &Path,
    n: u64,
    every: u64,
    now: i64,
) {
    use kofu::ca::ocsp::{ResponderKey, SingleAnswer, Status};
    let hashes = kofu::ca::ocsp::issuer_hashes(ca_der).unwrap();
    let (_, name, issuer_key) = &hashes[0];
    let cert_der = openssl::x509::X509::from_pem(&std::fs::read(cert).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    let pkey = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(key).unwrap()).unwrap();
    let workers = std::thread::available_parallelism().map_or(1, |w| w.get()) as u64;
    let started = Instant::now();
    let lines: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (cert_der, pkey) = (cert_der.clone(), pkey.clone());
                s.spawn(move || {
                    let responder = ResponderKey {
                        key_hash: kofu::ca::ocsp::key_hash(&cert_der).unwrap(),
                        cert_der,
                        signer: Box::new(
                            kofu::ca::signer::FileSigner::new(pkey, "peer responder").unwrap(),
                        ),
                    };
                    use base64::Engine;
                    (1..=n)
                        .filter(|i| i % workers == w)
                        .map(|i| {
                            let req = request(name, issuer_key, &hex::decode(serial(i)).unwrap());
                            let parsed = kofu::ca::ocsp::parse_request(&req).unwrap();
                            let status = if i % every == 0 {
                                Status::Revoked {
                                    at: now - 3600,
                                    reason: None,
                                }
                            } else {
                                Status::Good
                            };
                            let der = kofu::ca::ocsp::response(
                                &responder,
                                now,
                                &[SingleAnswer {
                                    cert_id: &parsed.ids[0].raw,
                                    status,
                                    this_update: now,
                                    next_update: now + 86_400,
                                }],
                                None,
                            )
                            .unwrap();
                            base64::engine::general_purpose::STANDARD.encode(der)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    eprintln!(
        "signed {n} responses for cfssl in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mode = args.first().map(String::as_str).unwrap_or("");
    let dir = Path::new(args.get(1).map(String::as_str).unwrap_or("."));
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let now = chrono::Utc::now().timestamp();
    match mode {
        "crl-populate" => {
            let (_, pool) = setup(dir);
            let t = Instant::now();
            populate(&pool, n, 1, now);
            index(dir, n, 1, now);
            eprintln!(
                "populated {n} revoked certificates in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        "crl-publish" => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .init();
            let cfg = config(dir);
            let pool = kofu::db::pool(&cfg.database_url(), 2).unwrap();
            let h = kofu::service::ca::load(
                &mut pool.get().unwrap(),
                &cfg,
                CaConfig::load(&cfg.ca_config).unwrap(),
            )
            .unwrap();
            let t = Instant::now();
            let db = kofu::db::Db {
                read: pool.clone(),
                write: pool.clone(),
            };
            let p = kofu::service::crl::publish(
                &db,
                &h,
                CaName::Signing,
                None,
                kofu::service::crl::Kind::Full,
                &Actor::new("bench", "cli"),
                chrono::Utc::now(),
            )
            .unwrap();
            let secs = t.elapsed().as_secs_f64();
            let row = kofu::service::crl::latest(
                &mut pool.get().unwrap(),
                CaName::Signing,
                None,
                kofu::service::crl::Kind::Full,
            )
            .unwrap()
            .unwrap();
            let der = kofu::service::crl::der(&mut pool.get().unwrap(), row.id).unwrap();
            std::fs::write(dir.join("kofu.crl"), der).unwrap();
            println!(
                "kofu_crl entries={} bytes={} seconds={secs:.3}",
                p.entries, p.bytes
            );
        }
        "ocsp-populate" => {
            let peer_ca = args.get(3).expect("PEER_CA_PEM");
            let (_, pool) = setup(dir);
            populate(&pool, n, 10, now);
            index(dir, n, 10, now);
            let rows = kofu::db::models::ca::CaRow::all(&mut pool.get().unwrap()).unwrap();
            let signing = rows.iter().find(|r| r.name == "signing").unwrap();
            let len = requests(&dir.join("kofu.req"), &signing.cert_der, n);
            let peer = openssl::x509::X509::from_pem(&std::fs::read(peer_ca).unwrap())
                .unwrap()
                .to_der()
                .unwrap();
            let peer_len = requests(&dir.join("peer.req"), &peer, n);
            assert_eq!(len, peer_len);
            if let (Some(cert), Some(key)) = (args.get(4), args.get(5)) {
                let out = dir.join("cfssl.responses");
                cfssl_responses(&out, &peer, Path::new(cert), Path::new(key), n, 10, now);
            }
            println!("request_length={len}");
        }
        other => panic!("unknown mode {other:?}: crl-populate, crl-publish or ocsp-populate"),
    }
}
