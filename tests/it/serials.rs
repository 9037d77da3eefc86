//! Serial numbers: two issuer instances with different prefixes, issuing concurrently into
//! one database, never collide, and each serial carries its instance's prefix.

use crate::common::*;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::ca::profile::Profile;
use kofu::ca::serial::Serial;
use kofu::service::issuance::{self, IssueRequest};
use std::sync::Arc;

const PER_INSTANCE: usize = 10_000;

#[test]
fn two_instances_issue_twenty_thousand_distinct_serials() {
    each_backend(|env| {
        env.init_ca();
        // TLS-server certificates: the profile that may certify one key again.
        let (_, csr) = checked_csr("kofu.example.jp", &["kofu.example.jp"]);
        let req = Arc::new(IssueRequest {
            profile: Profile::TlsServer,
            ca: None,
            csr,
            identity: None,
        });
        // Two instances: each loads the CA itself and has its own pool and prefix.
        let handles: Vec<_> = [0x0101u16, 0x0202u16]
            .into_iter()
            .map(|prefix| {
                let h = env.load_ca();
                let pool = kofu::db::pool(&env.db.url, 2).unwrap();
                let req = Arc::clone(&req);
                std::thread::spawn(move || {
                    let mut conn = pool.get().unwrap();
                    let actor = Actor::new(format!("instance-{prefix:04x}"), "operator");
                    for _ in 0..PER_INSTANCE {
                        issuance::issue(&mut conn, &h, &req, &actor, prefix, now()).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("issuer thread");
        }
        use kofu::db::schema::certificates::dsl as c;
        let serials: Vec<String> = c::certificates
            .filter(c::profile.eq("tls-server"))
            .filter(c::state.eq("issued"))
            .select(c::serial)
            .load(&mut *env.conn())
            .unwrap();
        assert_eq!(serials.len(), 2 * PER_INSTANCE);
        let distinct: std::collections::HashSet<_> = serials.iter().collect();
        assert_eq!(distinct.len(), 2 * PER_INSTANCE, "serials collided");
        let mut per_prefix = std::collections::HashMap::new();
        for s in &serials {
            let serial = Serial::from_hex(s).unwrap();
            assert_eq!(serial.as_bytes().len(), 16);
            *per_prefix.entry(serial.prefix().unwrap()).or_insert(0) += 1;
        }
        assert_eq!(per_prefix.get(&0x0101), Some(&PER_INSTANCE));
        assert_eq!(per_prefix.get(&0x0202), Some(&PER_INSTANCE));
    });
}
