//! Personal data at rest: after a batch has written cards (signing certificates carry the
//! holder's four fields), neither the SQLite file with its WAL nor a `pg_dump` of the whole
//! database holds a holder's name, kana, address or date of birth — in UTF-8, in the DER
//! encodings a certificate uses (UTF8String is UTF-8; BMPString is UTF-16BE; the date of
//! birth is a PrintableString YYYYMMDD), or hex-encoded as pg_dump writes bytea.

use crate::common::*;
use diesel::prelude::*;
use kofu::db::schema::certificates;

fn found(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every way a field may sit in a database file or dump.
fn encodings(s: &str) -> Vec<(String, Vec<u8>)> {
    let utf8 = s.as_bytes().to_vec();
    let bmp: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
    vec![
        ("UTF-8".into(), utf8.clone()),
        ("BMPString (UTF-16BE)".into(), bmp.clone()),
        ("hex of UTF-8".into(), hex::encode(&utf8).into_bytes()),
        ("hex of UTF-16BE".into(), hex::encode(&bmp).into_bytes()),
    ]
}

#[test]
fn no_holder_field_is_in_clear_in_the_database() {
    each_backend(|env| {
        software_batch(env, 2);
        // The signing certificates exist, and open to the fields they carry.
        let stored: Vec<Vec<u8>> = certificates::table
            .filter(certificates::profile.eq("signing"))
            .filter(certificates::state.eq("issued"))
            .select(certificates::cert_der.assume_not_null())
            .load(&mut *env.conn())
            .unwrap();
        assert_eq!(stored.len(), 2);
        let der = opened(&stored[0]);
        assert!(
            found(&der, "試験 太郎".as_bytes()),
            "the certificate names the holder"
        );

        let needles = [
            "試験 太郎0",
            "試験 太郎1",
            "シケン タロウ",
            "東京都千代田区千代田1-1-1",
            "千代田1-1-2",
            "19750401",
            "1975-04-01",
        ];
        let dump = database_bytes(env, &[]);
        assert!(
            dump.len() > 50_000,
            "the dump holds the rows: {}",
            dump.len()
        );
        for n in needles {
            for (how, bytes) in encodings(n) {
                assert!(
                    !found(&dump, &bytes),
                    "{}: {n:?} found in clear ({how})",
                    env.db.label
                );
            }
        }

        // A signing certificate stored in clear by an earlier version is sealed at the next
        // start of `kofu serve`, and opens to the same certificate.
        let id: i64 = certificates::table
            .filter(certificates::profile.eq("signing"))
            .select(certificates::id)
            .first(&mut *env.conn())
            .unwrap();
        diesel::update(certificates::table.find(id))
            .set(certificates::cert_der.eq(Some(der.clone())))
            .execute(&mut *env.conn())
            .unwrap();
        diesel::delete(
            kofu::db::schema::counters::table
                .filter(kofu::db::schema::counters::name.eq("certificates_sealed")),
        )
        .execute(&mut *env.conn())
        .unwrap();
        drop(Server::start(env.command()));
        let again: Vec<u8> = certificates::table
            .find(id)
            .select(certificates::cert_der.assume_not_null())
            .first(&mut *env.conn())
            .unwrap();
        assert_ne!(again.first(), Some(&0x30), "sealed at start");
        assert_eq!(opened(&again), der);
    });
}
