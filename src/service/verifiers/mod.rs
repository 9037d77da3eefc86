//! Verifiers (SPEC §5): approved relying parties registered by the admin, and their
//! credentials — client certificates from the infrastructure CA's verifier-client profile
//! (mutual TLS) and API tokens (shown once, only their SHA-256 kept). A request is admitted
//! only while the verifier is active, the credential is not revoked and, for a certificate,
//! the certificate is neither revoked nor expired: every request looks this up afresh, so a
//! suspension or revocation takes effect at once.

use crate::audit::{self, Actor};
use crate::ca::Hierarchy;
use crate::ca::crl::Reason;
use crate::ca::csr::CheckedCsr;
use crate::ca::profile::{CaName, Profile};
use crate::db::DbConn;
use crate::db::schema::{certificates, verifier_credentials, verifiers};
use crate::error::{Error, Result};
use crate::service::auth::{random_secret, secret_hash};
use crate::service::issuance::{self, IssueRequest};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

mod traffic;
pub use crate::service::verifier_identity::{VerifierIdentity, Via};
pub use traffic::Traffic;

/// Prefix of verifier tokens (staff tokens start with `kofu_`).
pub const TOKEN_PREFIX: &str = "kofuv_";
/// Requests per minute when the admin gives no limit.
pub const DEFAULT_RATE_LIMIT: i64 = 60_000;
/// The CAs whose data a verifier may be given.
pub const GRANTABLE: [CaName; 3] = [
    CaName::Signing,
    CaName::Authentication,
    CaName::Infrastructure,
];

/// A verifier as the admin sees it.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = verifiers)]
pub struct Verifier {
    /// Id.
    pub id: i64,
    /// Name (unique).
    pub name: String,
    /// Contact (person, e-mail or phone of the verifier's office).
    pub contact: String,
    /// CAs, comma-separated.
    pub cas: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Requests per minute.
    pub rate_limit: i64,
    /// Registered at.
    pub created_at: i64,
    /// Last changed at.
    pub updated_at: i64,
}

/// A credential as the admin sees it (never the token).
#[derive(Debug, Clone, Serialize)]
pub struct Credential {
    /// Id.
    pub id: i64,
    /// `certificate` or `token`.
    pub kind: String,
    /// Label.
    pub label: String,
    /// Client certificate serial (certificates).
    pub serial: Option<String>,
    /// Client certificate expiry, Unix seconds (certificates).
    pub not_after: Option<i64>,
    /// Created at.
    pub created_at: i64,
    /// Revoked at.
    pub revoked_at: Option<i64>,
}

/// Parse the CA list an admin gives (`signing,authentication`).
pub fn parse_cas(s: &str) -> Result<Vec<CaName>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let ca = CaName::parse(part).map_err(|_| {
            Error::bad(
                "cas",
                format!("{part:?} is not a CA a verifier can use; give signing, authentication and/or infrastructure"),
            )
        })?;
        if !GRANTABLE.contains(&ca) {
            return Err(Error::bad(
                "cas",
                "the root CA has no revocation data of its own to give; give signing, authentication and/or infrastructure",
            ));
        }
        if !out.contains(&ca) {
            out.push(ca);
        }
    }
    if out.is_empty() {
        return Err(Error::bad(
            "cas",
            "name at least one CA: signing, authentication or infrastructure",
        ));
    }
    out.sort();
    Ok(out)
}

fn cas_text(cas: &[CaName]) -> String {
    cas.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
}

/// What the admin gives to register a verifier.
#[derive(Debug, Clone)]
pub struct NewVerifier {
    /// Name.
    pub name: String,
    /// Contact.
    pub contact: String,
    /// CAs.
    pub cas: Vec<CaName>,
    /// Requests per minute.
    pub rate_limit: i64,
}

impl NewVerifier {
    /// Check the fields, naming the first that is wrong.
    pub fn check(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::bad("name", "give a name of 1–100 characters"));
        }
        let contact = self.contact.trim();
        if contact.is_empty()
            || contact.chars().count() > 200
            || contact.chars().any(char::is_control)
        {
            return Err(Error::bad("contact", "give a contact of 1–200 characters"));
        }
        if !(1..=10_000_000).contains(&self.rate_limit) {
            return Err(Error::bad(
                "rate_limit",
                "requests per minute must be between 1 and 10000000",
            ));
        }
        if self.cas.is_empty() {
            return Err(Error::bad("cas", "name at least one CA"));
        }
        Ok(())
    }
}

