//! Bad input to `kofu ca issue`: each gets a clear error naming what is wrong, and nothing
//! is stored (no certificate row, no audit entry); holder profiles are refused outright.

use crate::certificates::count_certs;
use crate::common::*;
use openssl::pkey::PKey;

fn audit_len(env: &Env) -> i64 {
    kofu::audit::verify(&mut env.conn()).unwrap().entries
}

/// A CSR for `key` signed with `digest`, as an old tool would make it.
fn csr_signed_with(
    key: &PKey<openssl::pkey::Private>,
    digest: openssl::hash::MessageDigest,
) -> Vec<u8> {
    let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "kofu.example.jp").unwrap();
    b.set_subject_name(&name.build()).unwrap();
    b.set_pubkey(key).unwrap();
    b.sign(key, digest).unwrap();
    b.build().to_pem().unwrap()
}

#[test]
fn bad_csrs_and_profiles_are_refused_and_change_nothing() {
    each_backend(|env| {
        env.init_ca();
        let (_, good_csr) = csr("kofu.example.jp", &["kofu.example.jp"]);

        // A CSR whose signature does not verify: flip a bit in the signature.
        let req = openssl::x509::X509Req::from_pem(&good_csr).unwrap();
        let mut der = req.to_der().unwrap();
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let forged = env.path("forged.csr");
        write(&forged, &der);

        let weak_key = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
        let weak = env.path("weak.csr");
        write(&weak, csr_for(&weak_key, "card", &[]));

        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let sha1 = env.path("sha1.csr");
        write(
            &sha1,
            csr_signed_with(&key, openssl::hash::MessageDigest::sha1()),
        );
        let md5 = env.path("md5.csr");
        write(
            &md5,
            csr_signed_with(&key, openssl::hash::MessageDigest::md5()),
        );

        let garbage = env.path("garbage.csr");
        write(
            &garbage,
            "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n",
        );
        let good = env.path("good.csr");
        write(&good, &good_csr);

        let tls = |csr: &std::path::Path| -> Vec<std::ffi::OsString> {
            vec![
                "--profile".into(),
                "tls-server".into(),
                "--csr".into(),
                csr.into(),
            ]
        };
        let cases: Vec<(&str, Vec<std::ffi::OsString>, &str)> = vec![
            ("malformed CSR", tls(&garbage), "csr: not a PKCS#10"),
            ("forged CSR", tls(&forged), "signature does not verify"),
            ("1024-bit key", tls(&weak), "1024 bits is too weak"),
            ("SHA-1 signature", tls(&sha1), "sha1WithRSAEncryption"),
            ("MD5 signature", tls(&md5), "md5WithRSAEncryption"),
            (
                "unknown profile",
                vec![
                    "--profile".into(),
                    "wizard".into(),
                    "--csr".into(),
                    good.clone().into(),
                ],
                "unknown profile \"wizard\"",
            ),
            (
                "missing file",
                tls(std::path::Path::new("/nonexistent.csr")),
                "cannot read /nonexistent.csr",
            ),
            (
                "endless input",
                tls(std::path::Path::new("/dev/zero")),
                "/dev/zero is larger than 1 MiB",
            ),
        ];
        let certs_before = count_certs(env);
        let audit_before = audit_len(env);
        for (what, args, expected) in cases {
            let out = run(env.command().args(["ca", "issue"]).args(&args));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: accepted");
            assert!(out.stdout.is_empty(), "{what}: printed a certificate");
            assert!(
                stderr.contains(expected),
                "{what}: expected {expected:?} in {stderr}"
            );
            assert!(
                stderr.contains("KF0400"),
                "{what}: a bad-input code, got {stderr}"
            );
        }
        // Holder certificates are never issued from a request, whatever the request.
        for profile in ["signing", "authentication"] {
            let out = run(env
                .command()
                .args(["ca", "issue", "--profile", profile, "--csr"])
                .arg(&good));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{profile}: accepted");
            assert!(
                stderr.contains("KF0403") && stderr.contains("never from a request"),
                "{profile}: {stderr}"
            );
        }
        assert_eq!(count_certs(env), certs_before, "nothing stored");
        assert_eq!(audit_len(env), audit_before, "nothing audited");

        // And the good request goes through the same command.
        let out = run(env
            .command()
            .args(["ca", "issue", "--profile", "tls-server", "--csr"])
            .arg(&good));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(count_certs(env), certs_before + 1);
    });
}

#[test]
fn ca_init_refuses_to_overwrite() {
    each_backend(|env| {
        env.init_ca();
        let out = run(env.command().args(["ca", "init"]));
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
    });
}
