//! Service configuration: an optional `kofu.toml` (strict: unknown keys are errors) with a
//! `KOFU_*` environment overlay. Defaults need no file at all: data under `./data`, SQLite at
//! `<data>/kofu.db`, the CA set-up from `ca-config/ca.toml`.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

pub mod files;
mod listeners;
pub use listeners::{Audience, ListenersConfig};

/// A secret value whose `Debug` output is redacted.
#[derive(Clone, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wrap a value.
    pub fn new(v: T) -> Self {
        Secret(v)
    }
    /// The secret itself; call sites show where secrets are used.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where CA private keys live.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyBackend {
    /// Encrypted PKCS#8 PEM files under `<data>/ca/`.
    #[default]
    File,
    /// A PKCS#11 token (an HSM; SoftHSM2 in tests).
    Pkcs11,
}

/// PKCS#11 settings for CA keys.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so).
    pub module: PathBuf,
    /// Label of the token that holds the CA keys.
    pub token_label: String,
    /// User PIN; better given as `KOFU_PKCS11_PIN`.
    #[serde(default)]
    pub pin: Option<Secret<String>>,
}

/// How kofu reaches the resident registry (住民基本台帳).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// `extract` (imported CSV extracts, the default) or `http` (a registry service).
    pub connector: String,
    /// Base URL of the HTTP registry (`http` connector).
    pub url: Option<String>,
    /// Bearer token for the HTTP registry; better given as `KOFU_REGISTRY_TOKEN`.
    pub token: Option<Secret<String>>,
    /// Whole-request timeout in milliseconds.
    pub timeout_ms: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            connector: "extract".into(),
            url: None,
            token: None,
            timeout_ms: 5000,
        }
    }
}

/// IC cards: the PKCS#11 module of the card readers and how keys are made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CardConfig {
    /// PKCS#11 module of the card readers: SoftHSM2 in development (each token a card),
    /// OpenSC (`/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so`) for real readers.
    pub module: PathBuf,
    /// `auto` (on the card when it can generate RSA keys, else in software and written),
    /// `card` or `software`.
    pub keygen: String,
    /// Cards written at once (0: one per CPU core).
    pub workers: usize,
    /// Seconds a batch run's lease lasts without renewal: after an instance running a batch
    /// stops (killed), another may take the run over this long after its last renewal.
    pub lease_s: i64,
}

impl Default for CardConfig {
    fn default() -> Self {
        CardConfig {
            module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
            keygen: "auto".into(),
            workers: 0,
            lease_s: 30,
        }
    }
}

/// Staff credentials and logins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Days an API token lasts unless given another lifetime (at most `token_max_days`).
    pub token_days: i64,
    /// Longest lifetime a token may be given.
    pub token_max_days: i64,
    /// Failed logins from one source address that lock that account for that address.
    pub failures_per_source: i64,
    /// Failed logins from all addresses together that lock the account everywhere.
    pub failures_per_account: i64,
    /// The window in which failures from one address count, and how long that lock lasts
    /// (seconds).
    pub lockout_window_s: i64,
    /// The window of the per-account ceiling (seconds).
    pub account_window_s: i64,
    /// Refusals (403) of one staff credential written to the audit log one by one per
    /// minute; beyond them they are counted and summarised once a minute.
    pub refusals_audited_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_days: 90,
            token_max_days: 365,
            failures_per_source: 5,
            failures_per_account: 50,
            lockout_window_s: 15 * 60,
            account_window_s: 60 * 60,
            refusals_audited_per_minute: 10,
        }
    }
}

impl CardConfig {
    /// The key generation mode.
    pub fn keygen(&self) -> Result<crate::card::token::Keygen> {
        crate::card::token::Keygen::parse(&self.keygen).ok_or_else(|| {
            Error::Config(format!(
                "cards.keygen: expected auto, card or software, got {:?}",
                self.keygen
            ))
        })
    }

    /// Cards written at once.
    pub fn workers(&self) -> usize {
        if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.workers
        }
    }
}

