//! Files at rest: everything kofu writes under its data directory is for kofu alone. The
//! process umask is 077 from the start (directories 0700, files 0600 however they are made:
//! SQLite's database, WAL and shared-memory files included), and `kofu serve` names at start
//! any directory or file there that others may read, as one may after a restore or a copy.

use super::Config;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Make every file and directory this process creates private to its user.
pub fn private_umask() {
    // SAFETY: umask(2) only sets the process's file-mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Whether a file is a public CA certificate (published at `/ca/` anyway).
fn is_public_certificate(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.ends_with(".pem") && !name.ends_with(".key.pem")) || name.ends_with(".crt")
}

/// The directories and files of `cfg` that group or others may read, write or enter, each
/// with its mode: the data and CA directories, every file in them but the CA certificates,
/// the configured key and passphrase files, and a SQLite database (with its WAL and
/// shared-memory files) wherever it is.
pub fn too_open(cfg: &Config) -> Vec<(PathBuf, u32)> {
    let mut found = Vec::new();
    let mut check = |p: &Path| {
        if let Ok(m) = std::fs::metadata(p) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 && !found.iter().any(|(q, _)| q == p) {
                found.push((p.to_path_buf(), mode));
            }
        }
    };
    for dir in [cfg.data_dir.clone(), cfg.ca_dir()] {
        check(&dir);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && !is_public_certificate(p))
            .collect();
        files.sort();
        for f in files {
            check(&f);
        }
    }
    for f in [&cfg.data_key_file, &cfg.ca_passphrase_file]
        .into_iter()
        .flatten()
    {
        check(f);
    }
    let url = crate::db::connection_url(&cfg.database_url());
    if !crate::db::is_postgres_url(&url) {
        for suffix in ["", "-wal", "-shm"] {
            check(Path::new(&format!("{url}{suffix}")));
        }
    }
    found
}

/// Warn on standard error (the service's log), naming each, about what [`too_open`] finds.
pub fn warn_if_open(cfg: &Config) {
    for (path, mode) in too_open(cfg) {
        let want = if path.is_dir() { "0700" } else { "0600" };
        eprintln!(
            "warning: {} is {mode:04o}: others may read it; make it {want}",
            path.display()
        );
    }
}
