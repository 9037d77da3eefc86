//! The first start of `kofu serve` on an empty data directory, and what the CLI on the same
//! data directory then finds.

use crate::common::*;
use std::process::Command;

/// `kofu` with neither the CA passphrase nor the personal-data key given: only what the data
/// directory holds.
fn bare(env: &Env) -> Command {
    let mut c = env.command();
    c.env_remove("KOFU_CA_PASSPHRASE")
        .env_remove("KOFU_DATA_KEY");
    c
}

#[test]
fn the_cli_finds_the_keys_the_first_start_generated() {
    each_backend(|env| {
        // Before any start, the CLI says what is missing and how to get it.
        let out = run(bare(env).args(["crl", "publish"]));
        assert!(!out.status.success());
        drop(Server::start(bare(env)));
        for f in ["data-key", "ca-passphrase"] {
            assert!(env.cfg.data_dir.join(f).is_file(), "{f} generated");
        }
        let file = env.path("one.csv");
        write(
            &file,
            format!(
                "{}\nA1,131016,山田 太郎,ヤマダ　タロウ,1960-10-10,1,東京都千代田区千代田1-1,100-0001,resident\n",
                kofu::registry::extract::EXTRACT_COLUMNS.join(",")
            ),
        );
        for args in [
            &["registry", "import", file.to_str().unwrap()][..],
            &["crl", "publish"][..],
        ] {
            let out = run(bare(env).args(args));
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
}

/// The first start makes the data and CA directories 0700 and every key, passphrase and
/// certificate file in them 0600; a later start names a key file someone made
/// world-readable. (The test's own SQLite file is made by the test, not by kofu.)
#[test]
fn files_are_private_and_a_readable_key_is_named() {
    use std::os::unix::fs::PermissionsExt;
    each_backend(|env| {
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let first = env.path("first.log");
        drop(Server::start_logged(bare(env), &first));
        let data = &env.cfg.data_dir;
        assert_eq!(mode(data), 0o700, "{}", data.display());
        assert_eq!(mode(&data.join("ca")), 0o700);
        let mut private = vec![data.join("data-key"), data.join("ca-passphrase")];
        for e in std::fs::read_dir(data.join("ca")).unwrap() {
            private.push(e.unwrap().path());
        }
        for p in &private {
            assert_eq!(mode(p), 0o600, "{}", p.display());
        }
        let key = data.join("data-key");
        let log = std::fs::read_to_string(&first).unwrap();
        assert!(!log.contains(&format!("{} is", key.display())), "{log}");

        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let second = env.path("second.log");
        drop(Server::start_logged(bare(env), &second));
        let log = std::fs::read_to_string(&second).unwrap();
        assert!(
            log.contains(&format!("warning: {} is 0644", key.display())),
            "{log}"
        );
    });
}

/// The PBKDF2 iteration count of an encrypted PKCS#8 key file, as `openssl asn1parse` shows it.
fn iterations(file: &std::path::Path) -> u64 {
    let out = run(std::process::Command::new("openssl")
        .args(["asn1parse", "-in"])
        .arg(file));
    let text = String::from_utf8_lossy(&out.stdout);
    let after = text.split("PBKDF2").nth(1).expect("a PBKDF2 key file");
    let int = after
        .lines()
        .find(|l| l.contains("prim: INTEGER"))
        .and_then(|l| l.rsplit(':').next())
        .expect("iteration count");
    u64::from_str_radix(int.trim(), 16).unwrap()
}

/// Key files are written at 600,000 PBKDF2-HMAC-SHA256 iterations; one written at openssl's
/// old default of 2,048 is re-wrapped by `kofu ca rewrap-keys` (same passphrase, still read
/// by openssl and by `kofu serve`); a wrong passphrase re-wraps nothing.
#[test]
fn key_files_have_a_2026_work_factor_and_old_ones_are_rewrapped() {
    each_backend(|env| {
        drop(Server::start(bare(env)));
        let ca = env.cfg.data_dir.join("ca");
        let keys: Vec<std::path::PathBuf> = std::fs::read_dir(&ca)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".key.pem"))
            .collect();
        assert!(keys.len() >= 7, "{keys:?}");
        for k in &keys {
            assert_eq!(iterations(k), 600_000, "{}", k.display());
        }
        let pass = std::fs::read_to_string(env.cfg.data_dir.join("ca-passphrase")).unwrap();
        let signing = ca.join("signing.key.pem");
        let old = env.path("old.key.pem");
        let pass_arg = format!("pass:{pass}");
        run(std::process::Command::new("openssl")
            .args([
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-v2prf",
                "hmacWithSHA256",
            ])
            .args([
                "-iter", "2048", "-passin", &pass_arg, "-passout", &pass_arg, "-in",
            ])
            .arg(&signing)
            .arg("-out")
            .arg(&old));
        std::fs::rename(&old, &signing).unwrap();
        assert_eq!(iterations(&signing), 2048);
        let before = std::fs::read(&signing).unwrap();

        let out = run(bare(env)
            .env("KOFU_CA_PASSPHRASE", "not the passphrase at all")
            .args(["ca", "rewrap-keys"]));
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nothing was re-wrapped"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&signing).unwrap(), before);

        let out = run(bare(env).args(["ca", "rewrap-keys"]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(said.lines().count(), keys.len(), "{said}");
        for k in &keys {
            assert_eq!(iterations(k), 600_000, "{}", k.display());
        }
        let read = run(std::process::Command::new("openssl")
            .args(["pkey", "-noout", "-passin", &pass_arg, "-in"])
            .arg(&signing));
        assert!(read.status.success());
        drop(Server::start(bare(env)));
        let audit = kofu::audit::list(&mut env.conn(), None, 100).unwrap();
        assert!(audit.iter().any(|e| e.action == "ca.keys.rewrapped"));
    });
}
