//! E-mail through a real SMTP server (Python's aiosmtpd with a Maildir): the message as
//! received (headers, the Japanese subject encoded, the body), and a server that is down
//! at first: the notice waits in the queue and goes out once it is up.

use crate::common::*;
use kofu::config::MailConfig;
use kofu::mail::{self, Mailer};
use kofu::service::intake::{self, ApplicationInput, Forms};
use std::path::Path;
use std::process::Command;

/// Subject (decoded), raw Subject header, To, From, charset and body of a received message.
fn read_message(file: &Path) -> Vec<String> {
    let script = r#"
import email, sys
from email.header import decode_header, make_header
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
cs = m.get_content_charset()
print(str(make_header(decode_header(m['Subject']))))
print(m['Subject'].replace('\n', ' '))
print(m['To']); print(m['From']); print(cs)
print(m.get_payload(decode=True).decode(cs))
"#;
    let out = run(Command::new("python3").arg("-c").arg(script).arg(file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn notices_wait_for_the_mail_server_and_arrive_intact() {
    each_backend(|env| {
        let key = data_key();
        let actor = kofu::audit::Actor::new("test", "cli");
        let (office, _) = kofu::service::users::add(
            &mut env.conn(),
            "office-m",
            kofu::service::users::Role::Office,
            None,
            &actor,
            now(),
        )
        .unwrap();
        let input = ApplicationInput {
            kind: "new".into(),
            name: "髙橋 﨑子".into(),
            name_kana: "タカハシ サキコ".into(),
            birth_date: "昭和59年2月29日".into(),
            sex: "female".into(),
            address: "東京都千代田区千代田1-1".into(),
            postal_code: "100-0001".into(),
            municipality_code: "131016".into(),
            delivery: "mail".into(),
            email: Some("sakiko@example.jp".into()),
            forms: Forms {
                application: true,
                power_of_attorney: true,
                consent: true,
            },
        };
        let (_, reference, _) =
            intake::create(&mut env.conn(), &key, &input, office.id, &actor, now())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mail::pending(&mut env.conn()).unwrap(), 1);

        let port = free_port();
        let cfg = MailConfig {
            host: Some("127.0.0.1".into()),
            port,
            security: "none".into(),
            from: "社会保障カード発行事務局 <noreply@example.jp>".into(),
            timeout_s: 5,
            ..MailConfig::default()
        };
        let mailer = Mailer::from_config(&cfg, kofu::config::DeliveryConfig::default().office())
            .unwrap()
            .unwrap();

        // The server is down: the notice stays queued, and is not retried at once.
        let round = mail::deliver_due(&env.pool, &key, &mailer, now()).unwrap();
        assert_eq!((round.sent, round.deferred), (0, 1));
        assert_eq!(mail::pending(&mut env.conn()).unwrap(), 1);
        let round = mail::deliver_due(&env.pool, &key, &mailer, now()).unwrap();
        assert_eq!((round.sent, round.deferred), (0, 0), "backing off");

        // Up again: after the back-off it is delivered, once.
        let maildir = env.dir.path().join("maildir");
        let _smtp = start_smtp(port, &maildir);
        let later = now() + chrono::Duration::seconds(61);
        let round = mail::deliver_due(&env.pool, &key, &mailer, later).unwrap();
        assert_eq!((round.sent, round.deferred), (1, 0));
        assert_eq!(mail::pending(&mut env.conn()).unwrap(), 0);
        let round = mail::deliver_due(&env.pool, &key, &mailer, later).unwrap();
        assert_eq!(round.sent, 0, "sent once");

        let files: Vec<_> = std::fs::read_dir(maildir.join("new"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        let m = read_message(&files[0]);
        assert_eq!(
            m[0],
            format!("【社会保障カード】申請を受け付けました（{reference}）")
        );
        assert!(m[1].starts_with("=?utf-8?"), "subject encoded: {}", m[1]);
        assert_eq!(m[2], "sakiko@example.jp");
        assert!(m[3].contains("noreply@example.jp"), "{}", m[3]);
        assert_eq!(m[4], "utf-8");
        let body = m[5..].join("\n");
        assert!(body.contains("髙橋 﨑子 様"), "{body}");
        assert!(
            body.contains(&reference) && body.contains("本人限定受取郵便"),
            "{body}"
        );

        // The queued address and name are sealed at rest, on every backend: the stored row
        // holds neither in clear, though opening it with the data key gives both back (so the
        // check looks at the row that carries them).
        use diesel::prelude::*;
        use kofu::db::schema::mail_queue;
        let rows: Vec<(String, Vec<u8>, Option<String>)> = mail_queue::table
            .select((
                mail_queue::kind,
                mail_queue::message,
                mail_queue::last_error,
            ))
            .load(&mut *env.conn())
            .unwrap();
        assert_eq!(rows.len(), 1);
        for (kind, sealed, last_error) in &rows {
            let clear = format!(
                "{kind} {} {}",
                String::from_utf8_lossy(sealed),
                last_error.as_deref().unwrap_or("")
            );
            assert!(!clear.contains("sakiko@example.jp"), "address in clear");
            assert!(!clear.contains("﨑子"), "name in clear");
            let opened: serde_json::Value = key.open_json("mail_queue.message", sealed).unwrap();
            assert!(opened.to_string().contains("sakiko@example.jp"), "{opened}");
        }
        if env.db.label == "sqlite" {
            // And nowhere in the database files: the file and its WAL together, which must
            // hold the sealed row itself (so the check reads where the row lives).
            let mut files = Vec::new();
            for f in ["kofu.db", "kofu.db-wal"] {
                let path = env.dir.path().join(f);
                if f == "kofu.db" || path.exists() {
                    files.extend(std::fs::read(&path).expect("the database file"));
                }
            }
            let sealed = &rows[0].1;
            let probe = &sealed[sealed.len() / 2..sealed.len() / 2 + 32];
            assert!(
                files.windows(probe.len()).any(|w| w == probe),
                "the sealed row is in the files read"
            );
            let hay = String::from_utf8_lossy(&files);
            assert!(
                !hay.contains("sakiko@example.jp"),
                "address in clear in the database files"
            );
        }
    });
}
