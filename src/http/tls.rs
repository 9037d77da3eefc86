//! The TLS listener: verifiers authenticate with client certificates from the
//! infrastructure CA's verifier-client profile (mutual TLS); verifier tokens work on it too,
//! and staff only where `[listeners] tls` says so (not by default). Its server certificate comes from the same CA's tls-server profile, made at
//! start for the configured host names and made again when it nears expiry, its key changed
//! or the names changed. A client certificate is optional at the TLS layer (a token may be
//! used instead) but, when one is presented, it must chain to the infrastructure CA; the
//! request layer then looks it up among the verifiers' live credentials on every request,
//! so a revoked certificate is refused at once even on a connection opened before.

use crate::ca::Hierarchy;
use crate::ca::profile::CaName;
use crate::error::{Error, Result};
use crate::http::PeerSerial;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

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

/// Marks, in the connection's data, a connection that came over the TLS listener.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// Mark a TLS connection, and put the serial of a verified client certificate in the
/// connection's data.
pub fn on_connect(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    type Tls = actix_tls::accept::openssl::TlsStream<actix_web::rt::net::TcpStream>;
    let Some(tls) = conn.downcast_ref::<Tls>() else {
        return;
    };
    ext.insert(OverTls);
    if let Some(cert) = tls.ssl().peer_certificate()
        && let Ok(bn) = cert.serial_number().to_bn()
    {
        ext.insert(PeerSerial(hex::encode_upper(bn.to_vec())));
    }
}

/// Whether a request came over the TLS listener.
pub fn over_tls(req: &actix_web::HttpRequest) -> bool {
    req.conn_data::<OverTls>().is_some()
}
