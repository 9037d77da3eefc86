//! Storage: one diesel [`DbConn`] over PostgreSQL or SQLite, an r2d2 pool, and the embedded
//! migrations of each backend (migrations/sqlite and migrations/postgres hold the same
//! migrations; their version numbers differ by the last digit so they never collide).

mod error;
pub mod models;
pub mod schema;

use crate::error::{Error, Result};
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Embedded SQLite migrations.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Embedded PostgreSQL migrations.
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend. The SQLite variant stays last (diesel picks the first
/// variant whose URL parser accepts the URL, and SQLite accepts any string).
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// PostgreSQL (production, several instances sharing one database).
    Pg(diesel::PgConnection),
    /// SQLite (embedded default).
    Sqlite(diesel::SqliteConnection),
}

/// SQLite page cache per connection, KiB (the default 2 MiB thrashes on keyed-hash indexes).
pub const SQLITE_CACHE_KIB: u32 = 64 * 1024;
/// SQLite page cache during bulk imports, KiB.
pub const SQLITE_BULK_CACHE_KIB: u32 = 1024 * 1024;

/// Pool of [`DbConn`].
pub type DbPool = Pool<ConnectionManager<DbConn>>;
/// A connection checked out of the pool.
pub type PooledConn = PooledConnection<ConnectionManager<DbConn>>;

/// Whether the database answers (`SELECT 1`).
pub fn ping(conn: &mut DbConn) -> Result<()> {
    diesel::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), conn)?;
    Ok(())
}

/// Which backend a URL selects.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> std::result::Result<(), diesel::r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            // WAL lets readers run beside the one writer; busy_timeout makes writers queue
            // instead of failing; NORMAL sync is durable across application crashes in WAL.
            // journal_mode = WAL is set once in `pool` (it is persistent and needs a lock).
            c.batch_execute(&format!(
                "PRAGMA busy_timeout = 15000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                 PRAGMA cache_size = -{SQLITE_CACHE_KIB}; PRAGMA temp_store = MEMORY;"
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Normalise a configured URL: `sqlite://path` becomes `path`; PostgreSQL URLs pass unchanged.
pub fn connection_url(url: &str) -> String {
    url.strip_prefix("sqlite://").unwrap_or(url).to_string()
}

/// Open a pool, creating the SQLite file's directory when needed.
pub fn pool(url: &str, size: u32) -> Result<DbPool> {
    let url = connection_url(url);
    if !is_postgres_url(&url)
        && let Some(dir) = std::path::Path::new(&url).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    if !is_postgres_url(&url) {
        use diesel::Connection;
        let mut c = diesel::SqliteConnection::establish(&url)
            .map_err(|e| Error::Db(format!("cannot open database {url}: {e}")))?;
        c.batch_execute("PRAGMA busy_timeout = 15000; PRAGMA journal_mode = WAL;")
            .map_err(|e| Error::Db(format!("cannot switch {url} to WAL: {e}")))?;
    }
    let manager = ConnectionManager::<DbConn>::new(url);
    Pool::builder()
        .max_size(size.max(1))
        .connection_customizer(Box::new(SqlitePragmas))
        .build(manager)
        .map_err(|e| Error::Db(format!("cannot open database: {e}")))
}

/// Apply pending migrations; returns how many ran.
pub fn migrate(conn: &mut DbConn) -> Result<usize> {
    let applied = match conn {
        DbConn::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len()),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    let applied = applied.map_err(|e| Error::Db(format!("migration failed: {e}")))?;
    if applied > 0 {
        backfill_key_hashes(conn)?;
    }
    Ok(applied)
}

/// Fill `certificates.key_hash` (SHA-256 of the certified SubjectPublicKeyInfo) for
/// certificates issued before it existed. A holder key certified twice (which kofu refuses
/// from now on) gets, on its second row, a value no key hashes to (the hash of its serial),
/// and is logged by serial for the admin.
fn backfill_key_hashes(conn: &mut DbConn) -> Result<()> {
    use diesel::prelude::*;
    use schema::certificates as c;
    loop {
        let rows: Vec<(i64, String, Vec<u8>)> = c::table
            .filter(c::key_hash.is_null())
            .filter(c::cert_der.is_not_null())
            .order(c::id)
            .limit(1000)
            .select((c::id, c::serial, c::cert_der.assume_not_null()))
            .load(conn)?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut progressed = false;
        for (id, serial, der) in rows {
            use der::{Decode, Encode};
            if der.first() != Some(&0x30) {
                // Sealed (a signing certificate): stored with its key hash from the start.
                continue;
            }
            let spki = x509_cert::Certificate::from_der(&der)?
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()?;
            let hash = openssl::sha::sha256(&spki).to_vec();
            match diesel::update(c::table.find(id))
                .set(c::key_hash.eq(Some(&hash)))
                .execute(conn)
            {
                Ok(_) => progressed = true,
                Err(e) if is_unique_violation(&e) => {
                    tracing::warn!(%serial, "certificate certifies a holder key certified before; revoke one of them");
                    let marker =
                        openssl::sha::sha256(format!("duplicate key: {serial}").as_bytes());
                    diesel::update(c::table.find(id))
                        .set(c::key_hash.eq(Some(marker.to_vec())))
                        .execute(conn)?;
                    progressed = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !progressed {
            return Ok(());
        }
    }
}

/// Take the database's write lock at the start of a transaction that reads before it
/// writes. SQLite starts a transaction as a reader; one that then writes after another
/// process committed cannot wait for the lock and fails with "database is locked" at once.
/// A first statement that writes (to nothing) makes it wait for the lock instead, with the
/// busy timeout. PostgreSQL needs nothing: its row locks and conditions decide.
pub fn lock_for_write(conn: &mut DbConn) -> Result<()> {
    if let DbConn::Sqlite(c) = conn {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE audit_head SET id = id WHERE id = 0").execute(c)?;
    }
    Ok(())
}

/// Whether a diesel error is a unique-constraint violation (used to retry serial collisions).
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The service's database handle: a pool for reads and a pool for writes. On SQLite the
/// write pool has one connection, so writers queue in-process (woken at once) instead of
/// sleeping in SQLite's busy handler; on PostgreSQL both are the same pool.
#[derive(Clone)]
pub struct Db {
    /// Reads.
    pub read: DbPool,
    /// Writes (and reads that must see the latest writes inside a transaction).
    pub write: DbPool,
}

impl Db {
    /// Open both pools for `url` and apply migrations.
    pub fn open(url: &str, size: u32) -> Result<Self> {
        let read = pool(url, size)?;
        migrate(&mut *read.get()?)?;
        let write = if is_postgres_url(&connection_url(url)) {
            read.clone()
        } else {
            pool(url, 1)?
        };
        Ok(Db { read, write })
    }
}