/// Outgoing e-mail over SMTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// SMTP server; without one, notices stay queued.
    pub host: Option<String>,
    /// Port (587 for STARTTLS, 465 for TLS, 25 for none).
    pub port: u16,
    /// `starttls`, `tls` or `none` (plain SMTP: only for a relay on the same host).
    pub security: String,
    /// SMTP user name.
    pub username: Option<String>,
    /// SMTP password; better given as `KOFU_SMTP_PASSWORD`.
    pub password: Option<Secret<String>>,
    /// Sender, `Name <address>`.
    pub from: String,
    /// Seconds to wait for the server.
    pub timeout_s: u64,
    /// Seconds between delivery rounds of `kofu serve`.
    pub poll_s: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            host: None,
            port: 587,
            security: "starttls".into(),
            username: None,
            password: None,
            from: "社会保障カード発行事務局 <noreply@example.jp>".into(),
            timeout_s: 10,
            poll_s: 15,
        }
    }
}

/// Delivery documents and the office they come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Font for labels, PIN mailers and notices (embedded as a subset).
    pub font: PathBuf,
    /// The office's name, as the return address and signature.
    pub office_name: String,
    /// The office's postal code (7 digits).
    pub office_postal_code: String,
    /// The office's address.
    pub office_address: String,
    /// The office's telephone number.
    pub office_phone: String,
    /// When the counter is open.
    pub counter_hours: String,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            font: PathBuf::from("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
            office_name: "社会保障カード発行事務局".into(),
            office_postal_code: "1000013".into(),
            office_address: "東京都千代田区霞が関1-2-2".into(),
            office_phone: "03-0000-0000".into(),
            counter_hours: "平日 9時〜17時".into(),
        }
    }
}

