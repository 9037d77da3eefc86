//! CA ceremony (`kofu ca init`) and loading the issuing CAs for service.

use crate::audit::{self, Actor};
use crate::ca::config::{CaConfig, CaSpec};
use crate::ca::lint::LintContext;
use crate::ca::profile::{CaName, TbsParts, Urls, ca_extensions, key_identifier, name};
use crate::ca::serial::Serial;
use crate::ca::signer::{FileSigner, KeyAlgorithm, KeySigner, Pkcs11Token};
use crate::ca::{Hierarchy, LoadedCa, der_to_pem, issuer};
use crate::config::{Config, KeyBackend};
use crate::db::DbConn;
use crate::db::models::ca::{CaRow, CertificateRow};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use der::Encode;
use diesel::Connection;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

fn key_path(cfg: &Config, ca: CaName) -> PathBuf {
    cfg.ca_dir().join(format!("{}.key.pem", ca.as_str()))
}

/// PEM certificate file of a CA.
pub fn cert_path(cfg: &Config, ca: CaName) -> PathBuf {
    cfg.ca_dir().join(format!("{}.pem", ca.as_str()))
}

fn pkcs11_label(ca: CaName) -> String {
    format!("kofu-{}", ca.as_str())
}

fn open_token(cfg: &Config) -> Result<Arc<Pkcs11Token>> {
    let p = cfg
        .pkcs11
        .as_ref()
        .ok_or_else(|| Error::Config("ca_key_backend = pkcs11 needs [pkcs11]".into()))?;
    let pin = p
        .pin
        .as_ref()
        .ok_or_else(|| Error::Config("PKCS#11 PIN missing: set KOFU_PKCS11_PIN".into()))?;
    Pkcs11Token::open(&p.module, &p.token_label, pin.expose())
}

fn passphrase(cfg: &Config) -> Result<String> {
    let p = cfg.ca_passphrase()?.ok_or_else(|| {
        Error::Config(
            "CA key passphrase missing: set KOFU_CA_PASSPHRASE or ca_passphrase_file".into(),
        )
    })?;
    if p.expose().len() < 12 {
        return Err(Error::Config(
            "CA key passphrase must be at least 12 characters".into(),
        ));
    }
    Ok(p.expose().clone())
}

/// Whether a CA already exists (in the database or as files).
pub fn exists(conn: &mut DbConn, cfg: &Config) -> Result<bool> {
    Ok(!CaRow::all(conn)?.is_empty() || cert_path(cfg, CaName::Root).exists())
}

fn ca_subject(ca_cfg: &CaConfig, spec: &CaSpec) -> Result<x509_cert::name::Name> {
    name(&[
        ("C", &ca_cfg.country),
        ("O", &ca_cfg.organization),
        ("CN", &spec.common_name),
    ])
}

/// A CA certificate made at the ceremony: name, DER, key reference, serial, notAfter.
type MadeCa = (CaName, Vec<u8>, String, Serial, DateTime<Utc>);