/// Register a verifier (admin).
pub fn add(
    conn: &mut DbConn,
    v: &NewVerifier,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Verifier> {
    v.check()?;
    let now_s = now.timestamp();
    conn.transaction(|c| {
        let taken: i64 = verifiers::table
            .filter(verifiers::name.eq(v.name.trim()))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(Error::bad(
                "name",
                format!("a verifier named {:?} exists already", v.name.trim()),
            ));
        }
        // `returning(as_returning())` does not build on the multi-backend connection.
        let id: i64 = diesel::insert_into(verifiers::table)
            .values((
                verifiers::name.eq(v.name.trim()),
                verifiers::contact.eq(v.contact.trim()),
                verifiers::cas.eq(cas_text(&v.cas)),
                verifiers::status.eq(crate::db::models::verifier::VerifierStatus::Active.as_str()),
                verifiers::rate_limit.eq(v.rate_limit),
                verifiers::created_at.eq(now_s),
                verifiers::updated_at.eq(now_s),
            ))
            .returning(verifiers::id)
            .get_result(c)?;
        let row = find(c, &id.to_string())?;
        audit::append(
            c,
            now_s,
            actor,
            "verifier.add",
            &format!("verifier:{}", row.id),
            &format!("cas={} rate_limit={}", row.cas, row.rate_limit),
        )?;
        Ok(row)
    })
}

/// Find a verifier by id (digits) or by name.
pub fn find(conn: &mut DbConn, which: &str) -> Result<Verifier> {
    let q = verifiers::table.select(Verifier::as_select()).into_boxed();
    let q = match which.parse::<i64>() {
        Ok(id) => q.filter(verifiers::id.eq(id)),
        Err(_) => q.filter(verifiers::name.eq(which.trim())),
    };
    q.first(conn)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no verifier {which:?}")))
}

/// All verifiers, by name.
pub fn list(conn: &mut DbConn) -> Result<Vec<Verifier>> {
    Ok(verifiers::table
        .select(Verifier::as_select())
        .order(verifiers::name.asc())
        .load(conn)?)
}

/// A verifier's credentials, newest first.
pub fn credentials(conn: &mut DbConn, verifier_id: i64) -> Result<Vec<Credential>> {
    type Row = (i64, String, String, Option<i64>, i64, Option<i64>);
    let rows: Vec<Row> = verifier_credentials::table
        .filter(verifier_credentials::verifier_id.eq(verifier_id))
        .select((
            verifier_credentials::id,
            verifier_credentials::kind,
            verifier_credentials::label,
            verifier_credentials::certificate_id,
            verifier_credentials::created_at,
            verifier_credentials::revoked_at,
        ))
        .order(verifier_credentials::id.desc())
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, kind, label, cert, created_at, revoked_at) in rows {
        let (serial, not_after) = match cert {
            Some(cid) => {
                let (s, na): (String, i64) = certificates::table
                    .find(cid)
                    .select((certificates::serial, certificates::not_after))
                    .first(conn)?;
                (Some(s), Some(na))
            }
            None => (None, None),
        };
        out.push(Credential {
            id,
            kind,
            label,
            serial,
            not_after,
            created_at,
            revoked_at,
        });
    }
    Ok(out)
}

/// Suspend (`active = false`) or reactivate a verifier.
pub fn set_active(
    conn: &mut DbConn,
    verifier_id: i64,
    active: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Verifier> {
    let (from, to) = if active {
        (
            crate::db::models::verifier::VerifierStatus::Suspended,
            crate::db::models::verifier::VerifierStatus::Active,
        )
    } else {
        (
            crate::db::models::verifier::VerifierStatus::Active,
            crate::db::models::verifier::VerifierStatus::Suspended,
        )
    };
    let now_s = now.timestamp();
    conn.transaction(|c| {
        let n = diesel::update(
            verifiers::table
                .filter(verifiers::id.eq(verifier_id))
                .filter(verifiers::status.eq(from.as_str())),
        )
        .set((
            verifiers::status.eq(to.as_str()),
            verifiers::updated_at.eq(now_s),
        ))
        .execute(c)?;
        let v = find(c, &verifier_id.to_string())?;
        if n == 0 {
            return Err(Error::Conflict(format!(
                "verifier {} is {} already",
                v.name, v.status
            )));
        }
        audit::append(
            c,
            now_s,
            actor,
            if active {
                "verifier.activate"
            } else {
                "verifier.suspend"
            },
            &format!("verifier:{verifier_id}"),
            "",
        )?;
        Ok(v)
    })
}

fn check_label(label: &str) -> Result<&str> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(Error::bad("label", "give a label of 1–100 characters"));
    }
    Ok(label)
}

