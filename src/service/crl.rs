//! CRL publication (SPEC §4): full and delta CRLs per issuing CA and, when configured, per
//! shard; built from the database row by row into one buffer ([`crate::ca::crl`]), stored,
//! and served from the newest stored row. [`run_due`] is the schedule: a full CRL before the
//! current one goes stale, a delta CRL `publish_delay_seconds` after the first unpublished
//! change (coalescing all changes up to then) or before the current delta goes stale.

use crate::audit::{self, Actor};
use crate::ca::Hierarchy;
use crate::ca::crl::{CrlSpec, CrlWriter, Reason};
use crate::ca::profile::CaName;
use crate::db::schema::{certificates, crls};
use crate::db::{Db, DbConn};
use crate::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use std::collections::HashMap;

/// Full or delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Every revoked certificate in scope.
    Full,
    /// What changed since the newest full CRL.
    Delta,
}

impl Kind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Delta => "delta",
        }
    }
}

/// The CAs that publish CRLs for end entities (the root's CRL is made at a ceremony).
pub const PUBLISHING: [CaName; 3] = [
    CaName::Signing,
    CaName::Authentication,
    CaName::Infrastructure,
];

/// The file name under `/crl/` of a CA's (shard's) full or delta CRL.
pub fn file_name(ca: CaName, shard: Option<u16>, kind: Kind) -> String {
    crate::ca::profile::crl_file(ca, shard, kind == Kind::Delta)
}

/// What one publication produced.
#[derive(Debug, Clone)]
pub struct Published {
    /// Issuing CA.
    pub ca: CaName,
    /// Shard (None: whole CRL).
    pub shard: Option<u16>,
    /// Full or delta.
    pub kind: Kind,
    /// CRL number.
    pub number: i64,
    /// Entries.
    pub entries: u64,
    /// Size of the DER.
    pub bytes: usize,
}

/// A stored CRL (what HTTP serves).
#[derive(Debug, Clone, Queryable)]
pub struct StoredCrl {
    /// Row id.
    pub id: i64,
    /// CRL number.
    pub number: i64,
    /// Base CRL number (delta CRLs).
    pub base_number: Option<i64>,
    /// Changes covered.
    pub covers_seq: i64,
    /// thisUpdate (Unix seconds).
    pub this_update: i64,
    /// nextUpdate (Unix seconds).
    pub next_update: i64,
}

fn shard_key(shard: Option<u16>) -> i32 {
    shard.map_or(-1, i32::from)
}

/// The newest stored CRL of a scope and kind (without its DER).
pub fn latest(
    conn: &mut DbConn,
    ca: CaName,
    shard: Option<u16>,
    kind: Kind,
) -> Result<Option<StoredCrl>> {
    Ok(crls::table
        .filter(crls::issuer.eq(ca.as_str()))
        .filter(crls::shard.eq(shard_key(shard)))
        .filter(crls::kind.eq(kind.as_str()))
        .order(crls::number.desc())
        .select((
            crls::id,
            crls::number,
            crls::base_number,
            crls::covers_seq,
            crls::this_update,
            crls::next_update,
        ))
        .first(conn)
        .optional()?)
}

/// The DER of a stored CRL.
pub fn der(conn: &mut DbConn, id: i64) -> Result<Vec<u8>> {
    Ok(crls::table.find(id).select(crls::der).first(conn)?)
}

/// Start a read that sees one consistent snapshot (SQLite: a read transaction in WAL mode
/// already does; PostgreSQL: repeatable read).
fn snapshot(c: &mut DbConn) -> Result<()> {
    if let DbConn::Pg(pg) = c {
        diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(pg)?;
    }
    Ok(())
}

