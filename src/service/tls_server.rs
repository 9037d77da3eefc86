//! The TLS listener's server certificate (from the infrastructure CA's tls-server profile):
//! the newest live one for this key and these names, made at start when there is none, when
//! it nears expiry, or when the key or the names changed.

use crate::audit::Actor;
use crate::ca::Hierarchy;
use crate::ca::csr::CheckedCsr;
use crate::ca::profile::{CaName, Profile};
use crate::config::Config;
use crate::db::DbConn;
use crate::error::{Error, Result};
use crate::service::issuance::{self, IssueRequest};
use chrono::{DateTime, Utc};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use std::collections::BTreeSet;

/// A server certificate closer than this to expiry is replaced at start.
const RENEW_BEFORE_DAYS: i64 = 30;

fn dns_names(cert: &X509) -> BTreeSet<String> {
    cert.subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.dnsname().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The listener's key and certificate (DER): the newest live one for this key and these
/// names, or a new one.
pub fn server_certificate(
    conn: &mut DbConn,
    cfg: &Config,
    h: &Hierarchy,
    now: DateTime<Utc>,
) -> Result<(PKey<Private>, Vec<u8>)> {
    if cfg.tls_hostnames.is_empty() {
        return Err(Error::Config(
            "tls_hostnames is empty: name the host(s) verifiers connect to".into(),
        ));
    }
    let key = crate::service::ca::tls_key(cfg, h.config.end_entity_key)?;
    let spki = key.public_key_to_der()?;
    let wanted: BTreeSet<String> = cfg.tls_hostnames.iter().cloned().collect();
    let candidates = crate::db::models::ca::CertificateRow::live_ders(
        conn,
        CaName::Infrastructure.as_str(),
        Profile::TlsServer.as_str(),
        now.timestamp() + RENEW_BEFORE_DAYS * 86_400,
    )?;
    for der in candidates {
        let cert = X509::from_der(&der)?;
        if cert.public_key()?.public_key_to_der()? == spki && dns_names(&cert) == wanted {
            return Ok((key, der));
        }
    }
    let req = IssueRequest {
        profile: Profile::TlsServer,
        ca: None,
        csr: CheckedCsr {
            spki_der: spki,
            common_name: cfg.tls_hostnames.first().cloned(),
            dns_names: cfg.tls_hostnames.clone(),
        },
        identity: None,
    };
    let issued = issuance::issue(conn, h, &req, &Actor::system(), cfg.instance_prefix, now)?;
    tracing::info!(serial = %issued.serial, "TLS server certificate issued");
    Ok((key, issued.der))
}