/// A new API token for a verifier; the token is returned once and only its hash kept.
pub fn create_token(
    conn: &mut DbConn,
    verifier_id: i64,
    label: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(i64, String)> {
    let label = check_label(label)?;
    let token = format!("{TOKEN_PREFIX}{}", random_secret()?);
    let now_s = now.timestamp();
    conn.transaction(|c| {
        find(c, &verifier_id.to_string())?;
        let id: i64 = diesel::insert_into(verifier_credentials::table)
            .values((
                verifier_credentials::verifier_id.eq(verifier_id),
                verifier_credentials::kind
                    .eq(crate::db::models::verifier::CredentialKind::Token.as_str()),
                verifier_credentials::label.eq(label),
                verifier_credentials::token_hash.eq(secret_hash(&token)),
                verifier_credentials::created_at.eq(now_s),
            ))
            .returning(verifier_credentials::id)
            .get_result(c)?;
        audit::append(
            c,
            now_s,
            actor,
            "verifier.token.create",
            &format!("verifier:{verifier_id}"),
            &format!("credential={id}"),
        )?;
        Ok((id, token))
    })
}

/// Issue a client certificate for a verifier from its CSR (verifier-client profile of the
/// infrastructure CA) and record it as a credential. Returns the credential id and the
/// certificate.
#[allow(clippy::too_many_arguments)]
pub fn issue_certificate(
    conn: &mut DbConn,
    h: &Hierarchy,
    verifier_id: i64,
    csr: CheckedCsr,
    label: &str,
    prefix: u16,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(i64, issuance::Issued)> {
    let label = check_label(label)?.to_string();
    let v = find(conn, &verifier_id.to_string())?;
    let req = IssueRequest {
        profile: Profile::VerifierClient,
        ca: None,
        csr,
        identity: None,
    };
    // Issuance owns its transactions (intent before signing); the credential follows it.
    let issued = issuance::issue(conn, h, &req, actor, prefix, now)?;
    let now_s = now.timestamp();
    let id = conn.transaction(|c| {
        let cert_id: i64 = certificates::table
            .filter(certificates::serial.eq(&issued.serial))
            .select(certificates::id)
            .first(c)?;
        let id: i64 = diesel::insert_into(verifier_credentials::table)
            .values((
                verifier_credentials::verifier_id.eq(v.id),
                verifier_credentials::kind
                    .eq(crate::db::models::verifier::CredentialKind::Certificate.as_str()),
                verifier_credentials::label.eq(&label),
                verifier_credentials::certificate_id.eq(cert_id),
                verifier_credentials::created_at.eq(now_s),
            ))
            .returning(verifier_credentials::id)
            .get_result(c)?;
        audit::append(
            c,
            now_s,
            actor,
            "verifier.certificate.create",
            &format!("verifier:{}", v.id),
            &format!("credential={id} serial={}", issued.serial),
        )?;
        Ok::<_, Error>(id)
    })?;
    Ok((id, issued))
}

/// Revoke a credential of a verifier; a client certificate is revoked in the infrastructure
/// CA's CRL and OCSP too (cessationOfOperation).
pub fn revoke_credential(
    conn: &mut DbConn,
    verifier_id: i64,
    credential_id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Credential> {
    let now_s = now.timestamp();
    conn.transaction(|c| {
        let n = diesel::update(
            verifier_credentials::table
                .filter(verifier_credentials::id.eq(credential_id))
                .filter(verifier_credentials::verifier_id.eq(verifier_id))
                .filter(verifier_credentials::revoked_at.is_null()),
        )
        .set(verifier_credentials::revoked_at.eq(now_s))
        .execute(c)?;
        let cred = credentials(c, verifier_id)?
            .into_iter()
            .find(|x| x.id == credential_id)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "verifier {verifier_id} has no credential {credential_id}"
                ))
            })?;
        if n == 0 {
            return Err(Error::Conflict(format!(
                "credential {credential_id} is revoked already"
            )));
        }
        audit::append(
            c,
            now_s,
            actor,
            "verifier.credential.revoke",
            &format!("verifier:{verifier_id}"),
            &format!("credential={credential_id} kind={}", cred.kind),
        )?;
        if let Some(serial) = &cred.serial {
            let cert_id: i64 = certificates::table
                .filter(certificates::serial.eq(serial))
                .select(certificates::id)
                .first(c)?;
            crate::service::status::revoke_one(
                c,
                cert_id,
                serial,
                Reason::CessationOfOperation,
                "verifier credential revoked",
                actor,
                now_s,
            )?;
        }
        Ok(cred)
    })
}

