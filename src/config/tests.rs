//! Tests of the configuration: defaults, files, the environment and their checks.

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn environment_overlay_and_passphrase_variable() -> Result<()> {
    let mut c = Config::default();
    c.apply_env(env(&[
        ("KOFU_DATA_DIR", "/srv/kofu"),
        ("KOFU_CA_PASSPHRASE", "from default var"),
    ]))?;
    assert_eq!(c.database_url(), "/srv/kofu/kofu.db");
    assert_eq!(
        c.ca_passphrase()?.map(|s| s.expose().clone()),
        Some("from default var".into())
    );

    let mut c = Config::default();
    c.apply_env(env(&[
        ("KOFU_CA_PASSPHRASE_ENV", "CA_PW"),
        ("CA_PW", "named"),
        ("KOFU_CA_PASSPHRASE", "ignored"),
    ]))?;
    assert_eq!(
        c.ca_passphrase()?.map(|s| s.expose().clone()),
        Some("named".into())
    );
    assert!(
        !format!("{c:?}").contains("named"),
        "secrets are redacted in Debug"
    );

    let mut c = Config::default();
    assert!(
        c.apply_env(env(&[("KOFU_INSTANCE_PREFIX", "70000")]))
            .is_err()
    );
    Ok(())
}

#[test]
fn unknown_keys_are_refused() {
    let err = toml::from_str::<Config>("listen = \"x\"\nlisten_port = 1\n");
    assert!(err.is_err());
}
