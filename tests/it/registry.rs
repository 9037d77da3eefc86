//! The resident-registry connectors: CSV extracts imported all-or-nothing with every bad
//! line named, a change feed applied exactly once, and the HTTP connector against a real
//! HTTP server that speaks the documented protocol (and one that is down or slow).

use crate::common::*;
use chrono::NaiveDate;
use diesel::prelude::*;
use kofu::audit::Actor;
use kofu::registry::extract::{self, DEMO_EXTRACT};
use kofu::registry::http::{HttpRegistry, LookupRequest, LookupResponse};
use kofu::registry::{ExtractRegistry, Query, Registry, RegistryStatus};
use std::io::{Read, Write};
use std::time::Duration;

const HEADER: &str =
    "resident_code,municipality_code,name,name_kana,birth_date,sex,address,postal_code,status\n";

pub fn residents(env: &Env) -> i64 {
    extract::resident_count(&mut env.conn()).unwrap()
}

/// A valid extract of `n` invented residents of 131016.
pub fn extract_rows(n: usize) -> String {
    let mut s = String::from(HEADER);
    for i in 0..n {
        s.push_str(&format!(
            "R{i:07},131016,試験 太郎{i},シケン　タロウ,{}-{:02}-{:02},{},東京都千代田区千代田{}-{}-{},1000001,resident\n",
            1940 + i % 70,
            1 + i % 12,
            1 + i % 28,
            1 + i % 2,
            1 + i % 5,
            1 + i % 20,
            1 + i % 30
        ));
    }
    s
}

#[test]
fn bad_rows_import_nothing_and_every_bad_line_is_named() {
    each_backend(|env| {
        let file = env.path("bad.csv");
        write(
            &file,
            format!(
                "{HEADER}\
                 A1,131016,山田 太郎,ヤマダ　タロウ,1960-10-10,1,東京都千代田区千代田1-1,100-0001,resident\n\
                 A2,131017,山田 花子,ヤマダ　ハナコ,1961-01-01,2,東京都千代田区千代田1-1,1000001,resident\n\
                 A3,131016,山田 次郎,山田,1962-01-01,1,東京都千代田区千代田1-1,1000001,resident\n\
                 A4,131016,山田 三郎,ヤマダ　サブロウ,平成31年5月1日,1,東京都千代田区千代田1-1,1000001,resident\n\
                 A5,131016,山田 四郎,ヤマダ　シロウ,1963-01-01,x,東京都千代田区千代田1-1,10000,moved\n\
                 A1,131016,山田 太郎,ヤマダ　タロウ,1960-10-10,1,東京都千代田区千代田1-1,1000001,resident\n\
                 A7,131016,山田 七郎\n"
            ),
        );
        let out = run(env.command().args(["registry", "import"]).arg(&file));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        for expected in [
            "line 3, municipality_code",
            "line 4, name_kana",
            "line 5, birth_date",
            "line 6, sex",
            "line 6, postal_code",
            "line 6, status",
            "line 7, resident_code: the same resident as line 2",
            "line 8, line: has 3 fields",
        ] {
            assert!(
                stderr.contains(expected),
                "missing {expected:?} in {stderr}"
            );
        }
        assert!(!stderr.contains("line 2,"), "line 2 is good: {stderr}");
        assert_eq!(residents(env), 0, "nothing imported");

        let unknown = env.path("unknown.csv");
        write(&unknown, "resident_code,municipality,name\nA,B,C\n");
        let out = run(env.command().args(["registry", "import"]).arg(&unknown));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("line 1, municipality_code: column missing")
                && stderr.contains("line 1, municipality: unknown column"),
            "{stderr}"
        );
    });
}

#[test]
fn sixty_one_bad_lines_are_all_named() {
    each_backend(|env| {
        let file = env.path("bad61.csv");
        let mut text = String::from(HEADER);
        for i in 0..61 {
            text.push_str(&format!(
                "B{i},131016,山田 太郎,ヤマダ　タロウ,1960-10-10,x,東京都千代田区千代田1-1,100-0001,resident\n"
            ));
        }
        write(&file, text);
        let out = run(env.command().args(["registry", "import"]).arg(&file));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        for line in 2..=62 {
            assert!(
                stderr.contains(&format!("line {line}, sex")),
                "line {line} not named in {stderr}"
            );
        }
        assert!(stderr.contains("61 wrong line(s)"), "{stderr}");
        assert!(!stderr.contains("more)"), "{stderr}");
        assert_eq!(residents(env), 0, "nothing imported");
        // An input that never ends is refused by size, for imports and change files alike.
        for what in ["import", "changes"] {
            let out = run(env.command().args(["registry", what, "/dev/zero"]));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: {stderr}");
            assert!(stderr.contains("longer than 64 KiB"), "{what}: {stderr}");
        }
    });
}

