//! Renewal on the holder's own card (SPEC §2.6): after a change of the four fields (or at
//! the holder's request), a verified `renewal` application gets a new signing key pair made
//! on the same card, a new signing certificate, the old→new serial link, and the old signing
//! certificate revoked as superseded (unless it is already revoked, for instance as
//! affiliationChanged by the change feed). The holder is at the counter with the card and
//! types the card's PIN; kofu never stores it.
//!
//! Crash safety: the new certificate is issued through the issuer (intent first) with the
//! card id, so a rerun finds it and only writes and links what is missing; it never issues a
//! second one for the same key.

use crate::audit::{self, Actor};
use crate::ca::Hierarchy;
use crate::ca::crl::Reason;
use crate::ca::profile::Profile;
use crate::card::label;
use crate::card::readers::Readers;
use crate::card::token::{Keygen, Purpose};
use crate::db::models::application::{ApplicationRow, state as app_state};
use crate::db::schema::{applications, certificate_links, certificates};
use crate::db::{DbConn, DbPool};
use crate::error::{Error, Result};
use crate::pii::DataKey;
use crate::service::batches::spki_of;
use crate::service::issuance;
use crate::service::revocation::{self, card_status};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

/// What a renewal did.
#[derive(Debug, Clone, Serialize)]
pub struct Renewed {
    /// Card number.
    pub card_number: String,
    /// The renewal application.
    pub application_id: i64,
    /// The signing certificate it replaces (None if the card had none, e.g. a minor's).
    pub old_serial: Option<String>,
    /// The new signing certificate.
    pub new_serial: String,
    /// The old certificate's reason afterwards (superseded, or what it was revoked for).
    pub old_reason: Option<&'static str>,
}

/// Everything renewal needs.
pub struct Renewal<'a> {
    /// Connections.
    pub db: &'a DbPool,
    /// The CAs.
    pub ca: &'a Hierarchy,
    /// Personal-data key.
    pub key: &'a DataKey,
    /// Card readers.
    pub readers: &'a Readers,
    /// Where keys are made.
    pub keygen: Keygen,
    /// Serial prefix.
    pub prefix: u16,
    /// Who renews.
    pub actor: Actor,
}

impl<'a> Renewal<'a> {
    /// A renewal with `work`'s database, CA, key and serial prefix.
    pub fn of(
        work: &'a crate::service::batches::CardWork,
        readers: &'a Readers,
        keygen: Keygen,
        actor: Actor,
    ) -> Self {
        Renewal {
            db: &work.db,
            ca: &work.ca,
            key: &work.key,
            readers,
            keygen,
            prefix: work.config.instance_prefix,
            actor,
        }
    }
}

/// (id, serial, DER, revocation reason) of a signing certificate.
type SigningCert = (i64, String, Option<Vec<u8>>, Option<i32>);

