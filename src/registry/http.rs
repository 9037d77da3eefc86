//! The HTTP registry connector: asks a registry service over HTTP(S).
//!
//! Protocol (one request per lookup; personal data goes in the body, never the URL):
//!
//! ```text
//! POST {url}/v1/residents/lookup
//! Authorization: Bearer {token}          (when configured)
//! Content-Type: application/json
//! {"municipality_code": "131016", "name": "山田 太郎", "name_kana": "ヤマダ タロウ",
//!  "birth_date": "1960-10-10", "address": "千代田区千代田1-1"}
//!
//! 200 OK
//! {"status": "resident" | "moved_out" | "deceased" | "not_found" | "ambiguous",
//!  "record": {"resident_code": "...", "municipality_code": "131016", "name": "...",
//!             "name_kana": "...", "birth_date": "1960-10-10", "sex": "male" | "female",
//!             "address": "...", "postal_code": "1000001"} | null}
//! ```
//!
//! Any other status, a malformed answer, or no answer within the timeout is
//! `Error::Unavailable`: the application stays where it was and the clerk can try again.

use crate::db::DbConn;
use crate::error::{Error, Result};
use crate::registry::{Lookup, Query, Registry, RegistryStatus, ResidentRecord};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Lookup request body.
#[derive(Debug, Serialize, Deserialize)]
pub struct LookupRequest {
    /// Municipality code.
    pub municipality_code: String,
    /// Name.
    pub name: String,
    /// Kana name.
    pub name_kana: String,
    /// Date of birth, ISO.
    pub birth_date: String,
    /// Address.
    pub address: String,
}

/// Lookup answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct LookupResponse {
    /// Registry status.
    pub status: RegistryStatus,
    /// The record, when exactly one person fits.
    pub record: Option<ResidentRecord>,
}

/// The connector.
pub struct HttpRegistry {
    url: String,
    token: Option<String>,
    timeout: Duration,
    agent: ureq::Agent,
}

impl HttpRegistry {
    /// A connector for `base_url` with an overall `timeout` per lookup.
    pub fn new(base_url: &str, token: Option<String>, timeout: Duration) -> Result<Self> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "registry.url must be http(s)://…, got {base_url:?}"
            )));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(HttpRegistry {
            url: format!("{}/v1/residents/lookup", base_url.trim_end_matches('/')),
            token,
            timeout,
            agent,
        })
    }
}

impl Registry for HttpRegistry {
    fn name(&self) -> &'static str {
        "http"
    }

    fn lookup(&self, _conn: &mut DbConn, q: &Query) -> Result<Lookup> {
        let body = LookupRequest {
            municipality_code: q.municipality_code.clone(),
            name: q.name.clone(),
            name_kana: q.name_kana.clone(),
            birth_date: q.birth_date.format("%Y-%m-%d").to_string(),
            address: q.address.clone(),
        };
        let mut req = self.agent.post(&self.url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.send_json(&body).map_err(|e| {
            let why = match e {
                ureq::Error::Timeout(_) => {
                    format!("no answer within {} ms", self.timeout.as_millis())
                }
                other => other.to_string(),
            };
            Error::Unavailable(format!(
                "the resident registry could not be reached ({why}); try again later"
            ))
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::Unavailable(format!(
                "the resident registry answered HTTP {}; try again later",
                status.as_u16()
            )));
        }
        let answer: LookupResponse = resp.body_mut().read_json().map_err(|e| {
            Error::Unavailable(format!(
                "the resident registry's answer was malformed ({e})"
            ))
        })?;
        if answer.status == RegistryStatus::Resident && answer.record.is_none() {
            return Err(Error::Unavailable(
                "the resident registry said resident but sent no record".into(),
            ));
        }
        Ok(Lookup {
            status: answer.status,
            record: answer.record,
            resident_id: None,
        })
    }
}
