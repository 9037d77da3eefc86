//! Certificates of every profile, and the CA certificates, checked as a relying party would:
//! `openssl verify -x509_strict` against the chain and pkilint's RFC 5280 linter.

use crate::common::*;
use der::{Decode, Encode};
use kofu::audit::Actor;
use kofu::ca::profile::{CaName, Profile};
use kofu::service::issuance::{self, IssueRequest};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

fn ca_file(env: &Env, ca: CaName) -> std::path::PathBuf {
    kofu::service::ca::cert_path(&env.cfg, ca)
}

#[test]
fn every_profile_verifies_and_lints_clean() {
    each_backend(|env| {
        let h = env.init_ca();
        // The CA certificates themselves.
        for ca in CaName::ALL {
            let f = ca_file(env, ca);
            assert!(
                pkilint_errors("lint_pkix_cert", &f).is_empty(),
                "{ca:?}: {:?}",
                pkilint_errors("lint_pkix_cert", &f)
            );
            if ca != CaName::Root {
                let out = openssl_verify(&ca_file(env, CaName::Root), None, &f, &[]);
                assert!(
                    out.status.success(),
                    "{ca:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let cases: &[(Profile, Option<CaName>, CaName)] = &[
            (Profile::Signing, None, CaName::Signing),
            (Profile::Authentication, None, CaName::Authentication),
            (Profile::Ocsp, Some(CaName::Signing), CaName::Signing),
            (
                Profile::Ocsp,
                Some(CaName::Authentication),
                CaName::Authentication,
            ),
            (Profile::Ocsp, None, CaName::Infrastructure),
            (Profile::VerifierClient, None, CaName::Infrastructure),
            (Profile::TlsServer, None, CaName::Infrastructure),
        ];
        // Holder certificates come only through the workflow: for a card being written.
        let (card, app) = card_being_written(env, &holder());
        for (profile, ca, expected_issuer) in cases {
            let (key, csr) = checked_csr("kofu.example.jp", &["kofu.example.jp"]);
            let issued = if profile.is_holder() {
                issue_for_card(env, &h, card, app, vec![(*profile, csr.spki_der)])
                    .map(|mut v| v.remove(0))
            } else {
                let req = IssueRequest {
                    profile: *profile,
                    ca: *ca,
                    csr,
                    identity: None,
                };
                issuance::issue(
                    &mut env.conn(),
                    &h,
                    &req,
                    &Actor::new("admin", "admin"),
                    1,
                    now(),
                )
            }
            .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
            assert_eq!(issued.ca, *expected_issuer);
            let pem = kofu::ca::der_to_pem(&issued.der).unwrap();
            let f = env.path(&format!(
                "{}-{}.pem",
                profile.as_str(),
                expected_issuer.as_str()
            ));
            write(&f, &pem);
            let out = openssl_verify(
                &ca_file(env, CaName::Root),
                Some(&ca_file(env, *expected_issuer)),
                &f,
                &[],
            );
            assert!(
                out.status.success(),
                "{profile:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let errors = pkilint_errors("lint_pkix_cert", &f);
            assert!(errors.is_empty(), "{profile:?}: pkilint: {errors:?}");
            // The certificate carries the key of the request.
            let x = openssl::x509::X509::from_der(&issued.der).unwrap();
            assert!(
                x.public_key().unwrap().public_eq(&key),
                "{profile:?}: wrong key"
            );
        }
    });
}

#[test]
fn signing_certificate_holds_six_other_names_and_authentication_nothing_personal() {
    each_backend(|env| {
        let h = env.init_ca();
        let id = holder();
        let (card, app) = card_being_written(env, &id);
        let (_, sign_csr) = checked_csr("card", &[]);
        let (_, auth_csr) = checked_csr("card", &[]);
        let mut issued = issue_for_card(
            env,
            &h,
            card,
            app,
            vec![
                (Profile::Signing, sign_csr.spki_der),
                (Profile::Authentication, auth_csr.spki_der),
            ],
        )
        .unwrap();
        let auth = issued.pop().unwrap();
        let sig = issued.pop().unwrap();
        let cert = Certificate::from_der(&sig.der).unwrap();
        let (_, san) = cert
            .tbs_certificate()
            .get_extension::<SubjectAltName>()
            .unwrap()
            .expect("SAN present");
        let arc = env.ca_config().holder_fields_arc;
        let mut seen = Vec::new();
        for gn in san.0 {
            let GeneralName::OtherName(on) = gn else {
                panic!("unexpected SAN entry {gn:?}")
            };
            seen.push((on.type_id.to_string(), on.value.value().to_vec()));
        }
        let want: Vec<(String, Vec<u8>)> = vec![
            (format!("{arc}.1"), id.person.name.as_bytes().to_vec()),
            (format!("{arc}.2"), Vec::new()),
            (format!("{arc}.3"), b"2".to_vec()),
            (format!("{arc}.4"), b"19840229".to_vec()),
            (format!("{arc}.5"), id.person.address.as_bytes().to_vec()),
            (format!("{arc}.6"), Vec::new()),
        ];
        assert_eq!(seen, want);
        // Validity: the 5th birthday after issuance (born 29 Feb; common year → 28 Feb), end of day JST.
        let x = openssl::x509::X509::from_der(&sig.der).unwrap();
        assert_eq!(x.not_after().to_string(), "Feb 28 14:59:59 2031 GMT");

        let hay = &auth.der;
        let contains = |needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        for needle in [
            id.person.name.as_bytes(),
            "髙橋".as_bytes(),
            id.person.name_kana.as_bytes(),
            id.person.address.as_bytes(),
            "千代田".as_bytes(),
            b"19840229".as_slice(),
            b"840229".as_slice(),
            id.municipality_code.as_bytes(),
            id.person.postal_code.as_bytes(),
        ] {
            assert!(
                !contains(needle),
                "authentication certificate contains {:?}",
                String::from_utf8_lossy(needle)
            );
        }
        let subject = Certificate::from_der(hay)
            .unwrap()
            .tbs_certificate()
            .subject()
            .to_der()
            .unwrap();
        assert!(
            subject.len() < 80,
            "authentication subject should be just C and an opaque CN"
        );
    });
}

#[test]
fn signing_certificate_refused_under_fifteen() {
    each_backend(|env| {
        let h = env.init_ca();
        let young = kofu::ca::identity::Identity::from_json(
            &HOLDER_JSON.replace("1984-02-29", "2011-11-22"),
        )
        .unwrap();
        let (card, app) = card_being_written(env, &young);
        let (_, csr) = checked_csr("card", &[]);
        let before = count_certs(env);
        let err = issue_for_card(
            env,
            &h,
            card,
            app,
            vec![(Profile::Signing, csr.spki_der.clone())],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("birth_date") && err.to_string().contains("14"),
            "{err}"
        );
        assert_eq!(count_certs(env), before, "nothing stored");
        // The authentication certificate is issued to minors.
        issue_for_card(
            env,
            &h,
            card,
            app,
            vec![(Profile::Authentication, csr.spki_der)],
        )
        .unwrap();
    });
}

pub fn count_certs(env: &Env) -> i64 {
    use diesel::prelude::*;
    use kofu::db::schema::certificates::dsl::*;
    certificates.count().get_result(&mut *env.conn()).unwrap()
}

#[test]
fn failed_lint_rule_is_named_and_nothing_is_signed() {
    use kofu::ca::issuer;
    use kofu::ca::profile::{EeRequest, ee_parts};
    use kofu::ca::serial::Serial;
    let env = &envs().remove(0);
    let h = env.init_ca();
    let ca = h.ca(CaName::Authentication).unwrap();
    let (_, csr) = checked_csr("card", &[]);
    let ee = EeRequest {
        profile: Profile::Authentication,
        spki_der: csr.spki_der,
        identity: Some(holder()),
        common_name: None,
        dns_names: vec![],
    };
    let mut parts = ee_parts(
        &h.config,
        &h.urls,
        &ca.view,
        &ee,
        Serial::generate(1).unwrap(),
        now(),
    )
    .unwrap();
    // Reverse the validity: the rule that catches it is named.
    std::mem::swap(&mut parts.not_before, &mut parts.not_after);
    let err = issuer::prepare(
        &parts,
        &ca.ee_lint_context(Profile::Authentication).unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            kofu::error::Error::Lint {
                rule: "validity_ordered",
                ..
            }
        ),
        "{err}"
    );
    // A duplicated extension.
    let mut parts = ee_parts(
        &h.config,
        &h.urls,
        &ca.view,
        &ee,
        Serial::generate(1).unwrap(),
        now(),
    )
    .unwrap();
    let dup = parts.extensions[0].clone();
    parts.extensions.push(dup);
    let err = issuer::prepare(
        &parts,
        &ca.ee_lint_context(Profile::Authentication).unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            kofu::error::Error::Lint {
                rule: "extensions_unique",
                ..
            }
        ),
        "{err}"
    );
    // A certificate linted as the wrong profile.
    let parts = ee_parts(
        &h.config,
        &h.urls,
        &ca.view,
        &ee,
        Serial::generate(1).unwrap(),
        now(),
    )
    .unwrap();
    let err =
        issuer::prepare(&parts, &ca.ee_lint_context(Profile::TlsServer).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            kofu::error::Error::Lint {
                rule: "eku_matches_profile",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(count_certs(env), 4, "only the four CA certificates exist");
}
