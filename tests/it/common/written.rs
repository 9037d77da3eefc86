//! Written and delivered cards over a CA made from a given configuration: the starting point
//! of the revocation, verifier and linkage tests.

use super::*;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::ca::Hierarchy;
use kofu::ca::config::CaConfig;
use kofu::db::models::card::CardRow;
use kofu::db::schema::{cards, certificates};
use kofu::service::delivery::{self, Event};
use std::path::{Path, PathBuf};

/// Run the CA ceremony with the CA configuration at `conf` and load the issuing CAs.
pub fn init(env: &Env, conf: &Path) -> Hierarchy {
    let mut cfg = env.cfg.clone();
    cfg.ca_config = conf.to_path_buf();
    let ca_cfg = CaConfig::load(conf).unwrap();
    kofu::service::ca::init(
        &mut env.conn(),
        &cfg,
        &ca_cfg,
        &Actor::new("t", "cli"),
        now(),
    )
    .unwrap();
    kofu::service::ca::load(&mut env.conn(), &cfg, ca_cfg).unwrap()
}

/// Five written cards (the fifth holder is 12: authentication certificate only), delivered:
/// 0 and 3 handed over at the counter, 1 and 2 delivered by mail, 4 shipped. Also returns
/// each card's PIN, read before the PIN mailers go (the holders know them; kofu forgets).
pub fn written_cards(env: &Env, conf: &Path) -> (Vec<CardRow>, Vec<String>) {
    let tokens = blank_cards(env.dir.path());
    let batch = ordered_batch(env, 5);
    let out = run(batch_command(env, &tokens, batch)
        .env("KOFU_CARD_KEYGEN", "software")
        .env("KOFU_CA_CONFIG", conf));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<CardRow> = cards::table
        .filter(cards::batch_id.eq(batch))
        .order(cards::application_id.asc())
        .select(CardRow::as_select())
        .load(&mut *env.conn())
        .unwrap();
    let user = staff(env, "deliverer");
    let key = data_key();
    let pins: Vec<String> = rows
        .iter()
        .map(|c| {
            kofu::service::batches::pins(&key, c)
                .unwrap()
                .unwrap()
                .auth
                .clone()
        })
        .collect();
    for (i, card) in rows.iter().enumerate() {
        let events: Vec<Event> = match i {
            0 | 3 => vec![Event::HandedOver {
                identity_checked: true,
            }],
            4 => vec![Event::Shipped {
                tracking_number: "123456789012".into(),
            }],
            _ => vec![
                Event::Shipped {
                    tracking_number: "123456789012".into(),
                },
                Event::Delivered,
            ],
        };
        for e in events {
            delivery::record(
                &mut env.conn(),
                &key,
                &user,
                &card_number(&card.card_number),
                &e,
                now(),
            )
            .unwrap();
        }
    }
    (rows, pins)
}

/// (signing PEM path or None, authentication PEM path) of a card's certificates.
pub fn card_pems(env: &Env, card: &CardRow) -> (Option<PathBuf>, PathBuf) {
    let rows: Vec<(String, Vec<u8>)> = certificates::table
        .filter(certificates::card_id.eq(card.id))
        .filter(certificates::state.eq("issued"))
        .select((
            certificates::profile,
            certificates::cert_der.assume_not_null(),
        ))
        .load(&mut *env.conn())
        .unwrap();
    let mut sign = None;
    let mut auth = None;
    for (profile, stored) in rows {
        let der = opened(&stored);
        let path = env.path(&format!("{}-{profile}.pem", card.card_number));
        std::fs::write(&path, kofu::ca::der_to_pem(&der).unwrap()).unwrap();
        if profile == "signing" {
            sign = Some(path);
        } else {
            auth = Some(path);
        }
    }
    (sign, auth.unwrap())
}

pub fn ca_pem(env: &Env, h: &Hierarchy, ca: kofu::ca::profile::CaName) -> PathBuf {
    let path = env.path(&format!("{}.pem", ca.as_str()));
    std::fs::write(&path, kofu::ca::der_to_pem(&h.certs[&ca]).unwrap()).unwrap();
    path
}
