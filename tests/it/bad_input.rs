//! Bad input to `kofu ca issue`: each gets a clear error naming what is wrong, and nothing
//! is stored (no certificate row, no audit entry).

use crate::certificates::count_certs;
use crate::common::*;
use openssl::pkey::PKey;

fn audit_len(env: &Env) -> i64 {
    kofu::audit::verify(&mut env.conn()).unwrap().entries
}

#[test]
fn bad_csrs_profiles_and_identities_are_refused_and_change_nothing() {
    each_backend(|env| {
        env.init_ca();
        let good_id = env.path("id.json");
        write(&good_id, HOLDER_JSON);
        let (_, good_csr) = csr("card", &[]);

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

        let garbage = env.path("garbage.csr");
        write(
            &garbage,
            "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n",
        );
        let good = env.path("good.csr");
        write(&good, &good_csr);

        let bad_date = env.path("bad-date.json");
        write(&bad_date, HOLDER_JSON.replace("1984-02-29", "1985-02-29"));
        let era_date = env.path("era-date.json");
        write(
            &era_date,
            HOLDER_JSON.replace("1984-02-29", "昭和59年2月29日"),
        );
        let bad_muni = env.path("bad-muni.json");
        write(&bad_muni, HOLDER_JSON.replace("131016", "131017"));

        let cases: Vec<(&str, Vec<&std::ffi::OsStr>, &str)> = vec![
            (
                "malformed CSR",
                vec![
                    "--profile".as_ref(),
                    "authentication".as_ref(),
                    "--csr".as_ref(),
                    garbage.as_os_str(),
                    "--identity".as_ref(),
                    good_id.as_os_str(),
                ],
                "csr: not a PKCS#10",
            ),
            (
                "forged CSR",
                vec![
                    "--profile".as_ref(),
                    "authentication".as_ref(),
                    "--csr".as_ref(),
                    forged.as_os_str(),
                    "--identity".as_ref(),
                    good_id.as_os_str(),
                ],
                "signature does not verify",
            ),
            (
                "1024-bit key",
                vec![
                    "--profile".as_ref(),
                    "authentication".as_ref(),
                    "--csr".as_ref(),
                    weak.as_os_str(),
                    "--identity".as_ref(),
                    good_id.as_os_str(),
                ],
                "1024 bits is too weak",
            ),
            (
                "unknown profile",
                vec![
                    "--profile".as_ref(),
                    "wizard".as_ref(),
                    "--csr".as_ref(),
                    good.as_os_str(),
                ],
                "unknown profile \"wizard\"",
            ),
            (
                "impossible date",
                vec![
                    "--profile".as_ref(),
                    "signing".as_ref(),
                    "--csr".as_ref(),
                    good.as_os_str(),
                    "--identity".as_ref(),
                    bad_date.as_os_str(),
                ],
                "birth_date",
            ),
            (
                "era date in ISO field",
                vec![
                    "--profile".as_ref(),
                    "signing".as_ref(),
                    "--csr".as_ref(),
                    good.as_os_str(),
                    "--identity".as_ref(),
                    era_date.as_os_str(),
                ],
                "birth_date",
            ),
            (
                "bad check digit",
                vec![
                    "--profile".as_ref(),
                    "signing".as_ref(),
                    "--csr".as_ref(),
                    good.as_os_str(),
                    "--identity".as_ref(),
                    bad_muni.as_os_str(),
                ],
                "municipality_code",
            ),
            (
                "holder profile without identity",
                vec![
                    "--profile".as_ref(),
                    "signing".as_ref(),
                    "--csr".as_ref(),
                    good.as_os_str(),
                ],
                "identity",
            ),
            (
                "missing file",
                vec![
                    "--profile".as_ref(),
                    "tls-server".as_ref(),
                    "--csr".as_ref(),
                    "/nonexistent.csr".as_ref(),
                ],
                "cannot read /nonexistent.csr",
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
        assert_eq!(count_certs(env), certs_before, "nothing stored");
        assert_eq!(audit_len(env), audit_before, "nothing audited");

        // And the good request goes through the same command.
        let out = run(env
            .command()
            .args(["ca", "issue", "--profile", "signing", "--csr"])
            .arg(&good)
            .arg("--identity")
            .arg(&good_id));
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
