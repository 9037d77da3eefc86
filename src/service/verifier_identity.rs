//! Who a verifier's request is (SPEC §5): the identity a credential admits, with the CAs it
//! was given. Its own module so that linkage and the HTTP extractors can use it without
//! depending on the verifier administration (`verifiers`).

use crate::audit::Actor;
use crate::ca::profile::CaName;
use serde::Serialize;

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A client certificate on the TLS listener.
    Certificate,
    /// A bearer token.
    Token,
}

/// The verifier behind a request.
#[derive(Debug, Clone)]
pub struct VerifierIdentity {
    /// Verifier id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// CAs whose data it may use.
    pub cas: Vec<CaName>,
    /// Requests per minute.
    pub rate_limit: i64,
    /// The credential used.
    pub credential_id: i64,
    /// Its kind.
    pub via: Via,
}

impl VerifierIdentity {
    /// The audit actor: the verifier's name with the role `verifier`.
    pub fn actor(&self) -> Actor {
        Actor::new(format!("verifier:{}", self.name), "verifier")
    }

    /// May it use this CA's data?
    pub fn may_use(&self, ca: CaName) -> bool {
        self.cas.contains(&ca)
    }
}
