//! CA keys in a PKCS#11 token (SoftHSM2 standing in for an HSM): the ceremony generates them
//! on the token, non-extractable, and a certificate they sign verifies with openssl.

use crate::common::*;
use std::path::PathBuf;
use std::process::Command;

/// A SoftHSM2 configuration with one initialised token, in `dir`.
pub fn softhsm_token(dir: &std::path::Path, label: &str, pin: &str) -> PathBuf {
    let conf = softhsm_conf(dir, "tokens");
    let out = run(Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            "87654321",
        ]));
    assert!(
        out.status.success(),
        "softhsm2-util: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf
}

#[test]
fn ca_key_in_softhsm_signs_a_certificate_openssl_verifies() {
    each_backend(|env| {
        let conf = softhsm_token(env.dir.path(), "kofu-ca-keys", "123456");
        let hsm = |c: &mut Command| {
            c.env("SOFTHSM2_CONF", &conf)
                .env("KOFU_CA_KEY_BACKEND", "pkcs11")
                .env("KOFU_PKCS11_MODULE", softhsm_module())
                .env("KOFU_PKCS11_TOKEN", "kofu-ca-keys")
                .env("KOFU_PKCS11_PIN", "123456")
                .env_remove("KOFU_CA_PASSPHRASE");
        };
        let mut init = env.command();
        hsm(init.args(["ca", "init"]));
        let out = run(&mut init);
        assert!(
            out.status.success(),
            "ca init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // No key files were written: the keys are on the token.
        let ca_dir = env.cfg.ca_dir();
        let key_files: Vec<_> = std::fs::read_dir(&ca_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("key"))
            .collect();
        assert!(key_files.is_empty(), "key files written: {key_files:?}");

        let (_, csr) = csr("hsm-test.example.jp", &["hsm-test.example.jp"]);
        let csr_path = env.path("tls.csr");
        write(&csr_path, &csr);
        let mut issue = env.command();
        hsm(issue
            .args(["ca", "issue", "--profile", "tls-server", "--csr"])
            .arg(&csr_path));
        let out = run(&mut issue);
        assert!(
            out.status.success(),
            "ca issue: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cert = env.path("tls.pem");
        write(&cert, &out.stdout);
        let v = openssl_verify(
            &ca_dir.join("root.pem"),
            Some(&ca_dir.join("infrastructure.pem")),
            &cert,
            &[],
        );
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));

        // The token holds the four CA private keys, sensitive and never extractable.
        let out = run(Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", &conf)
            .arg("--module")
            .arg(softhsm_module())
            .args([
                "--token-label",
                "kofu-ca-keys",
                "--login",
                "--pin",
                "123456",
                "--list-objects",
                "--type",
                "privkey",
            ]));
        let listing = String::from_utf8_lossy(&out.stdout);
        for ca in ["root", "signing", "authentication", "infrastructure"] {
            assert!(
                listing.contains(&format!("label:      kofu-{ca}")),
                "no key for {ca} in:\n{listing}"
            );
        }
        assert_eq!(
            listing
                .matches("Access:     sensitive, always sensitive, never extractable")
                .count(),
            4,
            "{listing}"
        );
        assert_eq!(
            listing.matches("Usage:      sign\n").count(),
            4,
            "CA keys only sign:\n{listing}"
        );
    });
}
