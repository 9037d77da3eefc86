//! `kofu verifier …`: the admin's verifier commands (the same services as the admin UI).

use super::{open, read_file};
use crate::audit::Actor;
use crate::ca::config::CaConfig;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Result;
use crate::service::ca as ca_service;
use crate::service::verifiers::{self, NewVerifier};
use std::path::Path;

/// `kofu verifier add`.
pub fn add(cfg: &Config, name: &str, contact: &str, cas: &str, rate_limit: i64) -> Result<()> {
    let new = NewVerifier {
        name: name.into(),
        contact: contact.into(),
        cas: verifiers::parse_cas(cas)?,
        rate_limit,
    };
    let pool = open(cfg)?;
    let v = verifiers::add(&mut *pool.get()?, &new, &Actor::cli(), SystemClock.now())?;
    println!(
        "verifier {} ({}) registered: CAs {}, {} requests a minute",
        v.id, v.name, v.cas, v.rate_limit
    );
    Ok(())
}

/// `kofu verifier list`.
pub fn list(cfg: &Config) -> Result<()> {
    let pool = open(cfg)?;
    let mut c = pool.get()?;
    for v in verifiers::list(&mut c)? {
        println!(
            "{}\t{}\t{}\t{}\t{}/min\t{}",
            v.id, v.name, v.status, v.cas, v.rate_limit, v.contact
        );
        for cred in verifiers::credentials(&mut c, v.id)? {
            println!(
                "\tcredential {}\t{}\t{}\t{}{}",
                cred.id,
                cred.kind,
                cred.label,
                cred.serial.as_deref().unwrap_or("-"),
                if cred.revoked_at.is_some() {
                    "\trevoked"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

/// `kofu verifier suspend|activate`.
pub fn set_active(cfg: &Config, which: &str, active: bool) -> Result<()> {
    let pool = open(cfg)?;
    let mut c = pool.get()?;
    let v = verifiers::find(&mut c, which)?;
    let v = verifiers::set_active(&mut c, v.id, active, &Actor::cli(), SystemClock.now())?;
    println!("verifier {} is {}", v.name, v.status);
    Ok(())
}

/// `kofu verifier token`: prints the token once.
pub fn token(cfg: &Config, which: &str, label: &str) -> Result<()> {
    let pool = open(cfg)?;
    let mut c = pool.get()?;
    let v = verifiers::find(&mut c, which)?;
    let (id, token) =
        verifiers::create_token(&mut c, v.id, label, &Actor::cli(), SystemClock.now())?;
    eprintln!(
        "credential {id} of verifier {}; the token is shown only now:",
        v.name
    );
    println!("{token}");
    Ok(())
}

/// `kofu verifier certificate`: a client certificate from a CSR, printed as PEM.
pub fn certificate(cfg: &Config, which: &str, csr: &Path, label: &str) -> Result<()> {
    let csr = crate::ca::csr::check(&read_file(csr, "csr")?)?;
    let pool = open(cfg)?;
    let mut c = pool.get()?;
    let h = ca_service::load(&mut c, cfg, CaConfig::load(&cfg.ca_config)?)?;
    let v = verifiers::find(&mut c, which)?;
    let (id, issued) = verifiers::issue_certificate(
        &mut c,
        &h,
        v.id,
        csr,
        label,
        cfg.instance_prefix,
        &Actor::cli(),
        SystemClock.now(),
    )?;
    eprintln!(
        "credential {id} of verifier {}: client certificate {}",
        v.name, issued.serial
    );
    print!("{}", crate::ca::der_to_pem(&issued.der)?);
    Ok(())
}

/// `kofu verifier revoke`.
pub fn revoke(cfg: &Config, which: &str, credential: i64) -> Result<()> {
    let pool = open(cfg)?;
    let mut c = pool.get()?;
    let v = verifiers::find(&mut c, which)?;
    let cred =
        verifiers::revoke_credential(&mut c, v.id, credential, &Actor::cli(), SystemClock.now())?;
    println!(
        "credential {} ({}) of verifier {} revoked",
        cred.id, cred.kind, v.name
    );
    Ok(())
}
