//! Application state: everything a handler or a background worker needs travels in
//! [`AppState`] (no global statics), built by [`AppState::new`] for `kofu serve` and the tests
//! alike. The actix App factory is `http::app`; the background workers are [`workers`].

pub mod workers;

use crate::ca::Hierarchy;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::{Db, PooledConn};
use crate::error::{Error, Result};
use crate::pii::DataKey;
use crate::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters exported at /metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by status class (index 1..=5 for 1xx..5xx).
    pub responses: [AtomicU64; 6],
    /// Certificates issued by this process.
    pub certificates_issued: AtomicU64,
    /// Failed logins seen by this process.
    pub logins_failed: AtomicU64,
    /// OCSP answers: from the pre-signed cache, signed for the request, error statuses.
    pub ocsp: [AtomicU64; 3],
}

impl Metrics {
    /// Count a response status.
    pub fn count_status(&self, status: u16) {
        let i = usize::from(status / 100).min(5);
        self.responses[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("# HELP kofu_http_responses_total HTTP responses by status class.\n");
        s.push_str("# TYPE kofu_http_responses_total counter\n");
        for (i, c) in self.responses.iter().enumerate().skip(1) {
            s.push_str(&format!(
                "kofu_http_responses_total{{class=\"{i}xx\"}} {}\n",
                c.load(Ordering::Relaxed)
            ));
        }
        s.push_str("# HELP kofu_certificates_issued_total Certificates issued by this process.\n");
        s.push_str("# TYPE kofu_certificates_issued_total counter\n");
        s.push_str(&format!(
            "kofu_certificates_issued_total {}\n",
            self.certificates_issued.load(Ordering::Relaxed)
        ));
        s.push_str("# HELP kofu_logins_failed_total Failed staff logins seen by this process.\n");
        s.push_str("# TYPE kofu_logins_failed_total counter\n");
        s.push_str(&format!(
            "kofu_logins_failed_total {}\n",
            self.logins_failed.load(Ordering::Relaxed)
        ));
        s.push_str("# HELP kofu_ocsp_responses_total OCSP responses by how they were answered.\n");
        s.push_str("# TYPE kofu_ocsp_responses_total counter\n");
        for (i, how) in ["cached", "signed", "error"].iter().enumerate() {
            s.push_str(&format!(
                "kofu_ocsp_responses_total{{answer=\"{how}\"}} {}\n",
                self.ocsp[i].load(Ordering::Relaxed)
            ));
        }
        s
    }
}

/// Shared state of the service.
#[derive(Clone)]
pub struct AppState {
    /// Database pools.
    pub db: Db,
    /// Configuration.
    pub config: Arc<Config>,
    /// The loaded CA hierarchy (None when the service runs without CA keys).
    pub ca: Option<Arc<Hierarchy>>,
    /// Time.
    pub clock: SharedClock,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Personal-data key (None when the process has none: intake is then unavailable).
    pub pii: Option<DataKey>,
    /// The resident-registry connector.
    pub registry: Option<Arc<dyn Registry>>,
    /// The documents' font, parsed on first use.
    pub font: Arc<std::sync::OnceLock<Arc<crate::pdf::Font>>>,
    /// The OCSP responder (None when the CA is not loaded).
    pub ocsp: Option<Arc<crate::service::ocsp::OcspService>>,
    /// The newest CRLs as served, by file name.
    pub crls: Arc<crate::service::crl::CrlCache>,
    /// Verifiers' rate limits and counted requests.
    pub traffic: Arc<crate::service::verifiers::Traffic>,
    /// Staff refusals and failed logins beyond what is audited one by one.
    pub refusals: Arc<crate::service::refusals::Refusals>,
    /// Whether this instance runs the instance duties (CRLs, mail, the registry feed, …).
    pub duties: Arc<crate::service::duties::Duties>,
}

impl AppState {
    /// The state of a process without CA keys, personal-data key or registry connector (add
    /// them with [`AppState::with_data_key`] and [`AppState::with_ca`]).
    pub fn new(db: Db, config: Config, clock: SharedClock) -> Self {
        let refusals =
            crate::service::refusals::Refusals::new(config.auth.refusals_audited_per_minute);
        let duties = crate::service::duties::Duties::new(config.instance());
        AppState {
            db,
            config: Arc::new(config),
            ca: None,
            clock,
            metrics: Arc::new(Metrics::default()),
            pii: None,
            registry: None,
            font: Default::default(),
            ocsp: None,
            crls: Default::default(),
            traffic: Default::default(),
            refusals: Arc::new(refusals),
            duties: Arc::new(duties),
        }
    }

