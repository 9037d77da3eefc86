//! Which listener serves whom: the plain listener and the TLS listener each serve staff,
//! verifiers or both. The TLS listener serves verifiers only unless configured otherwise,
//! so a staff password or token is never accepted where verifiers connect from outside.

use crate::error::{Error, Result};
use serde::Deserialize;

/// Who a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Staff: pages, the login, the staff API.
    Staff,
    /// Verifiers: OCSP, CRLs, linkage.
    Verifiers,
}

impl Audience {
    fn parse(s: &str) -> Result<Self> {
        match s {
            "staff" => Ok(Audience::Staff),
            "verifiers" => Ok(Audience::Verifiers),
            other => Err(Error::Config(format!(
                "expected staff or verifiers, got {other:?}"
            ))),
        }
    }

    /// A comma-separated list (`staff,verifiers`), for the environment.
    pub fn parse_list(setting: &str, v: &str) -> Result<Vec<Self>> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Audience::parse(s).map_err(|e| Error::Config(format!("{setting}: {e}"))))
            .collect()
    }
}

/// `[listeners]`: who each listener serves. Health, metrics, CA certificates and the API
/// document are served on every listener; a request for another audience's route gets 404.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenersConfig {
    /// The plain listener (`listen`): staff and verifiers by default (it sits behind the
    /// consortium's own network or a reverse proxy).
    pub plain: Vec<Audience>,
    /// The TLS listener (`tls_listen`): verifiers only by default.
    pub tls: Vec<Audience>,
}

impl Default for ListenersConfig {
    fn default() -> Self {
        ListenersConfig {
            plain: vec![Audience::Staff, Audience::Verifiers],
            tls: vec![Audience::Verifiers],
        }
    }
}

impl ListenersConfig {
    /// Whether the listener (TLS or plain) serves `who`.
    pub fn serves(&self, tls: bool, who: Audience) -> bool {
        if tls { &self.tls } else { &self.plain }.contains(&who)
    }
}
