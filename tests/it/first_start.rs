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
