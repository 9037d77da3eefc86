//! Writing one card of a batch: number and PINs recorded first, the token personalised, keys
//! found or made on it, certificates reused or issued, everything written and read back; a
//! card that cannot be finished is spoiled (see the module header of `batches` for the
//! crash-safety rules each step follows).

use super::allocation::replaced_cards;
use super::*;

impl Runner<'_> {
    /// Write the application's live card; false if it turned out spoiled.
    pub(super) fn write_card(&self, batch_id: i64, app: &ApplicationRow) -> Result<bool> {
        let now = self.clock.now();
        let now_s = now.timestamp();
        let applicant = intake::applicant(self.key, app)?;
        let signing = self
            .ca
            .config
            .signing_age_reached(applicant.person.birth_date, now);
        let mut db = self.db;

        // 1. Card number and PINs, recorded before the card is touched.
        let row = allocate(
            self.db,
            self.key,
            &self.actor,
            app,
            self.ca.config.signing_min_age,
            now,
        )?;
        let pins: Pins = pins(self.key, &row)?
            .ok_or_else(|| Error::Internal(format!("card {} has no PINs", row.card_number)))?;
        step(&row.card_number, "allocated");

        // 2. Personalise (or reopen) the card.
        let card = if row.state == state::ALLOCATED {
            let taken = self.readers.personalise(
                &row.card_number,
                &so_pin(self.key, &row.card_number),
                &pins.auth,
                &mut |t| self.record_aside(batch_id, &row, t),
            )?;
            let card = match taken {
                Taken::Card(card) => card,
                Taken::NumberBurnt(t) => {
                    self.spoil(&row, &format!("set aside: {}", t.detail), now_s)?;
                    return Ok(false);
                }
            };
            let n = db.with(|c| {
                Ok(diesel::update(
                    cards::table
                        .find(row.id)
                        .filter(cards::state.eq(state::ALLOCATED))
                        .filter(diesel::dsl::exists(self.lease.held(now_s))),
                )
                .set((
                    cards::state.eq(state::PERSONALISED),
                    cards::chip_serial.eq(card.serial()),
                    cards::updated_at.eq(now_s),
                ))
                .execute(c)?)
            })?;
            if n != 1 {
                return Err(self.changed(&row));
            }
            card
        } else {
            let serial = row.chip_serial.as_deref().unwrap_or_default();
            match self
                .readers
                .open_card(&row.card_number, serial, &pins.auth)?
            {
                Ok(card) => card,
                Err(why) => {
                    // Either way the chip is not to be used again: one that refuses its
                    // PIN, or one that no reader shows any more (SoftHSM2 loses a token
                    // whose file a kill tore; a real chip may have died), which the
                    // operator pulls by its serial if it is still in the stack.
                    let t = match why {
                        NotOpened::Refused(t) => t,
                        NotOpened::Missing(detail) => SetAside {
                            slot: 0,
                            chip_serial: serial.to_string(),
                            label: row.card_number.clone(),
                            reason: AsideReason::Unreadable,
                            detail,
                        },
                    };
                    self.record_aside(batch_id, &row, &t)?;
                    self.spoil(&row, &t.detail, now_s)?;
                    return Ok(false);
                }
            }
        };
        let swept = card.sweep()?;
        if swept > 0 {
            tracing::info!(card = %row.card_number, objects = swept, "leftovers of an interrupted write removed");
        }
        step(&row.card_number, "personalised");

        // 3. Key pairs, on the card or written to it.
        let mut purposes = vec![Purpose::Authentication];
        if signing {
            purposes.push(Purpose::Signing);
        }
        let mut keys = Vec::new();
        for p in &purposes {
            keys.push((*p, card.key_pair(*p, self.keygen)?));
        }
        step(&row.card_number, "keys");

        // 4. Certificates: reuse what was issued, abandon intents never completed.
        let certs = self.certificates(&row, app, &keys, now)?;
        if row.state == state::ALLOCATED || row.state == state::PERSONALISED {
            let n = db.with(|c| {
                Ok(diesel::update(
                    cards::table
                        .find(row.id)
                        .filter(cards::state.eq(state::PERSONALISED))
                        .filter(diesel::dsl::exists(self.lease.held(now_s))),
                )
                .set((
                    cards::state.eq(state::CERTIFIED),
                    cards::updated_at.eq(now_s),
                ))
                .execute(c)?)
            })?;
            if n != 1 {
                return Err(self.changed(&row));
            }
        }
        step(&row.card_number, "certified");

        // 5. Write, then read back and compare.
        let face_json = face_json(&row, &applicant)?;
        for c in &certs {
            card.write_certificate(c.purpose, &c.der)?;
        }
        card.write_data(label::CARD_NUMBER, row.card_number.as_bytes(), false)?;
        card.write_data(label::FACE, &face_json, true)?;
        if let Some(sign_pin) = &pins.sign {
            card.write_data(
                label::SIGNING_PIN,
                pin::verifier(sign_pin)?.as_bytes(),
                true,
            )?;
        }
        step(&row.card_number, "written");
        compare(&card, &certs, &keys, &row.card_number, &face_json, &pins)?;
        step(&row.card_number, "read back");

        let origin = keys
            .iter()
            .map(|(_, (_, o))| *o)
            .find(|o| *o == Origin::Software)
            .unwrap_or(Origin::Card);
        let serials: Vec<String> = certs
            .iter()
            .map(|c| format!("{}={}", c.purpose.id(), c.serial))
            .collect();
        db.with(|c| {
            c.transaction(|c| {
                let n = diesel::update(
                    cards::table
                        .find(row.id)
                        .filter(cards::state.eq(state::CERTIFIED))
                        .filter(diesel::dsl::exists(self.lease.held(now_s))),
                )
                .set((
                    cards::state.eq(state::WRITTEN),
                    cards::keygen.eq(origin.as_str()),
                    cards::written_at.eq(now_s),
                    cards::updated_at.eq(now_s),
                ))
                .execute(c)?;
                if n != 1 {
                    return Err(self.changed(&row));
                }
                diesel::update(
                    applications::table
                        .find(app.id)
                        .filter(applications::state.eq(app_state::ORDERED)),
                )
                .set((
                    applications::state.eq(app_state::ISSUED),
                    applications::updated_at.eq(now_s),
                ))
                .execute(c)?;
                // A reissue or a renewal replaces the holder's old card: revoked now that
                // the new one is written.
                for old in replaced_cards(c, app, row.id)? {
                    let serials =
                        crate::service::revocation::supersede_card(c, old.id, &self.actor, now_s)?;
                    audit::append(
                        c,
                        now_s,
                        &self.actor,
                        "card.replaced",
                        &format!("card:{}", old.card_number),
                        &format!(
                            "by card:{} application:{}; certificates revoked: {}",
                            row.card_number,
                            app.reference,
                            if serials.is_empty() {
                                "none".to_string()
                            } else {
                                serials.join(" ")
                            }
                        ),
                    )?;
                }
                if app.delivery == crate::db::models::application::Delivery::Counter
                    && let Some(email) = &applicant.email
                {
                    crate::mail::enqueue(
                        c,
                        self.key,
                        email,
                        crate::mail::Notice::CounterReady {
                            name: applicant.person.name.clone(),
                            reference: app.reference.clone(),
                        },
                        now,
                    )?;
                }
                audit::append(
                    c,
                    now_s,
                    &self.actor,
                    "card.written",
                    &format!("card:{}", row.card_number),
                    &format!(
                        "application:{} keygen={} {}",
                        app.reference,
                        origin.as_str(),
                        serials.join(" ")
                    ),
                )?;
                Ok(())
            })
        })?;
        Ok(true)
    }

    /// Mark a card spoiled: its number is retired, unfinished certificate intents are
    /// abandoned, and certificates already issued for its keys are named in the audit
    /// entry as needing revocation.
    fn spoil(&self, row: &CardRow, why: &str, now_s: i64) -> Result<()> {
        tracing::warn!(card = %row.card_number, reason = why, "card spoiled");
        let mut db = self.db;
        db.with(|c| {
            c.transaction(|c| {
                let n = diesel::update(
                    cards::table
                        .find(row.id)
                        .filter(cards::state.eq(&row.state))
                        .filter(diesel::dsl::exists(self.lease.held(now_s))),
                )
                .set((cards::state.eq(state::SPOILED), cards::updated_at.eq(now_s)))
                .execute(c)?;
                if n != 1 {
                    return Err(self.changed(row));
                }
                self.abandon_intents(c, row, now_s)?;
                let issued = crate::service::revocation::revoke_spoiled_card(
                    c,
                    row.id,
                    &self.actor,
                    chrono::DateTime::from_timestamp(now_s, 0).unwrap_or_default(),
                )?;
                audit::append(
                    c,
                    now_s,
                    &self.actor,
                    "card.spoiled",
                    &format!("card:{}", row.card_number),
                    &format!(
                        "{why}; certificates revoked: {}",
                        if issued.is_empty() {
                            "none".to_string()
                        } else {
                            issued.join(" ")
                        }
                    ),
                )?;
                Ok(())
            })
        })
    }

    /// The error when a fenced update of `row` changed nothing: the card moved on under
    /// another writer, or this run lost its lease.
    fn changed(&self, row: &CardRow) -> Error {
        Error::Changed(format!(
            "card {} changed under this run, or the run's lease ({}) was lost; nothing more is written to it here",
            row.card_number, self.lease.name
        ))
    }

    /// Abandon the card's certificate intents that never got their certificate stored.
    fn abandon_intents(&self, c: &mut DbConn, row: &CardRow, now_s: i64) -> Result<()> {
        let stale: Vec<(i64, String)> = certificates::table
            .filter(certificates::card_id.eq(row.id))
            .filter(certificates::state.eq_any([cert_state::RESERVED, cert_state::TBS_STORED]))
            .select((certificates::id, certificates::serial))
            .load(c)?;
        for (id, serial) in &stale {
            diesel::update(certificates::table.find(*id).filter(
                certificates::state.eq_any([cert_state::RESERVED, cert_state::TBS_STORED]),
            ))
            .set(certificates::state.eq(cert_state::ABANDONED))
            .execute(c)?;
            audit::append(
                c,
                now_s,
                &self.actor,
                "certificate.abandoned",
                &format!("serial:{serial}"),
                &format!(
                    "card:{} run interrupted before the certificate was stored",
                    row.card_number
                ),
            )?;
        }
        Ok(())
    }

    /// The card's certificates, one per key: reused when issued before (for the same key),
    /// issued now otherwise. Intents left without a certificate are abandoned first.
    fn certificates(
        &self,
        row: &CardRow,
        app: &ApplicationRow,
        keys: &[(Purpose, (Vec<u8>, Origin))],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<CardCertificate>> {
        let now_s = now.timestamp();
        let mut db = self.db;
        let existing: Vec<CardCert> = db.with(|c| {
            Ok(certificates::table
                .filter(certificates::card_id.eq(row.id))
                .select((
                    certificates::id,
                    certificates::serial,
                    certificates::profile,
                    certificates::state,
                    certificates::cert_der,
                ))
                .load(c)?)
        })?;
        db.with(|c| c.transaction(|c| self.abandon_intents(c, row, now_s)))?;

        let mut out = Vec::new();
        let mut missing = Vec::new();
        for (purpose, (spki, _)) in keys {
            let profile = profile_of(*purpose);
            let issued = existing
                .iter()
                .find(|(_, _, p, st, _)| p == profile.as_str() && st == cert_state::ISSUED);
            match issued {
                Some((_, serial, _, _, Some(stored))) => {
                    let der = &crate::service::cert_store::open(Some(self.key), stored)?;
                    if spki_of(der)? != *spki {
                        return Err(Error::Conflict(format!(
                            "card {}: certificate {serial} does not match the {} key on the card; \
                             the card must be destroyed and its certificate revoked",
                            row.card_number,
                            purpose.id()
                        )));
                    }
                    out.push(CardCertificate {
                        purpose: *purpose,
                        serial: serial.clone(),
                        der: der.clone(),
                    });
                }
                _ => missing.push((*purpose, profile, spki.clone())),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let req = issuance::HolderRequest {
            card_id: row.id,
            application_id: app.id,
            keys: missing
                .iter()
                .map(|(_, profile, spki)| (*profile, spki.clone()))
                .collect(),
        };
        let issued = issuance::issue_holder(
            &mut db,
            self.ca,
            self.key,
            &req,
            Some(self.lease),
            &self.actor,
            self.prefix,
            now,
        )?;
        for ((purpose, _, _), cert) in missing.into_iter().zip(issued) {
            out.push(CardCertificate {
                purpose,
                serial: cert.serial,
                der: cert.der,
            });
        }
        out.sort_by_key(|c| c.purpose == Purpose::Signing);
        Ok(out)
    }
}

/// A certificate that belongs on a card.
struct CardCertificate {
    purpose: Purpose,
    serial: String,
    der: Vec<u8>,
}

/// A certificate row of a card: id, serial, profile, state, DER once issued.
type CardCert = (i64, String, String, String, Option<Vec<u8>>);

fn profile_of(p: Purpose) -> Profile {
    match p {
        Purpose::Authentication => Profile::Authentication,
        Purpose::Signing => Profile::Signing,
    }
}

/// The face data a card carries (number, kana name, birth date, sex, expiry), as written to
/// it: JSON of [`FaceData`].
pub(crate) fn face_json(row: &CardRow, applicant: &intake::Applicant) -> Result<Vec<u8>> {
    let expires_on = chrono::NaiveDate::parse_from_str(&row.expires_on, "%Y-%m-%d")
        .map_err(|e| Error::Internal(format!("card expiry: {e}")))?;
    let face = FaceData {
        card_number: row.card_number.clone(),
        name_kana: applicant.person.name_kana.clone(),
        birth_date: applicant.person.birth_date,
        sex: applicant.person.sex,
        expires_on,
    };
    serde_json::to_vec(&face).map_err(|e| Error::Internal(format!("face data: {e}")))
}

/// The public key (SubjectPublicKeyInfo, DER) of a certificate.
pub(crate) fn spki_of(cert_der: &[u8]) -> Result<Vec<u8>> {
    Ok(openssl::x509::X509::from_der(cert_der)?
        .public_key()?
        .public_key_to_der()?)
}

/// Read the card back and compare it with what was meant to be written.
fn compare(
    card: &Card,
    certs: &[CardCertificate],
    keys: &[(Purpose, (Vec<u8>, Origin))],
    card_number: &str,
    face: &[u8],
    pins: &Pins,
) -> Result<()> {
    let got = card.read_back()?;
    let bad = |what: String| {
        Err(Error::Crypto(format!(
            "card {card_number} read back wrong: {what}"
        )))
    };
    for CardCertificate {
        purpose: p, der, ..
    } in certs
    {
        if got.certificate(*p) != Some(der.as_slice()) {
            return bad(format!("{} certificate", p.id()));
        }
        let Some(public) = got.public_key(*p) else {
            return bad(format!("{} public key missing", p.id()));
        };
        if spki_of(der)? != public {
            return bad(format!(
                "{} public key differs from its certificate",
                p.id()
            ));
        }
        match got.private_key(*p) {
            Some(f) if f.sensitive && !f.extractable => {}
            _ => return bad(format!("{} private key missing or extractable", p.id())),
        }
    }
    if keys.len() != certs.len() || got.private_keys.len() != certs.len() {
        return bad("unexpected keys on the card".into());
    }
    if got.data(label::CARD_NUMBER) != Some(card_number.as_bytes()) {
        return bad("card number".into());
    }
    if got.data(label::FACE) != Some(face) {
        return bad("face data".into());
    }
    match (&pins.sign, got.data(label::SIGNING_PIN)) {
        (None, None) => {}
        (Some(p), Some(v)) if pin::check(&String::from_utf8_lossy(v), p)? => {}
        _ => return bad("signing PIN".into()),
    }
    Ok(())
}
