//! Shared test harness: a fresh database per test on each backend (SQLite always;
//! PostgreSQL when reachable, required with KOFU_TEST_PG=required), a CA made from the
//! shipped ca-config, CSRs and identities, and the external checkers (openssl, pkilint).

#![allow(dead_code)]

/// Call the app with a bearer token: `call!(app, post, uri, token)` or with a JSON body
/// `call!(app, post, uri, token, json)`. Gives the status and the JSON body (Null if none).
macro_rules! call {
    (@send $app:expr, $req:expr, $token:expr) => {{
        let req = $req.insert_header(("authorization", format!("Bearer {}", $token)));
        let resp = actix_web::test::call_service(&$app, req.to_request()).await;
        let status = resp.status();
        let body: serde_json::Value =
            serde_json::from_slice(&actix_web::test::read_body(resp).await).unwrap_or(serde_json::Value::Null);
        (status, body)
    }};
    ($app:expr, $method:ident, $uri:expr, $token:expr) => {
        call!(@send $app, actix_web::test::TestRequest::$method().uri(&$uri), $token)
    };
    ($app:expr, $method:ident, $uri:expr, $token:expr, $json:expr) => {
        call!(@send $app, actix_web::test::TestRequest::$method().uri(&$uri).set_json($json), $token)
    };
}

mod browser;
mod smtp;
mod stack;
mod written;
pub use browser::*;
pub use smtp::*;
pub use stack::*;
pub use written::*;

use chrono::{DateTime, TimeZone, Utc};
use diesel::{Connection, RunQueryDsl};
use kofu::audit::Actor;
use kofu::ca::Hierarchy;
use kofu::ca::config::CaConfig;
use kofu::ca::csr::{self, CheckedCsr};
use kofu::ca::identity::Identity;
use kofu::config::{Config, Secret};
use kofu::db::{self, DbPool, PooledConn};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509ReqBuilder;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixed "now" of the tests: 21 November 2026, 12:00 JST.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 3, 0, 0)
        .single()
        .expect("valid time")
}

pub const PASSPHRASE: &str = "test passphrase for kofu CA keys";
pub const DATA_KEY_HEX: &str = "6b6f667520746573742064617461206b6579202d2d206e6f7420666f72207573";

/// What the database holds on disk: the SQLite file with its WAL and shared memory, or a
/// `pg_dump --data-only` (of `tables`, or of everything). SQLite's files are read by another
/// process (`cat`): closing a descriptor of the database file in this one would drop this
/// process's SQLite locks (POSIX fcntl semantics) and with them its view of the WAL.
pub fn database_bytes(env: &Env, tables: &[&str]) -> Vec<u8> {
    if env.db.label == "sqlite" {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let out = Command::new("cat")
                .arg(format!("{}{suffix}", env.db.url))
                .output()
                .unwrap();
            all.extend(out.stdout);
        }
        return all;
    }
    let mut cmd = Command::new("pg_dump");
    cmd.arg("--data-only");
    for t in tables {
        cmd.args(["-t", t]);
    }
    let out = run(cmd.arg(&env.db.url));
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A certificate's DER as stored, opened (signing certificates are sealed at rest).
pub fn opened(stored: &[u8]) -> Vec<u8> {
    kofu::service::cert_store::open(Some(&data_key()), stored).expect("certificate opens")
}

pub fn data_key() -> kofu::pii::DataKey {
    kofu::pii::DataKey::from_hex(DATA_KEY_HEX).expect("data key")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn kofu_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kofu")
}

/// A database for one test.
pub struct TestDb {
    pub url: String,
    pub label: &'static str,
    pg_name: Option<String>,
}

