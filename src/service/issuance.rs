//! Issuing one end-entity certificate, in the order that leaves a record of intent before any
//! signature exists (after boulder): reserve and store the serial → encode and lint the TBS
//! → store the TBS → audit "about to sign" → sign → check the signed TBS → store the
//! certificate → audit "issued". A crash between any two steps leaves a `reserved` or
//! `tbs_stored` row, never an unrecorded signed certificate.

use crate::audit::{self, Actor};
use crate::ca::Hierarchy;
use crate::ca::csr::CheckedCsr;
use crate::ca::identity::Identity;
use crate::ca::issuer;
use crate::ca::profile::{CaName, EeRequest, Profile, ee_parts};
use crate::ca::serial::Serial;
use crate::db::DbConn;
use crate::db::models::ca::CertificateRow;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use diesel::Connection;

/// A request to issue, already parsed and checked at the edges.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// Profile.
    pub profile: Profile,
    /// Issuing CA, when the profile allows a choice (OCSP responders).
    pub ca: Option<CaName>,
    /// The checked CSR.
    pub csr: CheckedCsr,
    /// Holder identity (holder profiles).
    pub identity: Option<Identity>,
}

/// An issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Serial, upper-case hex.
    pub serial: String,
    /// DER.
    pub der: Vec<u8>,
    /// Issuing CA.
    pub ca: CaName,
}

/// Issue one certificate. `prefix` is this instance's serial prefix.
pub fn issue(
    conn: &mut DbConn,
    h: &Hierarchy,
    req: &IssueRequest,
    actor: &Actor,
    prefix: u16,
    now: DateTime<Utc>,
) -> Result<Issued> {
    let ca_name = req.profile.issuer(req.ca)?;
    if req.profile.is_holder() && req.identity.is_none() {
        return Err(Error::bad(
            "identity",
            format!("profile {} needs --identity", req.profile.as_str()),
        ));
    }
    let ca = h.ca(ca_name)?;
    let ee = EeRequest {
        profile: req.profile,
        spki_der: req.csr.spki_der.clone(),
        identity: req.identity.clone(),
        common_name: req.csr.common_name.clone(),
        dns_names: req.csr.dns_names.clone(),
    };
    let ctx = ca.ee_lint_context(req.profile)?;
    let now_s = now.timestamp();

    // 1–3. Draw a serial, encode and lint the TBS (a failed rule stores and signs nothing),
    // then store serial, TBS and the intent to sign in one transaction. The unique index on
    // the serial is the reservation; a collision (astronomically unlikely) draws again.
    let mut attempts = 0;
    let (row_id, prepared) = loop {
        let parts = ee_parts(
            &h.config,
            &h.urls,
            &ca.view,
            &ee,
            Serial::generate(prefix)?,
            now,
        )?;
        let prepared = issuer::prepare(&parts, &ctx)?;
        let serial_hex = prepared.serial().to_hex();
        let stored = conn.transaction(|c| {
            let id = CertificateRow::reserve_with_tbs(
                c,
                &serial_hex,
                ca_name.as_str(),
                req.profile.as_str(),
                prepared.tbs_der(),
                prepared.not_before().timestamp(),
                prepared.not_after().timestamp(),
                now_s,
            )?;
            audit::append(
                c,
                now_s,
                actor,
                "certificate.sign_intent",
                &format!("serial:{serial_hex}"),
                &format!("ca={} profile={}", ca_name.as_str(), req.profile.as_str()),
            )?;
            Ok::<_, Error>(id)
        });
        match stored {
            Ok(id) => break (id, prepared),
            Err(Error::Conflict(_)) if attempts < 3 && serial_taken(conn, &serial_hex)? => {
                attempts += 1
            }
            Err(e) => return Err(e),
        }
    };
    let serial_hex = prepared.serial().to_hex();

    // 4. Sign (checks the signed TBS is the stored one and the signature verifies).
    let der = prepared.sign(ca.signer.as_ref())?;

    // 5. Store the certificate and record the issuance.
    conn.transaction(|c| {
        if CertificateRow::store_certificate(c, row_id, &der, now_s)? != 1 {
            return Err(Error::Conflict(format!(
                "serial {serial_hex} was not awaiting its certificate"
            )));
        }
        audit::append(
            c,
            now_s,
            actor,
            "certificate.issued",
            &format!("serial:{serial_hex}"),
            &format!("ca={}", ca_name.as_str()),
        )?;
        Ok(())
    })?;
    Ok(Issued {
        serial: serial_hex,
        der,
        ca: ca_name,
    })
}

fn serial_taken(conn: &mut DbConn, serial_hex: &str) -> Result<bool> {
    Ok(CertificateRow::by_serial(conn, serial_hex)?.is_some())
}