/// Stream the entries of a CRL (full: revoked and not long expired; delta: changed since
/// `base_covers`) into `writer`, inside the caller's snapshot transaction. Returns
/// the status counter that snapshot saw.
#[allow(clippy::too_many_arguments)]
fn read_entries(
    c: &mut DbConn,
    ca: CaName,
    shard: Option<u16>,
    base_covers: Option<i64>,
    cutoff: i64,
    now_s: i64,
    writer: &mut CrlWriter,
) -> Result<i64> {
    let covers = crate::service::revocation::current_seq(c)?;
    let mut q = certificates::table
        .filter(certificates::issuer.eq(ca.as_str()))
        .into_boxed();
    if let Some(s) = shard {
        q = q.filter(certificates::crl_shard.eq(i32::from(s)));
    }
    q = match base_covers {
        None => q
            .filter(certificates::revoked_at.is_not_null())
            .filter(certificates::not_after.ge(cutoff)),
        Some(b) => q.filter(certificates::status_seq.gt(b)),
    };
    let rows = q
        .select((
            certificates::serial,
            certificates::revoked_at,
            certificates::revocation_reason,
        ))
        .load_iter::<(String, Option<i64>, Option<i32>), diesel::connection::DefaultLoadingMode>(
            c,
        )?;
    let mut serial = [0u8; 20];
    for row in rows {
        let (hex_serial, revoked_at, reason) = row?;
        let n = hex_serial.len() / 2;
        if n == 0 || n > 20 {
            return Err(Error::Internal(format!(
                "stored serial {hex_serial} malformed"
            )));
        }
        hex::decode_to_slice(&hex_serial, &mut serial[..n])
            .map_err(|_| Error::Internal(format!("stored serial {hex_serial} not hex")))?;
        match (revoked_at, reason) {
            (Some(at), Some(code)) => writer.push(&serial[..n], at, Reason::from_code(code)?)?,
            // A lifted hold (delta CRLs only, by the query).
            _ => writer.push(&serial[..n], now_s, Reason::RemoveFromCrl)?,
        }
    }
    Ok(covers)
}