#[test]
fn a_thousand_rows_import_fully_and_re_import_updates() {
    each_backend(|env| {
        let file = env.path("good.csv");
        write(&file, extract_rows(1000));
        let out = run(env.command().args(["registry", "import"]).arg(&file));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("imported 1000 residents"));
        assert_eq!(residents(env), 1000);
        // The same file again: nothing is duplicated, and nothing is written again.
        let out = run(env.command().args(["registry", "import"]).arg(&file));
        assert!(out.status.success());
        assert_eq!(residents(env), 1000);
        let newest_import = || {
            kofu::audit::list(&mut env.conn(), None, 10)
                .unwrap()
                .into_iter()
                .find(|e| e.action == "registry.import")
                .unwrap()
                .detail
        };
        assert!(
            newest_import().contains("new=0 updated=0 unchanged=1000"),
            "{}",
            newest_import()
        );
        // One resident moved and one more: one updated, one new, the rest left alone.
        let mut text = extract_rows(1001);
        let moved = text.lines().nth(1).unwrap().to_string();
        text = text.replacen(&moved, &moved.replace("千代田1-", "丸の内9-"), 1);
        write(&file, text);
        let out = run(env.command().args(["registry", "import"]).arg(&file));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(residents(env), 1001);
        assert!(
            newest_import().contains("new=1 updated=1 unchanged=999"),
            "{}",
            newest_import()
        );
        // The staged rows of both imports are gone.
        let staged: i64 = kofu::db::schema::resident_staging::table
            .count()
            .get_result(&mut *env.conn())
            .unwrap();
        assert_eq!(staged, 0);
    });
}

fn lookup(
    env: &Env,
    name: &str,
    kana: &str,
    dob: (i32, u32, u32),
    address: &str,
) -> kofu::registry::Lookup {
    ExtractRegistry::new(data_key())
        .lookup(
            &mut env.conn(),
            &Query {
                municipality_code: "131016".into(),
                name: name.into(),
                name_kana: kana.into(),
                birth_date: NaiveDate::from_ymd_opt(dob.0, dob.1, dob.2).unwrap(),
                address: address.into(),
            },
        )
        .unwrap()
}

#[test]
fn change_feed_is_applied_once_and_kept_as_events() {
    each_backend(|env| {
        extract::import_extract(
            &mut env.conn(),
            &data_key(),
            DEMO_EXTRACT.as_bytes(),
            &Actor::new("t", "cli"),
            now(),
        )
        .unwrap();
        let feed = env.path("changes.csv");
        write(
            &feed,
            "event_id,municipality_code,resident_code,kind,effective_date,name,name_kana,birth_date,sex,address,postal_code\n\
             E-1,131016,131016-900001,move_within,令和8年11月1日,,,,,東京都千代田区大手町2-2-2,1000004\n\
             E-2,131016,131016-900002,name_change,2026-11-02,田中 花子,タナカ　ハナコ,,,,\n\
             E-3,131016,131016-900005,death,2026-11-03,,,,,,\n",
        );
        let out = run(env.command().args(["registry", "changes"]).arg(&feed));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("applied 3 change events (0 already")
        );
        let out = run(env.command().args(["registry", "changes"]).arg(&feed));
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("applied 0 change events (3 already"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );

        use kofu::db::schema::registry_events::dsl as ev;
        let events: Vec<(String, String, String)> = ev::registry_events
            .order(ev::id)
            .select((ev::event_id, ev::kind, ev::changed_fields))
            .load(&mut *env.conn())
            .unwrap();
        assert_eq!(
            events,
            vec![
                (
                    "E-1".into(),
                    "move_within".into(),
                    "address,postal_code".into()
                ),
                ("E-2".into(), "name_change".into(), "name,name_kana".into()),
                ("E-3".into(), "death".into(), "status".into()),
            ]
        );
        // The registry now answers with the new facts.
        let moved = lookup(env, "髙橋 一郎", "タカハシ イチロウ", (1960, 10, 10), "");
        assert_eq!(
            moved.record.unwrap().person.address,
            "東京都千代田区大手町2-2-2"
        );
        let dead = lookup(
            env,
            "佐藤 陽子",
            "サトウ ヨウコ",
            (1970, 7, 7),
            "東京都千代田区大手町1-1-1",
        );
        assert_eq!(
            dead.status,
            RegistryStatus::Ambiguous,
            "two 佐藤 陽子 born the same day"
        );

        // A feed with a bad line changes nothing, and names the line.
        let bad = env.path("bad-changes.csv");
        write(
            &bad,
            "event_id,municipality_code,resident_code,kind,effective_date,name,name_kana,birth_date,sex,address,postal_code\n\
             E-4,131016,131016-900003,move_within,2026-11-04,,,,,東京都千代田区九段南1-1-1,\n\
             E-5,131016,NOBODY,death,2026-11-04,,,,,,\n\
             E-6,131016,131016-900004,move_within,2026-11-04,,,,,,\n",
        );
        let out = run(env.command().args(["registry", "changes"]).arg(&bad));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("line 3, resident_code: no such resident")
                && stderr.contains("line 4, address"),
            "{stderr}"
        );
        let n: i64 = ev::registry_events
            .count()
            .get_result(&mut *env.conn())
            .unwrap();
        assert_eq!(n, 3, "nothing applied from the bad feed");
    });
}