/// What the credentials of a request come to.
#[derive(Debug)]
pub enum Admission {
    /// A live credential of an active verifier.
    Admit(VerifierIdentity),
    /// A credential kofu knows, but refuses: the verifier is suspended, or the credential
    /// or its certificate revoked or expired.
    Refuse {
        /// The verifier (its rate limit also bounds how often refusals are audited).
        verifier: VerifierIdentity,
        /// Why (said to the caller and audited).
        why: &'static str,
    },
    /// Nothing kofu knows.
    Unknown,
}

/// verifier id, name, cas, status, rate limit, credential id, credential revoked_at.
type CredentialRow = (i64, String, String, String, i64, i64, Option<i64>);

fn admission(
    row: CredentialRow,
    via: Via,
    cert_refusal: Option<&'static str>,
) -> Result<Admission> {
    let (id, name, cas, status, rate_limit, credential_id, revoked_at) = row;
    let why = if revoked_at.is_some() {
        Some(match via {
            Via::Token => "the token has been revoked",
            Via::Certificate => "the client certificate has been revoked",
        })
    } else if status != crate::db::models::verifier::VerifierStatus::Active {
        Some("the verifier is suspended")
    } else {
        cert_refusal
    };
    let verifier = VerifierIdentity {
        id,
        name,
        cas: parse_cas(&cas)?,
        rate_limit,
        credential_id,
        via,
    };
    Ok(match why {
        Some(why) => Admission::Refuse { verifier, why },
        None => Admission::Admit(verifier),
    })
}

/// The verifier of a bearer token.
pub fn by_token(conn: &mut DbConn, token: &str) -> Result<Admission> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(Admission::Unknown);
    }
    let row: Option<CredentialRow> = verifier_credentials::table
        .inner_join(verifiers::table)
        .filter(verifier_credentials::token_hash.eq(secret_hash(token)))
        .select((
            verifiers::id,
            verifiers::name,
            verifiers::cas,
            verifiers::status,
            verifiers::rate_limit,
            verifier_credentials::id,
            verifier_credentials::revoked_at,
        ))
        .first(conn)
        .optional()?;
    match row {
        Some(r) => admission(r, Via::Token, None),
        None => Ok(Admission::Unknown),
    }
}

/// The verifier of a client certificate, by serial (the TLS layer has checked its chain to
/// the infrastructure CA): refused when the certificate is revoked (a hold included) or
/// expired, whatever the credential says.
pub fn by_certificate(conn: &mut DbConn, serial: &str, now: DateTime<Utc>) -> Result<Admission> {
    let row: Option<(CredentialRow, Option<i32>, i64)> = verifier_credentials::table
        .inner_join(verifiers::table)
        .inner_join(certificates::table)
        .filter(certificates::serial.eq(serial))
        .filter(certificates::issuer.eq(CaName::Infrastructure.as_str()))
        .select((
            (
                verifiers::id,
                verifiers::name,
                verifiers::cas,
                verifiers::status,
                verifiers::rate_limit,
                verifier_credentials::id,
                verifier_credentials::revoked_at,
            ),
            certificates::revocation_reason,
            certificates::not_after,
        ))
        .first(conn)
        .optional()?;
    match row {
        Some((r, reason, not_after)) => {
            let cert = if reason.is_some() {
                Some("the client certificate has been revoked")
            } else if not_after <= now.timestamp() {
                Some("the client certificate has expired")
            } else {
                None
            };
            admission(r, Via::Certificate, cert)
        }
        None => Ok(Admission::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_lists() {
        assert_eq!(
            parse_cas(" authentication, signing,signing").unwrap(),
            vec![CaName::Signing, CaName::Authentication]
        );
        assert!(parse_cas("root").is_err());
        assert!(parse_cas("").is_err());
        assert!(parse_cas("signing,banana").is_err());
    }
}