impl Renewal<'_> {
    /// Renew card `number`'s signing certificate with the holder's `pin`.
    pub fn renew(
        &self,
        number: &crate::card::number::CardNumber,
        pin: &str,
        now: DateTime<Utc>,
    ) -> Result<Renewed> {
        let mut conn = self.db.get()?;
        let card = revocation::card_by_number(&mut conn, number)?;
        if card.status != card_status::ACTIVE {
            return Err(Error::Conflict(format!(
                "card {number} is {}; only an active card is renewed",
                card.status
            )));
        }
        let app: ApplicationRow = applications::table
            .filter(applications::card_id.eq(card.id))
            .filter(
                applications::kind
                    .eq(crate::db::models::application::ApplicationKind::Renewal.as_str()),
            )
            .filter(applications::state.eq(app_state::VERIFIED))
            .order(applications::id.desc())
            .select(ApplicationRow::as_select())
            .first(&mut *conn)
            .optional()?
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "card {number} has no renewal application checked by the clerk"
                ))
            })?;
        let signing: Vec<SigningCert> = certificates::table
            .filter(certificates::card_id.eq(card.id))
            .filter(certificates::profile.eq(Profile::Signing.as_str()))
            .filter(certificates::state.eq(crate::db::models::ca::CertState::Issued.as_str()))
            .order(certificates::id.asc())
            .select((
                certificates::id,
                certificates::serial,
                certificates::cert_der,
                certificates::revocation_reason,
            ))
            .load(&mut *conn)?;
        // The certificate this renewal replaces is recorded when it first starts (the newest
        // signing certificate then); anything newer on the card was issued by this renewal
        // before a crash, and is finished rather than issued again.
        let renews: Option<i64> = applications::table
            .find(app.id)
            .select(applications::renews_certificate_id)
            .first(&mut *conn)?;
        let renews = match renews {
            Some(id) => Some(id),
            None => match signing.last() {
                Some((id, ..)) => {
                    diesel::update(
                        applications::table
                            .find(app.id)
                            .filter(applications::renews_certificate_id.is_null()),
                    )
                    .set(applications::renews_certificate_id.eq(id))
                    .execute(&mut *conn)?;
                    Some(*id)
                }
                None => None,
            },
        };
        let old = signing.iter().find(|c| Some(c.0) == renews).cloned();
        let pending: Vec<SigningCert> = signing
            .into_iter()
            .filter(|c| c.0 > renews.unwrap_or(0))
            .collect();
        let chip = card.chip_serial.clone().unwrap_or_default();
        drop(conn);

        let handle = self
            .readers
            .open_card(number, &chip, pin)?
            .map_err(|e| Error::Forbidden(e.to_string()))?;
        let applicant = crate::service::intake::applicant(self.key, &app)?;
        let (new_serial, new_der) = match pending.into_iter().last() {
            Some((_, serial, Some(stored), _)) => (
                serial,
                crate::service::cert_store::open(Some(self.key), &stored)?,
            ),
            _ => {
                handle.remove(Purpose::Signing)?;
                let (spki, _) = handle.key_pair(Purpose::Signing, self.keygen)?;
                let mut db = self.db;
                let req = issuance::HolderRequest {
                    card_id: card.id,
                    application_id: app.id,
                    keys: vec![(Profile::Signing, spki)],
                };
                let issued = issuance::issue_holder(
                    &mut db,
                    self.ca,
                    self.key,
                    &req,
                    None,
                    &self.actor,
                    self.prefix,
                    now,
                )?
                .pop()
                .ok_or_else(|| Error::Internal("no certificate issued".into()))?;
                (issued.serial, issued.der)
            }
        };

        // Write, then read back: the card's signing key must be the certificate's.
        handle.write_certificate(Purpose::Signing, &new_der)?;
        let face_json = crate::service::batches::face_json(&card, &applicant)?;
        handle.write_data(label::FACE, &face_json, true)?;
        let back = handle.read_back()?;
        if back.certificate(Purpose::Signing) != Some(new_der.as_slice())
            || back.public_key(Purpose::Signing) != Some(spki_of(&new_der)?.as_slice())
        {
            return Err(Error::Crypto(format!(
                "card {number}: the new signing certificate or key did not read back"
            )));
        }

        let now_s = now.timestamp();
        let mut conn = self.db.get()?;
        conn.transaction(|c| {
            let new_id: i64 = certificates::table
                .filter(certificates::serial.eq(&new_serial))
                .select(certificates::id)
                .first(c)?;
            let mut old_reason = None;
            if let Some((old_id, old_serial, _, reason)) = &old {
                link(c, *old_id, new_id, now_s)?;
                // The transition table decides: superseded from good or held; a certificate
                // already revoked for good keeps its reason.
                let rule = revocation::rule(revocation::Action::Supersede)?;
                old_reason = if rule
                    .cert_from
                    .contains(&revocation::CertStatus::of(*reason))
                {
                    let to = rule.reason.unwrap_or(Reason::Superseded);
                    revocation::revoke_one(
                        c,
                        *old_id,
                        old_serial,
                        to,
                        crate::db::models::application::ApplicationKind::Renewal.as_str(),
                        &self.actor,
                        now_s,
                    )?;
                    Some(to.as_str())
                } else {
                    reason
                        .map(Reason::from_code)
                        .transpose()?
                        .map(Reason::as_str)
                };
            }
            let n = diesel::update(
                applications::table
                    .find(app.id)
                    .filter(applications::state.eq(app_state::VERIFIED)),
            )
            .set((
                applications::state.eq(app_state::ISSUED),
                applications::updated_at.eq(now_s),
            ))
            .execute(c)?;
            if n != 1 {
                return Err(Error::Changed(format!(
                    "application {} changed meanwhile",
                    app.id
                )));
            }
            audit::append(
                c,
                now_s,
                &self.actor,
                "card.renewed",
                &format!("card:{number}"),
                &format!(
                    "application={} old={} new={new_serial}",
                    app.id,
                    old.as_ref().map_or("none", |o| o.1.as_str())
                ),
            )?;
            Ok(Renewed {
                card_number: number.to_string(),
                application_id: app.id,
                old_serial: old.as_ref().map(|o| o.1.clone()),
                new_serial: new_serial.clone(),
                old_reason,
            })
        })
    }
}

/// Record old → new (once).
fn link(conn: &mut DbConn, old_id: i64, new_id: i64, now_s: i64) -> Result<()> {
    let exists: i64 = certificate_links::table
        .filter(certificate_links::old_certificate_id.eq(old_id))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        diesel::insert_into(certificate_links::table)
            .values((
                certificate_links::old_certificate_id.eq(old_id),
                certificate_links::new_certificate_id.eq(new_id),
                certificate_links::created_at.eq(now_s),
            ))
            .execute(conn)?;
        crate::service::status::record_renewal(conn, old_id, new_id, now_s)?;
    }
    Ok(())
}

/// Whether a card has a renewal application the clerk checked, waiting to be written.
pub fn waiting(conn: &mut DbConn, card_id: i64) -> Result<bool> {
    use crate::db::schema::applications;
    let n: i64 = applications::table
        .filter(applications::card_id.eq(card_id))
        .filter(
            applications::kind
                .eq(crate::db::models::application::ApplicationKind::Renewal.as_str()),
        )
        .filter(
            applications::state
                .eq(crate::db::models::application::ApplicationState::Verified.as_str()),
        )
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Renew card `number`'s signing certificate on the card, as `actor` (the card in the
/// configured reader, the holder's signing PIN).
pub fn renew_on_card(
    work: &crate::service::batches::CardWork,
    actor: Actor,
    number: &crate::card::number::CardNumber,
    pin: &str,
) -> Result<Renewed> {
    let readers = crate::card::readers::Readers::open(&work.config.cards.module)?;
    Renewal::of(work, &readers, work.config.cards.keygen()?, actor).renew(
        number,
        pin,
        work.clock.now(),
    )
}
