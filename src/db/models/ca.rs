//! CA certificates and issued certificates (with their issuance state).

use crate::db::DbConn;
use crate::db::schema::{cas, certificates};
use diesel::prelude::*;

/// A CA of the hierarchy.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = cas)]
pub struct CaRow {
    pub name: String,
    pub subject: String,
    pub cert_der: Vec<u8>,
    pub key_ref: String,
    pub created_at: i64,
}

impl CaRow {
    /// All CAs.
    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<CaRow>> {
        cas::table
            .order(cas::created_at.asc())
            .select(CaRow::as_select())
            .load(conn)
    }

    /// Store a CA.
    pub fn insert(conn: &mut DbConn, row: &CaRow) -> QueryResult<usize> {
        diesel::insert_into(cas::table).values(row).execute(conn)
    }
}

super::text_enum! {
    /// Issuance state of a certificate row (`certificates.state`): reserved → tbs_stored → issued.
    CertState {
        /// Serial reserved, nothing else yet.
        Reserved = "reserved",
        /// Linted to-be-signed bytes stored; signing may follow.
        TbsStored = "tbs_stored",
        /// Signed and stored.
        Issued = "issued",
        /// The intent to sign was recorded but the certificate never stored (the process died
        /// between signing and storing; the signature never left memory). Never issued.
        Abandoned = "abandoned",
    }
}

/// The states as text, for queries (each from [`CertState`]).
pub mod state {
    pub const RESERVED: &str = super::CertState::Reserved.as_str();
    pub const TBS_STORED: &str = super::CertState::TbsStored.as_str();
    pub const ISSUED: &str = super::CertState::Issued.as_str();
    pub const ABANDONED: &str = super::CertState::Abandoned.as_str();
}

/// A certificate row to insert with its TBS (state `tbs_stored`).
#[derive(Debug, Insertable)]
#[diesel(table_name = certificates)]
pub struct NewCertificate<'a> {
    pub serial: &'a str,
    pub issuer: &'a str,
    pub profile: &'a str,
    pub state: &'a str,
    pub tbs_der: Option<&'a [u8]>,
    pub not_before: i64,
    pub not_after: i64,
    pub created_at: i64,
    /// The card the certificate's key lives on (holder certificates from a batch).
    pub card_id: Option<i64>,
    /// SHA-256 of the certified public key.
    pub key_hash: Option<&'a [u8]>,
    /// The CRL shard its distribution point names (None: the CA's whole CRL).
    pub crl_shard: Option<i32>,
}

/// A certificate row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = certificates)]
pub struct CertificateRow {
    pub id: i64,
    pub serial: String,
    pub issuer: String,
    pub profile: String,
    pub state: String,
    pub tbs_der: Option<Vec<u8>>,
    pub cert_der: Option<Vec<u8>>,
    pub not_before: i64,
    pub not_after: i64,
    pub created_at: i64,
    pub issued_at: Option<i64>,
    pub card_id: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<i32>,
    pub status_seq: Option<i64>,
    pub crl_shard: Option<i32>,
}

impl CertificateRow {
    /// The DER of every issued, unrevoked certificate of `issuer` and `profile` still valid
    /// after `valid_after` (Unix seconds), newest first: the candidates a service certificate
    /// (OCSP responder, TLS server) is reused from.
    pub fn live_ders(
        conn: &mut DbConn,
        issuer: &str,
        profile: &str,
        valid_after: i64,
    ) -> QueryResult<Vec<Vec<u8>>> {
        certificates::table
            .filter(certificates::issuer.eq(issuer))
            .filter(certificates::profile.eq(profile))
            .filter(certificates::state.eq(CertState::Issued.as_str()))
            .filter(certificates::revoked_at.is_null())
            .filter(certificates::not_after.gt(valid_after))
            .order(certificates::id.desc())
            .select(certificates::cert_der.assume_not_null())
            .load(conn)
    }

    /// Reserve a serial. Fails with a unique violation if the serial exists.
    pub fn reserve(
        conn: &mut DbConn,
        serial: &str,
        issuer: &str,
        profile: &str,
        not_before: i64,
        not_after: i64,
        now: i64,
    ) -> QueryResult<i64> {
        diesel::insert_into(certificates::table)
            .values((
                certificates::serial.eq(serial),
                certificates::issuer.eq(issuer),
                certificates::profile.eq(profile),
                certificates::state.eq(state::RESERVED),
                certificates::not_before.eq(not_before),
                certificates::not_after.eq(not_after),
                certificates::created_at.eq(now),
            ))
            .returning(certificates::id)
            .get_result(conn)
    }

    /// Reserve serials and store their linted TBS (state `tbs_stored`) with multi-row
    /// inserts; returns the row ids in input order. Fails with a unique violation if any
    /// serial exists (nothing is then stored, as the caller's transaction rolls back).
    pub fn reserve_many(conn: &mut DbConn, rows: &[NewCertificate<'_>]) -> QueryResult<Vec<i64>> {
        for chunk in rows.chunks(200) {
            // Multi-row inserts do not build on the multi-backend connection.
            let insert = diesel::insert_into(certificates::table).values(chunk);
            match conn {
                DbConn::Pg(c) => insert.execute(c)?,
                DbConn::Sqlite(c) => insert.execute(c)?,
            };
        }
        let mut ids = std::collections::HashMap::with_capacity(rows.len());
        for chunk in rows.chunks(500) {
            let serials: Vec<&str> = chunk.iter().map(|r| r.serial).collect();
            let found: Vec<(i64, String)> = certificates::table
                .filter(certificates::serial.eq_any(serials))
                .select((certificates::id, certificates::serial))
                .load(conn)?;
            ids.extend(found.into_iter().map(|(id, s)| (s, id)));
        }
        rows.iter()
            .map(|r| {
                ids.get(r.serial)
                    .copied()
                    .ok_or(diesel::result::Error::NotFound)
            })
            .collect()
    }

    /// Store the linted TBS of a reserved serial; returns rows changed (0 = not reserved).
    pub fn store_tbs(conn: &mut DbConn, id: i64, tbs: &[u8]) -> QueryResult<usize> {
        diesel::update(
            certificates::table
                .filter(certificates::id.eq(id))
                .filter(certificates::state.eq(state::RESERVED)),
        )
        .set((
            certificates::tbs_der.eq(Some(tbs)),
            certificates::state.eq(state::TBS_STORED),
        ))
        .execute(conn)
    }

    /// Store the signed certificate.
    pub fn store_certificate(
        conn: &mut DbConn,
        id: i64,
        der: &[u8],
        now: i64,
    ) -> QueryResult<usize> {
        diesel::update(
            certificates::table
                .filter(certificates::id.eq(id))
                .filter(certificates::state.eq(state::TBS_STORED)),
        )
        .set((
            certificates::cert_der.eq(Some(der)),
            certificates::state.eq(state::ISSUED),
            certificates::issued_at.eq(Some(now)),
        ))
        .execute(conn)
    }

    /// A certificate by serial (hex).
    pub fn by_serial(conn: &mut DbConn, serial: &str) -> QueryResult<Option<CertificateRow>> {
        certificates::table
            .filter(certificates::serial.eq(serial))
            .select(CertificateRow::as_select())
            .first(conn)
            .optional()
    }
}