    /// With the personal-data key and the registry connector that uses it.
    pub fn with_data_key(mut self, key: DataKey, registry: Arc<dyn Registry>) -> Self {
        self.pii = Some(key);
        self.registry = Some(registry);
        self
    }

    /// With the CA hierarchy and its OCSP responder.
    pub fn with_ca(
        mut self,
        hierarchy: Arc<Hierarchy>,
        ocsp: Arc<crate::service::ocsp::OcspService>,
    ) -> Self {
        self.ca = Some(hierarchy);
        self.ocsp = Some(ocsp);
        self
    }

    /// Run blocking database reads on the blocking thread pool.
    pub async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut PooledConn) -> Result<T> + Send + 'static,
    {
        Self::blocking(self.db.read.clone(), f).await
    }

    /// Run blocking work that writes (audit entries included) on the write pool.
    pub async fn with_write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut PooledConn) -> Result<T> + Send + 'static,
    {
        Self::blocking(self.db.write.clone(), f).await
    }

    /// Run blocking work that takes connections itself (for example issuance, which borrows
    /// the write connection only for its short store phases, not while it signs).
    pub async fn with_db<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let db = self.db.clone();
        actix_web::web::block(move || f(&db))
            .await
            .map_err(Error::from)?
    }

    async fn blocking<T, F>(pool: crate::db::DbPool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut PooledConn) -> Result<T> + Send + 'static,
    {
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(Error::from)?
    }

    /// What card work (batch runs, renewals on the card) needs; unavailable without CA keys.
    pub fn card_work(&self) -> Result<crate::service::batches::CardWork> {
        Ok(crate::service::batches::CardWork {
            db: self.db.write.clone(),
            ca: self
                .ca
                .clone()
                .ok_or_else(|| Error::Unavailable("this process has no CA keys loaded".into()))?,
            key: self.data_key()?,
            config: Arc::clone(&self.config),
            clock: self.clock.clone(),
        })
    }

    /// Sign the changed certificates' OCSP responses again right away (the worker would
    /// within a second; the caller should not see a stale answer after its own change).
    pub async fn refresh_ocsp(&self) {
        if let Some(ocsp) = self.ocsp.clone() {
            let now = self.clock.now();
            if let Err(e) = self.with_conn(move |c| ocsp.poll(c, now)).await {
                tracing::warn!(error = %e, "OCSP refresh after a status change failed");
            }
        }
    }

    /// Start a run of batch `id` (the API and the operator's button): refused with 409
    /// naming the instance already running it; the run goes on in its own thread.
    pub async fn start_batch(&self, actor: crate::audit::Actor, id: i64) -> Result<()> {
        let work = self.card_work()?;
        actix_web::web::block(move || crate::service::batches::start(work, actor, id))
            .await
            .map_err(Error::from)?
    }

    /// Renew a card's signing certificate on the card (card I/O and signing off the async
    /// threads), then sign the changed OCSP responses.
    pub async fn renew_on_card(
        &self,
        actor: crate::audit::Actor,
        number: crate::card::number::CardNumber,
        pin: String,
    ) -> Result<crate::service::renewal::Renewed> {
        let work = self.card_work()?;
        let renewed = actix_web::web::block(move || {
            crate::service::renewal::renew_on_card(&work, actor, &number, &pin)
        })
        .await
        .map_err(Error::from)??;
        self.refresh_ocsp().await;
        Ok(renewed)
    }

    /// The documents' font (parsed once per process).
    pub fn font(&self) -> Result<Arc<crate::pdf::Font>> {
        if let Some(f) = self.font.get() {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(crate::pdf::Font::load(&self.config.delivery.font)?);
        Ok(Arc::clone(self.font.get_or_init(|| f)))
    }

    /// The personal-data key, or a clear error.
    pub fn data_key(&self) -> Result<DataKey> {
        self.pii.clone().ok_or_else(|| {
            Error::Config("no personal-data key is configured in this process".into())
        })
    }

    /// The registry connector, or a clear error.
    pub fn registry(&self) -> Result<Arc<dyn Registry>> {
        self.registry
            .clone()
            .ok_or_else(|| Error::Config("no resident-registry connector is configured".into()))
    }

    /// The CA, or a clear error when it is not loaded.
    pub fn hierarchy(&self) -> Result<Arc<Hierarchy>> {
        self.ca
            .clone()
            .ok_or_else(|| Error::Config("the CA is not loaded in this process".into()))
    }
}