impl DeliveryConfig {
    /// The office as documents show it.
    pub fn office(&self) -> crate::pdf::Office {
        crate::pdf::Office {
            name: self.office_name.clone(),
            postal_code: self.office_postal_code.clone(),
            address: self.office_address.clone(),
            phone: self.office_phone.clone(),
            counter_hours: self.counter_hours.clone(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data directory (database, CA files).
    pub data_dir: PathBuf,
    /// `sqlite://path`, a plain path, or `postgres://…`. Default: `<data_dir>/kofu.db`.
    pub database_url: Option<String>,
    /// Listen address of `kofu serve`.
    pub listen: String,
    /// Address of the TLS listener (verifiers' mutual TLS; staff only if `listeners.tls`
    /// says so). None: no TLS listener. Its server certificate comes from the infrastructure CA.
    pub tls_listen: Option<String>,
    /// Host names in the TLS listener's certificate.
    pub tls_hostnames: Vec<String>,
    /// Who each listener serves (the TLS listener: verifiers only by default).
    pub listeners: ListenersConfig,
    /// Public base URL; CRL distribution points and AIA URLs are built from it.
    pub public_base_url: String,
    /// The CA set-up file.
    pub ca_config: PathBuf,
    /// File holding the CA key passphrase (alternative: `KOFU_CA_PASSPHRASE`).
    pub ca_passphrase_file: Option<PathBuf>,
    /// Name of the environment variable that holds the CA passphrase (default
    /// `KOFU_CA_PASSPHRASE`); the passphrase itself never goes in a file you commit.
    pub ca_passphrase_env: String,
    /// The passphrase read from that variable at load time.
    #[serde(skip)]
    pub ca_passphrase: Option<Secret<String>>,
    /// Where CA keys live.
    pub ca_key_backend: KeyBackend,
    /// PKCS#11 token for CA keys, when `ca_key_backend = "pkcs11"`.
    pub pkcs11: Option<Pkcs11Config>,
    /// Serial-number prefix of this instance (1..=65535), distinct per instance sharing a database.
    pub instance_prefix: u16,
    /// This instance's name, as other instances and the pages name it (who holds a batch run
    /// or the duties). Default: the host name and the serial prefix.
    pub instance_name: Option<String>,
    /// Force the session cookie's Secure flag; default: on when the public URL is https.
    pub secure_cookies: Option<bool>,
    /// Database connection pool size.
    pub pool_size: u32,
    /// File holding the personal-data key (64 hex digits); or `KOFU_DATA_KEY`.
    pub data_key_file: Option<PathBuf>,
    /// The personal-data key given in the environment.
    #[serde(skip)]
    pub data_key: Option<Secret<String>>,
    /// The resident-registry connector.
    pub registry: RegistryConfig,
    /// Load the synthetic demo registry extract on first start (development only).
    pub demo_data: bool,
    /// IC cards.
    pub cards: CardConfig,
    /// Delivery documents.
    pub delivery: DeliveryConfig,
    /// E-mail.
    pub mail: MailConfig,
    /// Staff credentials and logins.
    pub auth: AuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            database_url: None,
            listen: "127.0.0.1:8080".into(),
            tls_listen: None,
            tls_hostnames: vec!["localhost".into()],
            listeners: ListenersConfig::default(),
            public_base_url: "http://127.0.0.1:8080".into(),
            ca_config: PathBuf::from("ca-config/ca.toml"),
            ca_passphrase_file: None,
            ca_passphrase_env: "KOFU_CA_PASSPHRASE".into(),
            ca_passphrase: None,
            ca_key_backend: KeyBackend::File,
            pkcs11: None,
            instance_prefix: 1,
            secure_cookies: None,
            pool_size: 8,
            data_key_file: None,
            data_key: None,
            registry: RegistryConfig::default(),
            demo_data: true,
            cards: CardConfig::default(),
            delivery: DeliveryConfig::default(),
            mail: MailConfig::default(),
            auth: AuthConfig::default(),
            instance_name: None,
        }
    }
}

impl Config {
    /// Load `path` (or `KOFU_CONFIG`, or `./kofu.toml` if present), then apply the environment.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let env_path = std::env::var_os("KOFU_CONFIG").map(PathBuf::from);
        let chosen = path.map(Path::to_path_buf).or(env_path);
        let mut cfg = match chosen {
            Some(p) => Self::from_file(&p)?,
            None if Path::new("kofu.toml").exists() => Self::from_file(Path::new("kofu.toml"))?,
            None => Config::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn from_file(p: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", p.display())))?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", p.display())))
    }

    /// Overlay `KOFU_*` variables; `get` is the environment (a parameter so tests can pass one).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = get("KOFU_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("KOFU_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("KOFU_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("KOFU_TLS_LISTEN") {
            self.tls_listen = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = get("KOFU_TLS_SERVES") {
            self.listeners.tls = Audience::parse_list("KOFU_TLS_SERVES", &v)?;
        }
        if let Some(v) = get("KOFU_LISTEN_SERVES") {
            self.listeners.plain = Audience::parse_list("KOFU_LISTEN_SERVES", &v)?;
        }
        if let Some(v) = get("KOFU_TLS_HOSTNAMES") {
            self.tls_hostnames = v
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect();
        }
        if let Some(v) = get("KOFU_PUBLIC_BASE_URL") {
            self.public_base_url = v;
        }
        if let Some(v) = get("KOFU_CA_CONFIG") {
            self.ca_config = v.into();
        }
        if let Some(v) = get("KOFU_CA_PASSPHRASE_FILE") {
            self.ca_passphrase_file = Some(v.into());
        }
        if let Some(v) = get("KOFU_CA_PASSPHRASE_ENV") {
            self.ca_passphrase_env = v;
        }
        if let Some(v) = get(&self.ca_passphrase_env) {
            self.ca_passphrase = Some(Secret::new(v));
        }
        if let Some(v) = get("KOFU_CA_KEY_BACKEND") {
            self.ca_key_backend = match v.as_str() {
                "file" => KeyBackend::File,
                "pkcs11" => KeyBackend::Pkcs11,
                other => {
                    return Err(Error::Config(format!(
                        "KOFU_CA_KEY_BACKEND: expected file or pkcs11, got {other:?}"
                    )));
                }
            };
        }
        if let Some(v) = get("KOFU_PKCS11_MODULE") {
            self.pkcs11.get_or_insert_with(Default::default).module = v.into();
        }
        if let Some(v) = get("KOFU_PKCS11_TOKEN") {
            self.pkcs11.get_or_insert_with(Default::default).token_label = v;
        }
        if let Some(v) = get("KOFU_PKCS11_PIN") {
            self.pkcs11.get_or_insert_with(Default::default).pin = Some(Secret::new(v));
        }
        if let Some(v) = get("KOFU_INSTANCE_PREFIX") {
            self.instance_prefix = v.parse().map_err(|_| {
                Error::Config(format!(
                    "KOFU_INSTANCE_PREFIX: expected 1..65535, got {v:?}"
                ))
            })?;
        }
        if let Some(v) = get("KOFU_INSTANCE_NAME") {
            self.instance_name = Some(v);
        }
        if let Some(v) = get("KOFU_TOKEN_DAYS") {
            self.auth.token_days = v
                .parse()
                .map_err(|_| Error::Config(format!("KOFU_TOKEN_DAYS: not a number: {v:?}")))?;
        }
        if let Some(v) = get("KOFU_CARD_LEASE_S") {
            self.cards.lease_s = v
                .parse()
                .map_err(|_| Error::Config(format!("KOFU_CARD_LEASE_S: not a number: {v:?}")))?;
        }
        if let Some(v) = get("KOFU_DATA_KEY_FILE") {
            self.data_key_file = Some(v.into());
        }
        if let Some(v) = get("KOFU_DATA_KEY") {
            self.data_key = Some(Secret::new(v));
        }
        if let Some(v) = get("KOFU_REGISTRY_URL") {
            self.registry.connector = "http".into();
            self.registry.url = Some(v);
        }
        if let Some(v) = get("KOFU_REGISTRY_TOKEN") {
            self.registry.token = Some(Secret::new(v));
        }
        if let Some(v) = get("KOFU_REGISTRY_TIMEOUT_MS") {
            self.registry.timeout_ms = v.parse().map_err(|_| {
                Error::Config(format!("KOFU_REGISTRY_TIMEOUT_MS: not a number: {v:?}"))
            })?;
        }
        if let Some(v) = get("KOFU_DEMO_DATA") {
            self.demo_data = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = get("KOFU_CARD_MODULE") {
            self.cards.module = v.into();
        }
        if let Some(v) = get("KOFU_CARD_KEYGEN") {
            self.cards.keygen = v;
        }
        if let Some(v) = get("KOFU_CARD_WORKERS") {
            self.cards.workers = v
                .parse()
                .map_err(|_| Error::Config(format!("KOFU_CARD_WORKERS: not a number: {v:?}")))?;
        }
        if let Some(v) = get("KOFU_DELIVERY_FONT") {
            self.delivery.font = v.into();
        }
        if let Some(v) = get("KOFU_SMTP_HOST") {
            self.mail.host = Some(v);
        }
        if let Some(v) = get("KOFU_SMTP_PORT") {
            self.mail.port = v
                .parse()
                .map_err(|_| Error::Config(format!("KOFU_SMTP_PORT: not a port: {v:?}")))?;
        }
        if let Some(v) = get("KOFU_SMTP_SECURITY") {
            self.mail.security = v;
        }
        if let Some(v) = get("KOFU_SMTP_USERNAME") {
            self.mail.username = Some(v);
        }
        if let Some(v) = get("KOFU_SMTP_PASSWORD") {
            self.mail.password = Some(Secret::new(v));
        }
        if let Some(v) = get("KOFU_MAIL_POLL_S") {
            self.mail.poll_s = v
                .parse()
                .map_err(|_| Error::Config(format!("KOFU_MAIL_POLL_S: not a number: {v:?}")))?;
        }
        if let Some(v) = get("KOFU_MAIL_FROM") {
            self.mail.from = v;
        }
        if let Some(v) = get("KOFU_POOL_SIZE") {
            self.pool_size = v
                .parse()
                .map_err(|_| Error::Config(format!("KOFU_POOL_SIZE: not a number: {v:?}")))?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if self.instance_prefix == 0 {
            return Err(Error::Config("instance_prefix must be 1..65535".into()));
        }
        if self.cards.lease_s < 5 {
            return Err(Error::Config(
                "cards.lease_s must be at least 5 seconds".into(),
            ));
        }
        if !(1..=self.auth.token_max_days).contains(&self.auth.token_days) {
            return Err(Error::Config(format!(
                "auth.token_days must be 1..={} (auth.token_max_days)",
                self.auth.token_max_days
            )));
        }
        if self.auth.failures_per_source < 1
            || self.auth.failures_per_account < self.auth.failures_per_source
        {
            return Err(Error::Config(
                "auth.failures_per_source must be at least 1 and auth.failures_per_account at least as many".into(),
            ));
        }
        if self.ca_key_backend == KeyBackend::Pkcs11 && self.pkcs11.is_none() {
            return Err(Error::Config(
                "ca_key_backend = pkcs11 needs [pkcs11] module and token_label".into(),
            ));
        }
        match (self.registry.connector.as_str(), &self.registry.url) {
            ("extract", _) | ("http", Some(_)) => {}
            ("http", None) => {
                return Err(Error::Config(
                    "registry.connector = http needs registry.url".into(),
                ));
            }
            (other, _) => {
                return Err(Error::Config(format!(
                    "registry.connector: expected extract or http, got {other:?}"
                )));
            }
        }
        self.cards.keygen()?;
        if !(self.public_base_url.starts_with("http://")
            || self.public_base_url.starts_with("https://"))
        {
            return Err(Error::Config(
                "public_base_url must start with http:// or https://".into(),
            ));
        }
        Ok(())
    }

    /// This instance's name for leases and pages.
    pub fn instance(&self) -> String {
        match &self.instance_name {
            Some(n) => n.clone(),
            None => {
                let host = std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "localhost".into());
                format!("{host}/{}", self.instance_prefix)
            }
        }
    }

    /// The database URL actually used.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| self.data_dir.join("kofu.db").to_string_lossy().into_owned())
    }

    /// Where CA certificates and encrypted key files are written.
    pub fn ca_dir(&self) -> PathBuf {
        self.data_dir.join("ca")
    }

    /// Whether the session cookie gets the Secure flag.
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies
            .unwrap_or(self.public_base_url.starts_with("https://"))
    }

    /// The personal-data key file the first start of `kofu serve` generates when none is
    /// configured.
    pub fn generated_data_key_file(&self) -> PathBuf {
        self.data_dir.join("data-key")
    }

    /// The CA key passphrase file the first start generates when none is configured.
    pub fn generated_ca_passphrase_file(&self) -> PathBuf {
        self.data_dir.join("ca-passphrase")
    }

    /// The personal-data key: `KOFU_DATA_KEY`, else the configured file, else the file the
    /// first start generated in the data directory (so the CLI on the same data directory
    /// finds what `kofu serve` made); None if none of these.
    pub fn data_key(&self) -> Result<Option<crate::pii::DataKey>> {
        if let Some(k) = &self.data_key {
            return crate::pii::DataKey::from_hex(k.expose()).map(Some);
        }
        read_secret_file(
            "data_key_file",
            self.data_key_file.as_ref(),
            self.generated_data_key_file(),
        )?
        .map(|s| crate::pii::DataKey::from_hex(&s))
        .transpose()
    }

    /// The personal-data key, or a clear error naming how to set it.
    pub fn require_data_key(&self) -> Result<crate::pii::DataKey> {
        self.data_key()?.ok_or_else(|| {
            Error::Config(
                "no personal-data key: set KOFU_DATA_KEY or data_key_file (64 hex digits), or \
                 start `kofu serve` once on this data directory to generate one"
                    .into(),
            )
        })
    }

    /// The CA key passphrase: the configured environment variable, else the configured file,
    /// else the file the first start generated in the data directory.
    pub fn ca_passphrase(&self) -> Result<Option<Secret<String>>> {
        if let Some(p) = &self.ca_passphrase {
            return Ok(Some(p.clone()));
        }
        Ok(read_secret_file(
            "ca_passphrase_file",
            self.ca_passphrase_file.as_ref(),
            self.generated_ca_passphrase_file(),
        )?
        .map(|s| Secret::new(s.trim_end_matches(['\r', '\n']).to_string())))
    }
}

/// The text of the configured secret file, else of the one the first start generated (when
/// it exists); None if neither. Errors name the setting.
fn read_secret_file(
    setting: &str,
    configured: Option<&PathBuf>,
    generated: PathBuf,
) -> Result<Option<String>> {
    let Some(f) = configured.or(generated.exists().then_some(&generated)) else {
        return Ok(None);
    };
    std::fs::read_to_string(f)
        .map(Some)
        .map_err(|e| Error::Config(format!("{setting} {}: {e}", f.display())))
}

#[cfg(test)]
mod tests;
