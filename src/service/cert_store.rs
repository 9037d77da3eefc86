//! Certificates at rest. A signing certificate carries the holder's four fields (name,
//! address, date of birth, sex) in its subject and extensions, so its DER — and the copy of
//! its TBS kept as the intent to sign — is sealed with the personal-data key like every other
//! personal record (SPEC §6). What CRLs, OCSP and linkage use (serial, issuer, status, dates,
//! key hash) stays in plain columns beside it, so none of them opens a certificate.
//! Authentication and infrastructure certificates name no person and stay in clear.

use crate::ca::profile::Profile;
use crate::db::DbConn;
use crate::db::schema::{certificates, counters};
use crate::error::{Error, Result};
use crate::pii::DataKey;
use diesel::prelude::*;

/// The associated data certificates are sealed under.
const TABLE: &str = "certificates";

/// Whether a profile's certificates are sealed at rest.
pub fn sealed(profile: Profile) -> bool {
    profile == Profile::Signing
}

/// What to store for a certificate's (or TBS's) DER: sealed for the signing profile.
pub fn seal(key: Option<&DataKey>, profile: Profile, der: &[u8]) -> Result<Vec<u8>> {
    if !sealed(profile) {
        return Ok(der.to_vec());
    }
    key.ok_or_else(|| {
        Error::Config("signing certificates are sealed: the personal-data key is needed".into())
    })?
    .seal(TABLE, der)
}

/// Whether a stored DER is in clear: a certificate or TBS starts with a SEQUENCE tag, a
/// sealed one with the sealed format's version byte.
fn in_clear(stored: &[u8]) -> bool {
    stored.first() == Some(&0x30)
}

/// The DER of a stored certificate: opened if sealed (one stored in clear, from before
/// sealing, is returned as it is).
pub fn open(key: Option<&DataKey>, stored: &[u8]) -> Result<Vec<u8>> {
    if in_clear(stored) {
        return Ok(stored.to_vec());
    }
    key.ok_or_else(|| {
        Error::Config("this certificate is sealed: the personal-data key is needed".into())
    })?
    .open(TABLE, stored)
}

/// Counter row marking that every signing certificate stored before sealing is sealed.
const SWEPT: &str = "certificates_sealed";

/// Seal the signing certificates (and TBS copies) a database holds in clear from before,
/// a thousand rows a transaction, resumable; once done, marked so later starts skip it.
/// Returns how many rows it sealed.
pub fn seal_stored(conn: &mut DbConn, key: &DataKey) -> Result<usize> {
    let done: Option<i64> = counters::table
        .find(SWEPT)
        .select(counters::value)
        .first(conn)
        .optional()?;
    if done == Some(1) {
        return Ok(0);
    }
    let mut sealed_rows = 0;
    let mut after = 0i64;
    loop {
        type Row = (i64, Option<Vec<u8>>, Option<Vec<u8>>);
        let rows: Vec<Row> = certificates::table
            .filter(certificates::profile.eq(Profile::Signing.as_str()))
            .filter(certificates::id.gt(after))
            .order(certificates::id)
            .limit(1000)
            .select((
                certificates::id,
                certificates::tbs_der,
                certificates::cert_der,
            ))
            .load(conn)?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        after = last;
        let clear = |b: &Option<Vec<u8>>| b.as_deref().is_some_and(in_clear);
        conn.transaction(|c| -> Result<()> {
            for (id, tbs, der) in &rows {
                if !clear(tbs) && !clear(der) {
                    continue;
                }
                let reseal = |b: &Option<Vec<u8>>| -> Result<Option<Vec<u8>>> {
                    b.as_ref()
                        .map(|d| {
                            if in_clear(d) {
                                seal(Some(key), Profile::Signing, d)
                            } else {
                                Ok(d.clone())
                            }
                        })
                        .transpose()
                };
                diesel::update(certificates::table.find(*id))
                    .set((
                        certificates::tbs_der.eq(reseal(tbs)?),
                        certificates::cert_der.eq(reseal(der)?),
                    ))
                    .execute(c)?;
                sealed_rows += 1;
            }
            Ok(())
        })?;
    }
    diesel::delete(counters::table.find(SWEPT)).execute(conn)?;
    diesel::insert_into(counters::table)
        .values((counters::name.eq(SWEPT), counters::value.eq(1i64)))
        .execute(conn)?;
    Ok(sealed_rows)
}