/// A tiny HTTP/1.1 registry service: answers each lookup with `answer(request)` after `delay`.
fn registry_server(
    delay: Duration,
    answer: fn(&LookupRequest) -> (u16, String),
) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(1) {
            let mut s = stream.unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = s.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(at) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= at + 4 + len {
                        assert!(
                            text.starts_with("POST /v1/residents/lookup HTTP/1.1"),
                            "{text}"
                        );
                        assert!(
                            text.contains("authorization: Bearer registry-token")
                                || text.contains("Authorization: Bearer registry-token")
                        );
                        break buf[at + 4..at + 4 + len].to_vec();
                    }
                }
                if n == 0 {
                    return;
                }
            };
            let req: LookupRequest = serde_json::from_slice(&body).unwrap();
            std::thread::sleep(delay);
            let (status, json) = answer(&req);
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            );
        }
    });
    (url, handle)
}

fn query() -> Query {
    Query {
        municipality_code: "131016".into(),
        name: "山田 太郎".into(),
        name_kana: "ヤマダ タロウ".into(),
        birth_date: NaiveDate::from_ymd_opt(1960, 10, 10).unwrap(),
        address: "千代田区千代田1-1".into(),
    }
}

#[test]
fn http_connector_speaks_the_protocol_and_reports_outages() {
    let env = &envs().remove(0);
    let (url, h) = registry_server(Duration::ZERO, |req| {
        assert_eq!(req.birth_date, "1960-10-10");
        let answer = LookupResponse {
            status: RegistryStatus::Resident,
            record: Some(kofu::registry::ResidentRecord {
                resident_code: "X1".into(),
                municipality_code: req.municipality_code.clone(),
                person: kofu::ca::identity::Person {
                    name: "山田 太郎".into(),
                    name_kana: "ヤマダ　タロウ".into(),
                    birth_date: NaiveDate::from_ymd_opt(1960, 10, 10).unwrap(),
                    sex: kofu::ca::identity::Sex::Male,
                    address: "東京都千代田区千代田一丁目1番".into(),
                    postal_code: "1000001".into(),
                },
            }),
        };
        (200, serde_json::to_string(&answer).unwrap())
    });
    let reg =
        HttpRegistry::new(&url, Some("registry-token".into()), Duration::from_secs(2)).unwrap();
    let l = reg.lookup(&mut env.conn(), &query()).unwrap();
    assert_eq!(l.status, RegistryStatus::Resident);
    assert_eq!(
        l.record.unwrap().person.address,
        "東京都千代田区千代田一丁目1番"
    );
    h.join().unwrap();

    // Down: nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reg = HttpRegistry::new(
        &format!("http://127.0.0.1:{port}"),
        Some("registry-token".into()),
        Duration::from_secs(2),
    )
    .unwrap();
    let err = reg.lookup(&mut env.conn(), &query()).unwrap_err();
    assert!(matches!(err, kofu::error::Error::Unavailable(_)), "{err}");

    // Slow: answers after the timeout.
    let (url, h) = registry_server(Duration::from_millis(1500), |_| {
        (200, r#"{"status":"not_found","record":null}"#.into())
    });
    let reg = HttpRegistry::new(
        &url,
        Some("registry-token".into()),
        Duration::from_millis(300),
    )
    .unwrap();
    let err = reg.lookup(&mut env.conn(), &query()).unwrap_err();
    assert!(err.to_string().contains("no answer within 300 ms"), "{err}");
    h.join().unwrap();

    // Broken: a server error.
    let (url, h) = registry_server(Duration::ZERO, |_| (500, "{}".into()));
    let reg =
        HttpRegistry::new(&url, Some("registry-token".into()), Duration::from_secs(2)).unwrap();
    let err = reg.lookup(&mut env.conn(), &query()).unwrap_err();
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    h.join().unwrap();
}