/// Build, sign and store one CRL. The entries are read in one consistent snapshot (from a
/// covering index: the certificate rows themselves are never read) and streamed into the
/// encoder; the store is a separate short write (the CRL number's unique index settles a
/// race between two publishers).
pub fn publish(
    db: &Db,
    h: &Hierarchy,
    ca: CaName,
    shard: Option<u16>,
    kind: Kind,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Published> {
    let loaded = h.ca(ca)?;
    let cfg = &h.config.crl;
    let this_update = DateTime::<Utc>::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    let hours = match kind {
        Kind::Full => cfg.next_update_hours,
        Kind::Delta => cfg.delta_next_update_hours,
    };
    let next_update = this_update + Duration::hours(i64::from(hours));
    let cutoff = now.timestamp() - i64::from(cfg.expired_retention_days) * 86_400;
    let now_s = now.timestamp();
    let started = std::time::Instant::now();
    // Read on a read connection (a large CRL takes a while; writers go on meanwhile), store
    // on the write connection.
    let mut conn = db.read.get()?;
    let (number, base, expected) = conn.transaction(|c| {
        let number: i64 = crls::table
            .filter(crls::issuer.eq(ca.as_str()))
            .filter(crls::shard.eq(shard_key(shard)))
            .select(diesel::dsl::max(crls::number))
            .first::<Option<i64>>(c)?
            .unwrap_or(0)
            + 1;
        let base = match kind {
            Kind::Full => None,
            Kind::Delta => Some(latest(c, ca, shard, Kind::Full)?.ok_or_else(|| {
                Error::Conflict(format!(
                    "the {} CA has no full CRL yet; publish one first",
                    ca.as_str()
                ))
            })?),
        };
        // Size the buffer from the last full CRL and what changed since (counting the
        // entries first would read the whole index twice).
        let expected: i64 = match &base {
            None => {
                let last = latest(c, ca, shard, Kind::Full)?;
                let last_entries: i64 = match &last {
                    Some(l) => crls::table.find(l.id).select(crls::entries).first(c)?,
                    None => 0,
                };
                let changed: i64 = certificates::table
                    .filter(certificates::issuer.eq(ca.as_str()))
                    .filter(certificates::status_seq.gt(last.map_or(0, |l| l.covers_seq)))
                    .count()
                    .get_result(c)?;
                last_entries + changed
            }
            Some(_) => 0,
        };
        Ok::<_, Error>((number, base, expected))
    })?;
    let spec = CrlSpec {
        issuer: &loaded.view,
        number: u64::try_from(number)?,
        base_number: base.as_ref().map(|b| u64::try_from(b.number)).transpose()?,
        this_update,
        next_update,
        scope_url: shard.map(|s| h.urls.crl_scope(ca, Some(s))),
        freshest_url: (kind == Kind::Full).then(|| h.urls.delta_crl(ca, shard)),
    };
    let base_covers = base.as_ref().map(|b| b.covers_seq);
    let counted = started.elapsed();
    let mut writer = CrlWriter::new(&spec, usize::try_from(expected)?)?;
    // SQLite: a small page cache for this scan, which passes over every index page once (the
    // connection's usual 64 MiB would fill with pages never read again), then back as it was.
    let scan_pragmas = |c: &mut DbConn, on: bool| -> Result<()> {
        if let DbConn::Sqlite(s) = c {
            use diesel::connection::SimpleConnection;
            s.batch_execute(&if on {
                "PRAGMA cache_size = -2048;".to_string()
            } else {
                format!("PRAGMA cache_size = -{};", crate::db::SQLITE_CACHE_KIB)
            })?;
        }
        Ok(())
    };
    scan_pragmas(&mut conn, true)?;
    let covers = conn.transaction(|c| {
        snapshot(c)?;
        read_entries(c, ca, shard, base_covers, cutoff, now_s, &mut writer)
    });
    scan_pragmas(&mut conn, false)?;
    let covers = covers?;
    let scanned = started.elapsed();
    let entries = writer.count();
    let der = writer.finish(loaded.signer.as_ref(), &loaded.public_key)?;
    let base = base.map(|b| b.number);
    let bytes = der.len();
    let built = started.elapsed();
    drop(conn);
    db.write.get()?.transaction(|c| {
        diesel::insert_into(crls::table)
            .values((
                crls::issuer.eq(ca.as_str()),
                crls::shard.eq(shard_key(shard)),
                crls::kind.eq(kind.as_str()),
                crls::number.eq(number),
                crls::base_number.eq(base),
                crls::covers_seq.eq(covers),
                crls::entries.eq(i64::try_from(entries)?),
                crls::this_update.eq(this_update.timestamp()),
                crls::next_update.eq(next_update.timestamp()),
                crls::der.eq(&der),
                crls::created_at.eq(now.timestamp()),
            ))
            .execute(c)?;
        // Keep the last few of each kind (the newest is served; older ones help an audit).
        let keep_from: Option<i64> = crls::table
            .filter(crls::issuer.eq(ca.as_str()))
            .filter(crls::shard.eq(shard_key(shard)))
            .filter(crls::kind.eq(kind.as_str()))
            .order(crls::number.desc())
            .offset(5)
            .select(crls::number)
            .first(c)
            .optional()?;
        if let Some(n) = keep_from {
            diesel::delete(
                crls::table
                    .filter(crls::issuer.eq(ca.as_str()))
                    .filter(crls::shard.eq(shard_key(shard)))
                    .filter(crls::kind.eq(kind.as_str()))
                    .filter(crls::number.le(n)),
            )
            .execute(c)?;
        }
        audit::append(
            c,
            now.timestamp(),
            actor,
            "crl.publish",
            &format!("crl:{}", file_name(ca, shard, kind)),
            &format!("number={number} entries={entries} bytes={bytes}"),
        )?;
        Ok::<_, Error>(())
    })?;
    tracing::info!(
        ca = ca.as_str(),
        kind = kind.as_str(),
        number,
        entries,
        bytes,
        prepare_ms = counted.as_millis() as u64,
        scan_ms = (scanned - counted).as_millis() as u64,
        sign_ms = (built - scanned).as_millis() as u64,
        build_ms = built.as_millis() as u64,
        store_ms = (started.elapsed() - built).as_millis() as u64,
        "CRL published"
    );
    Ok(Published {
        ca,
        shard,
        kind,
        number,
        entries,
        bytes,
    })
}

/// Every scope of a CA: the whole CRL and, when partitioned, each shard.
pub fn scopes(h: &Hierarchy) -> Vec<Option<u16>> {
    std::iter::once(None)
        .chain((0..h.config.crl.shards).map(Some))
        .collect()
}

/// Publish CRLs for every scope of every issuing CA (`kofu crl publish`): a full CRL and a
/// delta on it, or with `delta_only` just a delta CRL on the current full CRL (what changed
/// since it, lifted holds as removeFromCRL).
pub fn publish_all(
    db: &Db,
    h: &Hierarchy,
    delta_only: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<Published>> {
    let mut out = Vec::new();
    for ca in PUBLISHING {
        if h.ca(ca).is_err() {
            continue;
        }
        for shard in scopes(h) {
            if !delta_only || latest(&mut *db.read.get()?, ca, shard, Kind::Full)?.is_none() {
                out.push(publish(db, h, ca, shard, Kind::Full, actor, now)?);
            }
            out.push(publish(db, h, ca, shard, Kind::Delta, actor, now)?);
        }
    }
    Ok(out)
}

/// When each scope first had unpublished changes (the schedule's memory).
pub type Pending = HashMap<(CaName, Option<u16>), DateTime<Utc>>;

fn stale_soon(next_update: i64, this_update: i64, now: DateTime<Utc>) -> bool {
    // Sign again once three quarters of the lifetime have passed.
    now.timestamp() >= next_update - (next_update - this_update) / 4
}

/// One round of the schedule. Returns what it published.
pub fn run_due(
    db: &Db,
    h: &Hierarchy,
    pending: &mut Pending,
    now: DateTime<Utc>,
) -> Result<Vec<Published>> {
    let actor = Actor::system();
    let delay = Duration::seconds(i64::try_from(h.config.crl.publish_delay_seconds)?);
    let mut out = Vec::new();
    for ca in PUBLISHING {
        if h.ca(ca).is_err() {
            continue;
        }
        for shard in scopes(h) {
            let full = latest(&mut *db.read.get()?, ca, shard, Kind::Full)?;
            let full = match full {
                Some(f) if !stale_soon(f.next_update, f.this_update, now) => f,
                _ => {
                    out.push(publish(db, h, ca, shard, Kind::Full, &actor, now)?);
                    out.push(publish(db, h, ca, shard, Kind::Delta, &actor, now)?);
                    pending.remove(&(ca, shard));
                    continue;
                }
            };
            let delta = latest(&mut *db.read.get()?, ca, shard, Kind::Delta)?
                .filter(|d| d.base_number == Some(full.number));
            let covered = delta.as_ref().map_or(full.covers_seq, |d| d.covers_seq);
            let mut q = certificates::table
                .filter(certificates::issuer.eq(ca.as_str()))
                .filter(certificates::status_seq.gt(covered))
                .into_boxed();
            if let Some(s) = shard {
                q = q.filter(certificates::crl_shard.eq(i32::from(s)));
            }
            let changed = !q
                .select(certificates::id)
                .limit(1)
                .load::<i64>(&mut *db.read.get()?)?
                .is_empty();
            let stale = delta
                .as_ref()
                .is_none_or(|d| stale_soon(d.next_update, d.this_update, now));
            let waited = changed && {
                let since = *pending.entry((ca, shard)).or_insert(now);
                now - since >= delay
            };
            let due = stale || waited;
            if due {
                out.push(publish(db, h, ca, shard, Kind::Delta, &actor, now)?);
                pending.remove(&(ca, shard));
            }
        }
    }
    Ok(out)
}

/// A CRL as served over HTTP.
#[derive(Debug)]
pub struct ServedCrl {
    /// Row id (the cache is refreshed when a newer row exists).
    pub id: i64,
    /// DER (shared: every response sends the same bytes without copying them).
    pub der: bytes::Bytes,
    /// ETag value (quoted).
    pub etag: String,
    /// thisUpdate, for Last-Modified.
    pub this_update: i64,
    /// nextUpdate, for Expires.
    pub next_update: i64,
}

/// The newest CRL of each file name, held in memory between requests.
pub type CrlCache = std::sync::Mutex<HashMap<String, std::sync::Arc<ServedCrl>>>;

/// Parse a file name under `/crl/` (`signing.crl`, `signing-delta.crl`, `signing-3.crl`,
/// `signing-3-delta.crl`).
pub fn parse_file(file: &str) -> Option<(CaName, Option<u16>, Kind)> {
    let stem = file.strip_suffix(".crl")?;
    let (stem, kind) = match stem.strip_suffix("-delta") {
        Some(s) => (s, Kind::Delta),
        None => (stem, Kind::Full),
    };
    let (name, shard) = match stem.split_once('-') {
        Some((n, s)) => (n, Some(s.parse::<u16>().ok()?)),
        None => (stem, None),
    };
    let ca = CaName::parse(name).ok()?;
    (file_name(ca, shard, kind) == file).then_some((ca, shard, kind))
}

fn lock(
    c: &CrlCache,
) -> Result<std::sync::MutexGuard<'_, HashMap<String, std::sync::Arc<ServedCrl>>>> {
    c.lock()
        .map_err(|_| Error::Internal("CRL cache lock poisoned".into()))
}

/// The newest stored CRL for a file name, from the cache when it is still the newest.
pub fn served(
    conn: &mut DbConn,
    cache: &CrlCache,
    file: &str,
) -> Result<Option<std::sync::Arc<ServedCrl>>> {
    let Some((ca, shard, kind)) = parse_file(file) else {
        return Ok(None);
    };
    let Some(newest) = latest(conn, ca, shard, kind)? else {
        return Ok(None);
    };
    if let Some(hit) = lock(cache)?.get(file)
        && hit.id == newest.id
    {
        return Ok(Some(std::sync::Arc::clone(hit)));
    }
    let der = der(conn, newest.id)?;
    let etag = format!("\"{}\"", hex::encode(&openssl::sha::sha256(&der)[..12]));
    let served = std::sync::Arc::new(ServedCrl {
        id: newest.id,
        der: bytes::Bytes::from(der),
        etag,
        this_update: newest.this_update,
        next_update: newest.next_update,
    });
    lock(cache)?.insert(file.to_string(), std::sync::Arc::clone(&served));
    Ok(Some(served))
}