fn pg_base() -> String {
    std::env::var("KOFU_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

impl TestDb {
    fn sqlite(dir: &Path) -> Self {
        TestDb {
            url: dir.join("kofu.db").to_string_lossy().into_owned(),
            label: "sqlite",
            pg_name: None,
        }
    }

    fn postgres() -> Option<Self> {
        let mode = std::env::var("KOFU_TEST_PG").unwrap_or_default();
        if mode == "off" {
            return None;
        }
        let admin_url = format!("{}/postgres", pg_base());
        let mut admin = match diesel::PgConnection::establish(&admin_url) {
            Ok(c) => c,
            Err(e) if mode == "required" => {
                panic!("KOFU_TEST_PG=required but PostgreSQL is not reachable at {admin_url}: {e}")
            }
            Err(_) => {
                eprintln!("note: PostgreSQL not reachable; running on SQLite only");
                return None;
            }
        };
        let mut b = [0u8; 8];
        openssl::rand::rand_bytes(&mut b).expect("random");
        let name = format!("kofu_t_{}", hex::encode(b));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create test database");
        Some(TestDb {
            url: format!("{}/{name}", pg_base()),
            label: "postgres",
            pg_name: Some(name),
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut admin) =
                diesel::PgConnection::establish(&format!("{}/postgres", pg_base()))
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

/// One test environment: temp dir, config, migrated database. Field order matters: the
/// pool closes before the database is dropped.
pub struct Env {
    pub pool: DbPool,
    pub cfg: Config,
    pub db: TestDb,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new(db: TestDb, dir: tempfile::TempDir) -> Self {
        let cfg = Config {
            data_dir: dir.path().join("data"),
            database_url: Some(db.url.clone()),
            ca_config: repo().join("ca-config/ca.toml"),
            ca_passphrase: Some(Secret::new(PASSPHRASE.to_string())),
            pool_size: 4,
            ..Config::default()
        };
        let pool = db::pool(&db.url, cfg.pool_size).expect("pool");
        db::migrate(&mut pool.get().expect("conn")).expect("migrate");
        Env { pool, cfg, db, dir }
    }

    pub fn conn(&self) -> PooledConn {
        self.pool.get().expect("connection")
    }

    pub fn ca_config(&self) -> CaConfig {
        CaConfig::load(&self.cfg.ca_config).expect("ca config")
    }

    /// Run the CA ceremony and load the issuing CAs.
    pub fn init_ca(&self) -> Hierarchy {
        kofu::service::ca::init(
            &mut self.conn(),
            &self.cfg,
            &self.ca_config(),
            &Actor::new("test", "cli"),
            now(),
        )
        .expect("ca init");
        self.load_ca()
    }

    pub fn load_ca(&self) -> Hierarchy {
        kofu::service::ca::load(&mut self.conn(), &self.cfg, self.ca_config()).expect("load ca")
    }

    /// Environment variables for running the `kofu` binary against this environment.
    pub fn command(&self) -> Command {
        let mut c = Command::new(kofu_bin());
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KOFU_DATA_DIR", &self.cfg.data_dir)
            .env("KOFU_DATABASE_URL", &self.db.url)
            .env("KOFU_CA_CONFIG", &self.cfg.ca_config)
            .env("KOFU_CA_PASSPHRASE", PASSPHRASE)
            .env("KOFU_DATA_KEY", DATA_KEY_HEX)
            .current_dir(self.dir.path());
        c
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Every backend available: SQLite, and PostgreSQL per KOFU_TEST_PG.
pub fn envs() -> Vec<Env> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().expect("tempdir");
    out.push(Env::new(TestDb::sqlite(dir.path()), dir));
    if let Some(pg) = TestDb::postgres() {
        out.push(Env::new(pg, tempfile::tempdir().expect("tempdir")));
    }
    out
}

/// Run `f` on each backend, naming the backend if it panics.
pub fn each_backend(f: impl Fn(&Env)) {
    for env in envs() {
        eprintln!("--- backend: {}", env.db.label);
        f(&env);
    }
}

/// A fresh RSA-2048 key and a CSR for it.
pub fn csr(cn: &str, dns: &[&str]) -> (PKey<Private>, Vec<u8>) {
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("pkey");
    (key.clone(), csr_for(&key, cn, dns))
}

pub fn csr_for(key: &PKey<Private>, cn: &str, dns: &[&str]) -> Vec<u8> {
    let mut b = X509ReqBuilder::new().expect("req");
    let mut name = openssl::x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", cn).expect("cn");
    b.set_subject_name(&name.build()).expect("subject");
    b.set_pubkey(key).expect("pubkey");
    if !dns.is_empty() {
        let mut san = openssl::x509::extension::SubjectAlternativeName::new();
        for d in dns {
            san.dns(d);
        }
        let mut stack = openssl::stack::Stack::new().expect("stack");
        stack
            .push(san.build(&b.x509v3_context(None)).expect("san"))
            .expect("push");
        b.add_extensions(&stack).expect("extensions");
    }
    b.sign(key, MessageDigest::sha256()).expect("sign");
    b.build().to_pem().expect("pem")
}

pub fn checked_csr(cn: &str, dns: &[&str]) -> (PKey<Private>, CheckedCsr) {
    let (k, pem) = csr(cn, dns);
    (k, csr::check(&pem).expect("csr accepted"))
}

pub const HOLDER_JSON: &str = r#"{"name":"髙橋 﨑子","name_kana":"タカハシ サキコ","birth_date":"1984-02-29","sex":"female","address":"東京都千代田区千代田一丁目1番1号","postal_code":"100-0001","municipality_code":"131016"}"#;

pub fn holder() -> Identity {
    Identity::from_json(HOLDER_JSON).expect("identity")
}

/// Run a command, returning its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `openssl verify -x509_strict` of `cert` against the root, with the issuing CA untrusted.
pub fn openssl_verify(root: &Path, issuing: Option<&Path>, cert: &Path, extra: &[&str]) -> Output {
    let mut c = Command::new("openssl");
    c.arg("verify")
        .arg("-x509_strict")
        .args(extra)
        .arg("-CAfile")
        .arg(root);
    if let Some(i) = issuing {
        c.arg("-untrusted").arg(i);
    }
    c.arg(cert);
    run(&mut c)
}

/// pkilint's findings of ERROR or FATAL severity (empty = clean).
pub fn pkilint_errors(tool: &str, file: &Path) -> Vec<String> {
    let out = run(Command::new(tool).arg("lint").arg(file));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("Traceback"),
        "{tool} crashed on {}: {text}",
        file.display()
    );
    text.lines()
        .filter(|l| l.contains("(ERROR)") || l.contains("(FATAL)"))
        .map(str::to_string)
        .collect()
}

pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> &Path {
    std::fs::write(path, bytes).expect("write");
    path
}

/// A staff user whose one-time password is already replaced, with a bearer token.
pub fn ready_user(
    env: &Env,
    name: &str,
    role: kofu::service::users::Role,
    municipality: Option<&str>,
) -> String {
    use kofu::service::users;
    let actor = Actor::new("test", "cli");
    let (u, _) = users::add(&mut env.conn(), name, role, municipality, &actor, now()).unwrap();
    kofu::db::models::user::User::set_password(
        &mut env.conn(),
        u.id,
        &users::hash_password("a long enough password").unwrap(),
    )
    .unwrap();
    kofu::service::auth::create_token(&mut env.conn(), u.id, "test", 90, &actor, now())
        .unwrap()
        .1
}

/// A web session of a ready user (password "a long enough password"), as the login form
/// would make it from 127.0.0.1.
pub fn login_session(env: &Env, name: &str) -> kofu::service::auth::NewSession {
    let refusals = kofu::service::refusals::Refusals::default();
    let ctx = kofu::service::auth::LoginContext {
        source: "127.0.0.1",
        policy: &env.cfg.auth,
        refusals: &refusals,
    };
    kofu::service::auth::login(&mut env.conn(), &ctx, name, "a long enough password", now())
        .unwrap()
}

/// `kofu serve` in a child process on a free loopback port, killed when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
    pub agent: ureq::Agent,
}

impl Server {
    /// Start `cmd` (an `Env::command()` with whatever else the test needs) as `kofu serve`
    /// and wait until /healthz answers.
    pub fn start(cmd: Command) -> Server {
        Self::start_on(cmd, Self::free_ports::<1>()[0])
    }

    /// `n` distinct free loopback ports (held together while chosen, so never the same).
    pub fn free_ports<const N: usize>() -> [u16; N] {
        let held: Vec<std::net::TcpListener> = (0..N)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        std::array::from_fn(|i| held[i].local_addr().unwrap().port())
    }

    /// As [`Server::start`], with a TLS listener on another port as well; returns it.
    pub fn start_with_tls(mut cmd: Command) -> (Server, u16) {
        let [port, tls] = Self::free_ports::<2>();
        cmd.env("KOFU_TLS_LISTEN", format!("127.0.0.1:{tls}"));
        (Self::start_on(cmd, port), tls)
    }

    /// As [`Server::start`], with its standard error written to `log`.
    pub fn start_logged(cmd: Command, log: &Path) -> Server {
        let file = std::fs::File::create(log).unwrap();
        Self::start_with(cmd, Self::free_ports::<1>()[0], file.into())
    }

    fn start_on(cmd: Command, port: u16) -> Server {
        Self::start_with(cmd, port, std::process::Stdio::null())
    }

    fn start_with(mut cmd: Command, port: u16, stderr: std::process::Stdio) -> Server {
        let child = cmd
            .env("KOFU_LISTEN", format!("127.0.0.1:{port}"))
            .env("KOFU_PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}"))
            .env("KOFU_DEMO_DATA", "0")
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while agent.get(&format!("{base}/healthz")).call().is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "kofu serve did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Server { child, base, agent }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stored card number as the checked type the services take.
pub fn card_number(n: &str) -> kofu::card::number::CardNumber {
    kofu::card::number::parse(n).unwrap()
}

/// ca-config's minimum age for a signing certificate (what the runner and profile use).
pub fn signing_min_age() -> u32 {
    kofu::ca::config::CaConfig::load(&repo().join("ca-config/ca.toml"))
        .unwrap()
        .signing_min_age
}

/// The application state of a test: the environment's database, a fixed clock, no CA.
pub fn state(env: &Env) -> kofu::app::AppState {
    let key = data_key();
    let db = kofu::db::Db {
        read: env.pool.clone(),
        write: env.pool.clone(),
    };
    let registry = std::sync::Arc::new(kofu::registry::ExtractRegistry::new(key.clone()));
    kofu::app::AppState::new(
        db,
        env.cfg.clone(),
        std::sync::Arc::new(kofu::clock::FixedClock(now())),
    )
    .with_data_key(key, registry)
}

/// One ready user (password changed) per role, with a bearer token.
pub fn tokens(env: &Env) -> std::collections::HashMap<kofu::service::users::Role, String> {
    use kofu::service::users::Role;
    let mut out = std::collections::HashMap::new();
    for role in Role::ALL {
        let muni = (role == Role::Clerk).then_some("131016");
        out.insert(
            role,
            ready_user(env, &format!("user-{}", role.as_str()), role, muni),
        );
    }
    out
}

/// ca.toml with public revocation data and `shards` CRL partitions.
pub fn public_ca_config(env: &Env, shards: u16) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("ca-config/ca.toml"))
        .unwrap()
        .replace(
            "revocation_access = \"verifiers\"",
            "revocation_access = \"public\"",
        )
        .replace("shards = 0", &format!("shards = {shards}"))
        // The test publishes itself; the server's schedule must not race its ETag checks.
        .replace("publish_delay_seconds = 60", "publish_delay_seconds = 3600");
    let path = env.path(&format!("ca-{shards}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}
