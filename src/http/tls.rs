//! The TLS listener: verifiers authenticate with client certificates from the
//! infrastructure CA's verifier-client profile (mutual TLS); verifier tokens and staff work
//! on it too. Its server certificate comes from the same CA's tls-server profile, made at
//! start for the configured host names and made again when it nears expiry, its key changed
//! or the names changed. A client certificate is optional at the TLS layer (a token may be
//! used instead) but, when one is presented, it must chain to the infrastructure CA; the
//! request layer then looks it up among the verifiers' live credentials on every request,
//! so a revoked certificate is refused at once even on a connection opened before.

use crate::audit::Actor;
use crate::ca::Hierarchy;
use crate::ca::csr::CheckedCsr;
use crate::ca::profile::{CaName, Profile};
use crate::config::Config;
use crate::db::DbConn;
use crate::db::schema::certificates;
use crate::error::{Error, Result};
use crate::http::PeerSerial;
use crate::service::issuance::{self, IssueRequest};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
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
    let candidates: Vec<Vec<u8>> = certificates::table
        .filter(certificates::issuer.eq(CaName::Infrastructure.as_str()))
        .filter(certificates::profile.eq(Profile::TlsServer.as_str()))
        .filter(certificates::state.eq("issued"))
        .filter(certificates::revoked_at.is_null())
        .filter(certificates::not_after.gt(now.timestamp() + RENEW_BEFORE_DAYS * 86_400))
        .order(certificates::id.desc())
        .select(certificates::cert_der.assume_not_null())
        .load(conn)?;
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

/// The acceptor: the server certificate with its CA, and client certificates asked for and
/// checked against the infrastructure CA (up to the root).
pub fn acceptor(h: &Hierarchy, key: &PKey<Private>, cert_der: &[u8]) -> Result<SslAcceptorBuilder> {
    let ca_cert = |name: CaName| -> Result<X509> {
        let der = h.certs.get(&name).ok_or_else(|| {
            Error::Config(format!("the {} CA certificate is missing", name.as_str()))
        })?;
        Ok(X509::from_der(der)?)
    };
    let infra = ca_cert(CaName::Infrastructure)?;
    let root = ca_cert(CaName::Root)?;
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_private_key(key)?;
    let cert = X509::from_der(cert_der)?;
    b.set_certificate(&cert)?;
    b.add_extra_chain_cert(infra.clone())?;
    b.check_private_key()?;
    let mut store = X509StoreBuilder::new()?;
    store.add_cert(root)?;
    store.add_cert(infra.clone())?;
    b.set_verify_cert_store(store.build())?;
    b.add_client_ca(&infra)?;
    b.set_verify(SslVerifyMode::PEER);
    // Session ids must be scoped to this context for resumption with client certificates.
    b.set_session_id_context(b"kofu-verifiers")?;
    Ok(b)
}

/// Put the serial of a verified client certificate in the connection's data.
pub fn on_connect(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    type Tls = actix_tls::accept::openssl::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = conn.downcast_ref::<Tls>()
        && let Some(cert) = tls.ssl().peer_certificate()
        && let Ok(bn) = cert.serial_number().to_bn()
    {
        ext.insert(PeerSerial(hex::encode_upper(bn.to_vec())));
    }
}
