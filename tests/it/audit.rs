//! The audit chain: `kofu audit verify` passes on an intact log and, after one row is
//! altered, deleted or two are swapped, exits non-zero naming the first broken entry.

use crate::common::*;
use diesel::prelude::*;
use kofu::audit::{self, Actor};

fn fill(env: &Env, n: usize) {
    let actor = Actor::new("clerk1", "clerk");
    for i in 0..n {
        audit::append(
            &mut env.conn(),
            now().timestamp() + i as i64,
            &actor,
            "application.view",
            &format!("application:{i}"),
            "",
        )
        .unwrap();
    }
}

fn verify_cli(env: &Env) -> (bool, String) {
    let out = run(env.command().args(["audit", "verify"]));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn exec(env: &Env, sql: &str) {
    for stmt in sql.split(';') {
        diesel::sql_query(stmt).execute(&mut *env.conn()).unwrap();
    }
}

#[test]
fn tampering_is_detected_and_named() {
    for (what, sql, first_broken) in [
        (
            "altered",
            "UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 4",
            4,
        ),
        (
            "altered actor",
            "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 7",
            7,
        ),
        ("deleted", "DELETE FROM audit_log WHERE seq = 5", 5),
        ("deleted tail", "DELETE FROM audit_log WHERE seq = 10", 10),
        // Reordered: rows 3 and 6 exchange places.
        (
            "reordered",
            "UPDATE audit_log SET seq = 1000 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 6; \
             UPDATE audit_log SET seq = 6 WHERE seq = 1000",
            3,
        ),
    ] {
        each_backend(|env| {
            fill(env, 10);
            let (ok, text) = verify_cli(env);
            assert!(ok, "intact chain must verify: {text}");
            assert!(text.contains("10 entries"), "{text}");
            exec(env, sql);
            let (ok, text) = verify_cli(env);
            assert!(!ok, "{what}: tampering not detected");
            assert!(
                text.contains(&format!("entry {first_broken}")),
                "{what}: expected entry {first_broken} named, got: {text}"
            );
        });
    }
}

#[test]
fn concurrent_appenders_keep_one_chain() {
    each_backend(|env| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let pool = env.pool.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let mut c = pool.get().unwrap();
                        audit::append(
                            &mut c,
                            now().timestamp(),
                            &Actor::new(format!("u{t}"), "office"),
                            "x",
                            &format!("{t}:{i}"),
                            "",
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(audit::verify(&mut env.conn()).unwrap().entries, 200);
    });
}