/// Create the hierarchy: keys, the self-signed root and the three issuing CAs. Refuses to
/// overwrite an existing CA. Returns the PEM files written.
pub fn init(
    conn: &mut DbConn,
    cfg: &Config,
    ca_cfg: &CaConfig,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<PathBuf>> {
    if exists(conn, cfg)? {
        return Err(Error::Duplicate(format!(
            "a CA already exists (database or {}); refusing to overwrite it",
            cfg.ca_dir().display()
        )));
    }
    std::fs::create_dir_all(cfg.ca_dir())?;
    let urls = Urls::new(&cfg.public_base_url);
    let token = match cfg.ca_key_backend {
        KeyBackend::Pkcs11 => Some(open_token(cfg)?),
        KeyBackend::File => None,
    };
    let pass = match cfg.ca_key_backend {
        KeyBackend::File => Some(passphrase(cfg)?),
        KeyBackend::Pkcs11 => None,
    };
    let make_key = |ca: CaName, spec: &CaSpec| -> Result<Box<dyn KeySigner>> {
        match (&token, &pass) {
            (Some(t), _) => Ok(Box::new(t.generate(&pkcs11_label(ca), spec.key)?)),
            (None, Some(p)) => {
                let key = spec.key.generate()?;
                let path = key_path(cfg, ca);
                FileSigner::save(&key, &path, p)?;
                Ok(Box::new(FileSigner::new(
                    key,
                    format!("file:{}", path.display()),
                )?))
            }
            (None, None) => Err(Error::Config("no key backend".into())),
        }
    };

    let policy_arc = ca_cfg.policies_arc()?;
    let root_spec = &ca_cfg.root;
    let root_key = make_key(CaName::Root, root_spec)?;
    let root_subject = ca_subject(ca_cfg, root_spec)?;
    let years = |y: u32| now + chrono::Duration::days(i64::from(y) * 365 + i64::from(y / 4));
    let root_parts = TbsParts {
        serial: Serial::generate(cfg.instance_prefix)?,
        issuer: root_subject.clone(),
        algorithm: root_key.algorithm(),
        subject: root_subject.clone(),
        spki_der: root_key.public_key_der().to_vec(),
        not_before: now,
        not_after: years(root_spec.validity_years),
        extensions: ca_extensions(root_key.public_key_der(), None, None, &urls, None)?,
    };
    let root_ctx = LintContext {
        is_ca: true,
        self_signed: true,
        profile: None,
        issuer_subject_der: root_subject.to_der()?,
        issuer_ski: None,
        issuer_not_after: None,
        issuer_algorithm_der: root_key.algorithm().to_der()?,
    };
    let root_public = openssl::pkey::PKey::public_key_from_der(root_key.public_key_der())?;
    let root_cert =
        issuer::prepare(&root_parts, &root_ctx)?.sign(root_key.as_ref(), &root_public)?;
    let root_ski = key_identifier(root_key.public_key_der())?;
    let root_not_after = root_parts.not_after;

    let mut made: Vec<MadeCa> = vec![(
        CaName::Root,
        root_cert,
        root_key.key_ref(),
        root_parts.serial.clone(),
        root_not_after,
    )];
    for (ca, spec, policy) in [
        (CaName::Signing, &ca_cfg.signing, 1),
        (CaName::Authentication, &ca_cfg.authentication, 2),
        (CaName::Infrastructure, &ca_cfg.infrastructure, 3),
    ] {
        let key = make_key(ca, spec)?;
        let parts = TbsParts {
            serial: Serial::generate(cfg.instance_prefix)?,
            issuer: root_subject.clone(),
            algorithm: root_key.algorithm(),
            subject: ca_subject(ca_cfg, spec)?,
            spki_der: key.public_key_der().to_vec(),
            not_before: now,
            not_after: years(spec.validity_years).min(root_not_after),
            extensions: ca_extensions(
                key.public_key_der(),
                Some(&root_ski),
                Some(0),
                &urls,
                Some(CaConfig::child(policy_arc, policy)?),
            )?,
        };
        let ctx = LintContext {
            is_ca: true,
            self_signed: false,
            profile: None,
            issuer_subject_der: root_subject.to_der()?,
            issuer_ski: Some(root_ski.clone()),
            issuer_not_after: Some(root_not_after),
            issuer_algorithm_der: root_key.algorithm().to_der()?,
        };
        let der = issuer::prepare(&parts, &ctx)?.sign(root_key.as_ref(), &root_public)?;
        made.push((ca, der, key.key_ref(), parts.serial, parts.not_after));
    }

    let mut written = Vec::new();
    conn.transaction(|c| {
        for (ca, der, key_ref, serial, not_after) in &made {
            let subject = openssl::x509::X509::from_der(der)?
                .subject_name()
                .entries()
                .filter_map(|e| e.data().to_string().ok())
                .collect::<Vec<_>>()
                .join(", ");
            CaRow::insert(
                c,
                &CaRow {
                    name: ca.as_str().into(),
                    subject,
                    cert_der: der.clone(),
                    key_ref: key_ref.clone(),
                    created_at: now.timestamp(),
                },
            )?;
            // Every CA certificate is issued by the root.
            let id = CertificateRow::reserve(
                c,
                &serial.to_hex(),
                CaName::Root.as_str(),
                "ca",
                now.timestamp(),
                not_after.timestamp(),
                now.timestamp(),
            )?;
            let tbs = tbs_of(der)?;
            CertificateRow::store_tbs(c, id, &tbs)?;
            CertificateRow::store_certificate(c, id, der, now.timestamp())?;
            audit::append(
                c,
                now.timestamp(),
                actor,
                "ca.create",
                &format!("ca:{}", ca.as_str()),
                &format!("serial={}", serial.to_hex()),
            )?;
        }
        Ok::<_, Error>(())
    })?;
    for (ca, der, ..) in &made {
        let path = cert_path(cfg, *ca);
        std::fs::write(&path, der_to_pem(der)?)?;
        written.push(path);
    }
    Ok(written)
}

/// The TBS bytes of a DER certificate.
pub fn tbs_of(der: &[u8]) -> Result<Vec<u8>> {
    use der::Decode;
    Ok(x509_cert::Certificate::from_der(der)?
        .tbs_certificate()
        .to_der()?)
}

/// Load the issuing CAs (certificates from the database, keys from files or the token).
pub fn load(conn: &mut DbConn, cfg: &Config, ca_cfg: CaConfig) -> Result<Hierarchy> {
    let rows = CaRow::all(conn)?;
    if rows.is_empty() {
        return Err(Error::Config("no CA yet: run `kofu ca init` first".into()));
    }
    let token = match cfg.ca_key_backend {
        KeyBackend::Pkcs11 => Some(open_token(cfg)?),
        KeyBackend::File => None,
    };
    let pass = match cfg.ca_key_backend {
        KeyBackend::File => Some(passphrase(cfg)?),
        KeyBackend::Pkcs11 => None,
    };
    let mut cas = BTreeMap::new();
    let mut certs = BTreeMap::new();
    for row in rows {
        let ca = CaName::parse(&row.name)?;
        certs.insert(ca, row.cert_der.clone());
        if ca == CaName::Root {
            continue; // offline-style: the root key is used only at ceremonies
        }
        let signer: Box<dyn KeySigner> = match (&token, &pass) {
            (Some(t), _) => Box::new(t.signer(&pkcs11_label(ca))?),
            (None, Some(p)) => Box::new(FileSigner::load(&key_path(cfg, ca), p)?),
            (None, None) => return Err(Error::Config("no key backend".into())),
        };
        cas.insert(ca, LoadedCa::new(ca, row.cert_der, signer)?);
    }
    Ok(Hierarchy {
        config: ca_cfg,
        urls: Urls::new(&cfg.public_base_url),
        cas,
        certs,
    })
}

/// The key of a CA's delegated OCSP responder: loaded, or made on first use. With file keys
/// it is an encrypted file beside the CA keys (same passphrase); with PKCS#11 it lives in
/// the CA token under the label `kofu-ocsp-<ca>`.
pub fn responder_key(cfg: &Config, ca: CaName, alg: KeyAlgorithm) -> Result<Box<dyn KeySigner>> {
    let label = format!("kofu-ocsp-{}", ca.as_str());
    match cfg.ca_key_backend {
        KeyBackend::Pkcs11 => {
            let token = open_token(cfg)?;
            Ok(match token.signer(&label) {
                Ok(s) => Box::new(s),
                Err(_) => Box::new(token.generate(&label, alg)?),
            })
        }
        KeyBackend::File => {
            let pass = passphrase(cfg)?;
            let path = cfg.ca_dir().join(format!("ocsp-{}.key.pem", ca.as_str()));
            if path.exists() {
                return Ok(Box::new(FileSigner::load(&path, &pass)?));
            }
            let key = alg.generate()?;
            FileSigner::save(&key, &path, &pass)?;
            Ok(Box::new(FileSigner::new(
                key,
                format!("file:{}", path.display()),
            )?))
        }
    }
}

/// The TLS listener's private key: a file beside the CA keys (encrypted with the CA
/// passphrase when there is one), made on first use and kept across certificate renewals.
pub fn tls_key(
    cfg: &Config,
    alg: KeyAlgorithm,
) -> Result<openssl::pkey::PKey<openssl::pkey::Private>> {
    let path = cfg.ca_dir().join("tls-server.key.pem");
    let pass = cfg.ca_passphrase()?;
    if path.exists() {
        let pem = std::fs::read(&path)?;
        let key = match &pass {
            Some(p) => {
                openssl::pkey::PKey::private_key_from_pem_passphrase(&pem, p.expose().as_bytes())
            }
            None => openssl::pkey::PKey::private_key_from_pem(&pem),
        };
        return key.map_err(|_| {
            Error::Config(format!(
                "cannot read the TLS key {}: wrong passphrase or damaged file",
                path.display()
            ))
        });
    }
    let key = alg.generate()?;
    match &pass {
        Some(p) => FileSigner::save(&key, &path, p.expose())?,
        None => crate::ca::signer::write_private(&path, &key.private_key_to_pem_pkcs8()?)?,
    }
    Ok(key)
}

/// `kofu ca rewrap-keys`: every encrypted key file under the CA directory (the CA keys, the
/// OCSP responders' keys, the TLS listener's key) decrypted with the CA passphrase and written
/// again at the current work factor ([`crate::ca::keyfile::ITERATIONS`]). Each file is
/// replaced atomically (a private temporary file, then a rename), so a crash leaves either
/// the old file or the new one; a file that does not decrypt stops the run before anything
/// is written. Audited. Returns the files re-wrapped.
pub fn rewrap_keys(
    conn: &mut DbConn,
    cfg: &Config,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<std::path::PathBuf>> {
    use crate::ca::keyfile;
    let pass = passphrase(cfg)?;
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(cfg.ca_dir())
        .map_err(|e| Error::Config(format!("{}: {e}", cfg.ca_dir().display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".key.pem"))
        // The TLS key is written in clear when there is no passphrase (PKCS#11 CA keys).
        .filter(|p| {
            std::fs::read(p)
                .is_ok_and(|pem| pem.starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        })
        .collect();
    files.sort();
    let mut keys = Vec::new();
    for f in &files {
        let pem = std::fs::read(f)?;
        let key = keyfile::decrypt_pem(&pem, &pass).map_err(|_| {
            Error::Config(format!(
                "cannot decrypt {}: wrong passphrase or damaged file; nothing was re-wrapped",
                f.display()
            ))
        })?;
        keys.push(key);
    }
    for (f, key) in files.iter().zip(&keys) {
        let pem = keyfile::encrypt_pem(key, &pass, keyfile::ITERATIONS)?;
        let tmp = f.with_extension("pem.new");
        let _ = std::fs::remove_file(&tmp);
        crate::ca::signer::write_private(&tmp, &pem)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, f)?;
    }
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    crate::audit::append(
        conn,
        now.timestamp(),
        actor,
        "ca.keys.rewrapped",
        "ca",
        &format!(
            "PBKDF2-HMAC-SHA256 {} iterations: {}",
            keyfile::ITERATIONS,
            names.join(", ")
        ),
    )?;
    Ok(files)
}