/// The migration that turns the residents' keyed hashes from hex text into bytes keeps
/// every imported resident, and reverting it gives the hex text back.
#[test]
fn resident_keys_survive_the_binary_migration_both_ways() {
    use diesel::prelude::*;
    use diesel_migrations::MigrationHarness;
    each_backend(|env| {
        kofu::registry::extract::import_extract(
            &mut env.conn(),
            &data_key(),
            kofu::registry::extract::DEMO_EXTRACT.as_bytes(),
            &kofu::audit::Actor::new("t", "cli"),
            now(),
        )
        .unwrap();
        let sqlite = env.db.label == "sqlite";
        let key_of = |conn: &mut kofu::db::DbConn| -> String {
            diesel::sql_query(if sqlite {
                "SELECT lower(hex(dob_key)) AS k FROM residents ORDER BY id LIMIT 1"
            } else {
                "SELECT encode(dob_key, 'hex') AS k FROM residents ORDER BY id LIMIT 1"
            })
            .get_result::<HexKey>(conn)
            .unwrap()
            .k
        };
        let before = key_of(&mut env.conn());
        assert_eq!(before.len(), 32);
        let text_of = "SELECT dob_key AS k FROM residents ORDER BY id LIMIT 1";
        // Down to hex text and up again: revert the migrations down to and including the
        // binary-keys one (newest first), check, and run them all again.
        match &mut *env.conn() {
            kofu::db::DbConn::Sqlite(c) => {
                for _ in 0..MIGRATIONS_AFTER_BINARY_KEYS + 1 {
                    c.revert_last_migration(kofu::db::SQLITE_MIGRATIONS)
                        .unwrap();
                }
                assert_eq!(
                    diesel::sql_query(text_of)
                        .get_result::<HexKey>(c)
                        .unwrap()
                        .k,
                    before
                );
                c.run_pending_migrations(kofu::db::SQLITE_MIGRATIONS)
                    .unwrap();
            }
            kofu::db::DbConn::Pg(c) => {
                for _ in 0..MIGRATIONS_AFTER_BINARY_KEYS + 1 {
                    c.revert_last_migration(kofu::db::PG_MIGRATIONS).unwrap();
                }
                assert_eq!(
                    diesel::sql_query(text_of)
                        .get_result::<HexKey>(c)
                        .unwrap()
                        .k,
                    before
                );
                c.run_pending_migrations(kofu::db::PG_MIGRATIONS).unwrap();
            }
        }
        assert_eq!(key_of(&mut env.conn()), before);
        assert_eq!(
            kofu::registry::extract::resident_count(&mut env.conn()).unwrap(),
            kofu::registry::extract::DEMO_EXTRACT.lines().count() as i64 - 1
        );
    });
}

/// Migrations newer than `…_binary_resident_keys` (each must revert cleanly).
const MIGRATIONS_AFTER_BINARY_KEYS: usize = 5;

#[derive(diesel::QueryableByName)]
struct HexKey {
    #[diesel(sql_type = diesel::sql_types::Text)]
    k: String,
}

/// An import while `kofu serve` takes writes: an application posted while the import is
/// still staging its rows is stored at once (the import does not hold the write lock until
/// it moves the rows), the import is invisible until it has moved them all, and afterwards
/// every resident is there and nothing is left staged.
#[test]
fn the_server_takes_writes_during_an_import() {
    each_backend(|env| {
        let office = tokens(env)[&kofu::service::users::Role::Office].clone();
        let server = Server::start(env.command());
        let file = env.path("big.csv");
        write(&file, extract_rows(100_000));
        let mut import = env
            .command()
            .args(["registry", "import"])
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let staged = || -> i64 {
            kofu::db::schema::resident_staging::table
                .count()
                .get_result(&mut *env.conn())
                .unwrap()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while staged() == 0 {
            assert!(
                import.try_wait().unwrap().is_none(),
                "the import ended before staging"
            );
            assert!(std::time::Instant::now() < deadline, "nothing staged");
            std::thread::sleep(Duration::from_millis(20));
        }
        let body = crate::intake::application(
            "取込中 花子",
            "トリコミチュウ ハナコ",
            "1990-01-01",
            "東京都千代田区千代田1-1",
            "131016",
        );
        let resp = server
            .agent
            .post(&format!("{}/api/v1/applications", server.base))
            .header("authorization", &format!("Bearer {office}"))
            .send_json(body)
            .unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(
            residents(env),
            0,
            "the import is not visible before it is complete"
        );
        assert!(import.wait().unwrap().success());
        assert_eq!(residents(env), 100_000);
        assert_eq!(staged(), 0);
    });
}
