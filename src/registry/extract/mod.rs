//! Registry extracts a municipality imports (`kofu registry import`) and its change feed
//! (`kofu registry changes`), both CSV with a header row, UTF-8 (a BOM is accepted).
//!
//! Extract columns: `resident_code, municipality_code, name, name_kana, birth_date, sex,
//! address, postal_code, status` — birth_date ISO or era form, sex 1/2 (ISO 5218),
//! male/female or 男/女, status resident/moved_out/deceased (or 住民/転出/死亡). An import adds
//! new residents and updates those already known (by resident code).
//!
//! Change-feed columns: `event_id, municipality_code, resident_code, kind, effective_date,
//! name, name_kana, birth_date, sex, address, postal_code` — kind move_within, move_out,
//! name_change, death or correction; the new values, empty where unchanged. Each event is
//! applied once: a feed run twice changes nothing the second time. Applied events are kept
//! (registry_events) for the revocation work that acts on them.
//!
//! Both are all-or-nothing: every bad line is reported with its line number and field, and
//! then nothing is changed.

use crate::audit::{self, Actor};
use crate::ca::identity::{Person, Sex, check_municipality_code};
use crate::db::DbConn;
use crate::db::schema::{registry_events, residents};
use crate::error::{Error, FieldError, Result};
use crate::jp::{self, era, kana};
use crate::pii::DataKey;
use crate::registry::{
    RESIDENTS_TABLE, RegistryStatus, ResidentRecord, dob_key, name_key, resident_key,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;

mod bounded;
mod changes;
mod store;

use bounded::Bounded;
pub use changes::{apply_changes, read_changes};
use store::store_residents;

/// Extract columns, in the documented order.
pub const EXTRACT_COLUMNS: [&str; 9] = [
    "resident_code",
    "municipality_code",
    "name",
    "name_kana",
    "birth_date",
    "sex",
    "address",
    "postal_code",
    "status",
];
/// Change-feed columns, in the documented order.
pub const CHANGE_COLUMNS: [&str; 11] = [
    "event_id",
    "municipality_code",
    "resident_code",
    "kind",
    "effective_date",
    "name",
    "name_kana",
    "birth_date",
    "sex",
    "address",
    "postal_code",
];
/// Change kinds.
pub const CHANGE_KINDS: [&str; 5] = [
    "move_within",
    "move_out",
    "name_change",
    "death",
    "correction",
];
/// The residents table's indexes, as the migrations create them.
const RESIDENT_INDEXES: [(&str, &str); 3] = [
    (
        "residents_key",
        "CREATE UNIQUE INDEX residents_key ON residents (municipality_code, resident_key)",
    ),
    (
        "residents_dob_key",
        "CREATE INDEX residents_dob_key ON residents (dob_key)",
    ),
    (
        "residents_name_key",
        "CREATE INDEX residents_name_key ON residents (name_key)",
    ),
];
/// At most this many errors are kept (the count of the rest is still reported).
const MAX_ERRORS: usize = 100_000;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    /// Rows read and stored.
    pub rows: usize,
}

/// What a change feed did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeSummary {
    /// Events applied now.
    pub applied: usize,
    /// Events already applied by an earlier run (skipped).
    pub already_applied: usize,
}

struct Errors(Vec<FieldError>, usize);

impl Errors {
    fn push(&mut self, line: u64, field: &str, message: impl Into<String>) {
        self.1 += 1;
        if self.0.len() < MAX_ERRORS {
            self.0.push(FieldError {
                line: Some(line),
                field: field.into(),
                message: message.into(),
            });
        }
    }
    fn into_result(self) -> Result<()> {
        if self.1 == 0 {
            return Ok(());
        }
        let mut list = self.0;
        if self.1 > list.len() {
            list.push(FieldError {
                line: None,
                field: "file".into(),
                message: format!("{} more errors not listed", self.1 - list.len()),
            });
        }
        Err(Error::Invalid(list))
    }
}

/// The input failed to read (too long, or an I/O error): nothing is imported.
fn unreadable(line: u64, e: csv::Error) -> Error {
    Error::Invalid(vec![FieldError {
        line: Some(line),
        field: "file".into(),
        message: format!("cannot be read: {e}"),
    }])
}

/// A CSV reader over bounded input.
type CsvReader<R> = csv::Reader<Bounded<R>>;

/// A CSV reader whose header must hold exactly `columns`; returns the reader and each
/// column's index.
fn open_csv<R: Read>(
    input: R,
    columns: &'static [&'static str],
) -> Result<(CsvReader<R>, HashMap<&'static str, usize>)> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(Bounded::new(input));
    let headers = rdr
        .headers()
        .map_err(|e| {
            Error::Invalid(vec![FieldError {
                line: Some(1),
                field: "header".into(),
                message: format!("unreadable header: {e}"),
            }])
        })?
        .clone();
    let mut index = HashMap::new();
    let mut errors = Vec::new();
    for col in columns {
        match headers.iter().position(|h| h == *col) {
            Some(i) => {
                index.insert(*col, i);
            }
            None => errors.push(FieldError {
                line: Some(1),
                field: (*col).into(),
                message: "column missing from the header".into(),
            }),
        }
    }
    for h in headers.iter() {
        if !columns.contains(&h) {
            errors.push(FieldError {
                line: Some(1),
                field: h.into(),
                message: format!("unknown column; expected {}", columns.join(",")),
            });
        }
    }
    if errors.is_empty() {
        Ok((rdr, index))
    } else {
        Err(Error::Invalid(errors))
    }
}

fn parse_status(s: &str) -> Option<RegistryStatus> {
    match s {
        "resident" | "住民" => Some(RegistryStatus::Resident),
        "moved_out" | "転出" => Some(RegistryStatus::MovedOut),
        "deceased" | "死亡" => Some(RegistryStatus::Deceased),
        _ => None,
    }
}

fn text(errors: &mut Errors, line: u64, field: &str, v: &str, required: bool) -> Option<String> {
    if v.is_empty() {
        if required {
            errors.push(line, field, "must not be empty");
        }
        return None;
    }
    if v.chars().count() > 200 || v.chars().any(char::is_control) {
        errors.push(
            line,
            field,
            "longer than 200 characters or contains control characters",
        );
        return None;
    }
    Some(v.to_string())
}

/// A change-feed value: empty means unchanged; otherwise parsed, or the problem recorded.
fn optional<T>(
    errors: &mut Errors,
    line: u64,
    field: &str,
    v: &str,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    parse(v).map_err(|m| errors.push(line, field, m)).ok()
}

/// A resident row to store.
#[derive(Insertable, Clone)]
#[diesel(table_name = residents)]
struct NewResident {
    municipality_code: String,
    resident_key: Vec<u8>,
    status: String,
    dob_key: Vec<u8>,
    name_key: Vec<u8>,
    pii: Vec<u8>,
    updated_at: i64,
    content_key: Option<Vec<u8>>,
}

/// The keyed hash of a resident's record and status: equal exactly when a re-import brings
/// nothing new for the resident.
fn content_key(key: &DataKey, sealed_form: &str, status: RegistryStatus) -> Vec<u8> {
    key.index_bytes(&["resident-content", sealed_form, status.as_str()])
}

fn seal_resident(
    key: &DataKey,
    sealer: &mut crate::pii::Sealer,
    rec: &ResidentRecord,
    status: RegistryStatus,
    now: i64,
) -> Result<NewResident> {
    let form = serde_json::to_string(&super::Sealed(rec))
        .map_err(|e| Error::Internal(format!("resident record: {e}")))?;
    Ok(NewResident {
        municipality_code: rec.municipality_code.clone(),
        resident_key: resident_key(key, &rec.municipality_code, &rec.resident_code),
        status: status.as_str().into(),
        dob_key: dob_key(key, &rec.municipality_code, rec.person.birth_date),
        name_key: name_key(key, &rec.municipality_code, &rec.person.name),
        pii: sealer.seal(RESIDENTS_TABLE, form.as_bytes())?,
        updated_at: now,
        content_key: Some(content_key(key, &form, status)),
    })
}

/// A checked extract line: its number, the record and its status.
type CheckedRow = (u64, ResidentRecord, RegistryStatus);

/// Check one extract line; problems go to `errors`, each naming line and field.
fn check_extract_row(
    line: u64,
    record: &csv::StringRecord,
    col: &HashMap<&'static str, usize>,
    today: chrono::NaiveDate,
    errors: &mut Errors,
) -> Option<CheckedRow> {
    if record.len() != EXTRACT_COLUMNS.len() {
        errors.push(
            line,
            "line",
            format!(
                "has {} fields, expected {}",
                record.len(),
                EXTRACT_COLUMNS.len()
            ),
        );
        return None;
    }
    let get = |c: &str| record.get(col[c]).unwrap_or("");
    let code = text(errors, line, "resident_code", get("resident_code"), true);
    let muni = get("municipality_code").to_string();
    if let Err(Error::BadInput { message, .. }) = check_municipality_code(&muni) {
        errors.push(line, "municipality_code", message);
    }
    let name = text(errors, line, "name", get("name"), true);
    let name_kana = kana::check_name(get("name_kana"))
        .map_err(|m| errors.push(line, "name_kana", m))
        .ok();
    let birth_date = match era::parse(get("birth_date")) {
        Ok(d) if d <= today => Some(d),
        Ok(_) => {
            errors.push(line, "birth_date", "in the future");
            None
        }
        Err(m) => {
            errors.push(line, "birth_date", m);
            None
        }
    };
    let sex = Sex::parse(get("sex"));
    if sex.is_none() {
        errors.push(
            line,
            "sex",
            format!("{:?}: expected 1/2, male/female or 男/女", get("sex")),
        );
    }
    let address = text(errors, line, "address", get("address"), true);
    let postal = jp::postal_code(get("postal_code"))
        .map_err(|m| errors.push(line, "postal_code", m))
        .ok();
    let status = parse_status(get("status"));
    if status.is_none() {
        errors.push(
            line,
            "status",
            format!(
                "{:?}: expected resident, moved_out or deceased",
                get("status")
            ),
        );
    }
    match (
        code, name, name_kana, birth_date, sex, address, postal, status,
    ) {
        (
            Some(resident_code),
            Some(name),
            Some(name_kana),
            Some(birth_date),
            Some(sex),
            Some(address),
            Some(postal_code),
            Some(status),
        ) if check_municipality_code(&muni).is_ok() => Some((
            line,
            ResidentRecord {
                resident_code,
                municipality_code: muni,
                person: Person {
                    name,
                    name_kana,
                    birth_date,
                    sex,
                    address,
                    postal_code,
                },
            },
            status,
        )),
        _ => None,
    }
}

/// Import an extract. Validates every line first ([`read_extract`]); stores nothing if any
/// line is bad.
pub fn import_extract(
    conn: &mut DbConn,
    key: &DataKey,
    input: impl Read,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<ImportSummary> {
    let started = std::time::Instant::now();
    let rows = read_extract(input, now.date_naive())?;

    let validated = started.elapsed();
    let now_s = now.timestamp();
    let municipalities: BTreeSet<&str> = rows
        .iter()
        .map(|(r, _)| r.municipality_code.as_str())
        .collect();
    let target = municipalities
        .iter()
        .map(|m| format!("municipality:{m}"))
        .collect::<Vec<_>>()
        .join(",");

    // Sealing (encryption and keyed hashes) and storing overlap: sealing threads hand
    // chunks to this thread, which writes them while the next ones are sealed. Storing is
    // one connection's work, so it gets a core to itself and sealing the others (at least
    // one).
    let sealers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .max(1);
    let chunks: Vec<&[(ResidentRecord, RegistryStatus)]> = rows.chunks(SEAL_CHUNK).collect();
    bulk_cache(conn, true)?;
    let mut timing = StoreTiming::default();
    let stored = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<NewResident>>>(2 * sealers);
        let mut handles = Vec::with_capacity(sealers);
        for w in 0..sealers {
            let (tx, mine) = (tx.clone(), chunks.iter().skip(w).step_by(sealers));
            handles.push(s.spawn(move || {
                let mut sealer = match key.sealer() {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                for part in mine {
                    let sealed = part
                        .iter()
                        .map(|(r, st)| seal_resident(key, &mut sealer, r, *st, now_s))
                        .collect::<Result<Vec<_>>>();
                    let failed = sealed.is_err();
                    // A closed channel means the store gave up: stop sealing.
                    if tx.send(sealed).is_err() || failed {
                        return;
                    }
                }
            }));
        }
        drop(tx);
        let stored = store_residents(
            conn,
            rx,
            rows.len(),
            &municipalities,
            &target,
            actor,
            now_s,
            &mut timing,
        );
        for h in handles {
            h.join()
                .map_err(|_| Error::Internal("sealing thread panicked".into()))?;
        }
        stored
    });
    bulk_cache(conn, false)?;
    let counts = stored?;
    let rows = counts.fresh + counts.updated + counts.unchanged;
    tracing::info!(
        rows,
        new = counts.fresh,
        updated = counts.updated,
        unchanged = counts.unchanged,
        validate_ms = validated.as_millis() as u64,
        seal_and_store_ms = (started.elapsed() - validated).as_millis() as u64,
        first_chunk_ms = timing.first_chunk.map_or(0, |t| t.as_millis() as u64),
        index_ms = timing.index.as_millis() as u64,
        move_ms = timing.moved.as_millis() as u64,
        "registry extract imported"
    );
    Ok(ImportSummary { rows })
}

/// Read and check every line of an extract, on all cores: the records and their statuses,
/// or every bad line named (nothing is stored either way). `today` bounds dates of birth.
pub fn read_extract(
    input: impl Read,
    today: chrono::NaiveDate,
) -> Result<Vec<(ResidentRecord, RegistryStatus)>> {
    let (mut rdr, col) = open_csv(input, &EXTRACT_COLUMNS)?;
    let mut errors = Errors(Vec::new(), 0);
    // Read every record first (cheap), then check them on all cores.
    let mut records: Vec<(u64, csv::StringRecord)> = Vec::new();
    loop {
        let line = rdr.position().line();
        let mut record = csv::StringRecord::new();
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => records.push((record.position().map_or(line, |p| p.line()), record)),
            Err(e) if e.is_io_error() => return Err(unreadable(line, e)),
            Err(e) => errors.push(
                e.position().map_or(line, |p| p.line()),
                "line",
                format!("not valid CSV: {e}"),
            ),
        }
    }

    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = records.len().div_ceil(workers).max(1);
    let checked: Vec<(Vec<CheckedRow>, Errors)> = std::thread::scope(|s| {
        let handles: Vec<_> = records
            .chunks(chunk)
            .map(|part| {
                let col = &col;
                s.spawn(move || {
                    let mut errs = Errors(Vec::new(), 0);
                    let ok = part
                        .iter()
                        .filter_map(|(line, r)| check_extract_row(*line, r, col, today, &mut errs))
                        .collect();
                    (ok, errs)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| Error::Internal("validation thread panicked".into()))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    drop(records);
    let mut rows: Vec<(ResidentRecord, RegistryStatus)> = Vec::new();
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    for (ok, errs) in checked {
        let (list, total) = (errs.0, errs.1);
        let kept = list.len();
        for e in list {
            errors.push(e.line.unwrap_or(0), &e.field, e.message);
        }
        // Errors a chunk counted but did not keep still count.
        errors.1 += total - kept;
        for (line, rec, st) in ok {
            if let Some(first) = seen.insert(
                (rec.municipality_code.clone(), rec.resident_code.clone()),
                line,
            ) {
                errors.push(
                    line,
                    "resident_code",
                    format!("the same resident as line {first}"),
                );
                continue;
            }
            rows.push((rec, st));
        }
    }
    errors.0.sort_by_key(|e| e.line);
    errors.into_result()?;
    if rows.is_empty() {
        return Err(Error::bad("file", "no residents in the file"));
    }
    Ok(rows)
}

/// Residents sealed per chunk handed from the sealing threads to the store.
const SEAL_CHUNK: usize = 8192;

/// When the store received its first chunk, and how long the index builds took.
#[derive(Default)]
struct StoreTiming {
    first_chunk: Option<std::time::Duration>,
    index: std::time::Duration,
    /// The final transaction (the only time the import holds the write lock for long).
    moved: std::time::Duration,
}

/// The synthetic demo extract (invented residents of 131016 千代田区 and 271004 大阪市, with
/// the awkward cases: variant kanji, era-form dates, half-width kana, 丁目 addresses,
/// people who moved out or died, two people who share a name and birthday).
pub const DEMO_EXTRACT: &str = include_str!("../demo_residents.csv");

/// How many residents are stored.
pub fn resident_count(conn: &mut DbConn) -> Result<i64> {
    Ok(residents::table.count().get_result(conn)?)
}

/// SQLite settings for a bulk import, and back. On: a large page cache (the indexes are
/// keyed hashes, so inserts land all over the B-trees) and, when this is the only connection
/// to the file, the rollback journal instead of WAL — WAL handles a transaction of hundreds
/// of megabytes poorly, while the rollback journal does not copy pages appended to the file.
/// When other connections are open (a running server) the switch is refused and the import
/// stays in WAL. Off: the usual cache and WAL. PostgreSQL: nothing.
fn bulk_cache(conn: &mut DbConn, on: bool) -> Result<()> {
    if let DbConn::Sqlite(c) = conn {
        use diesel::connection::SimpleConnection;
        let kib = if on {
            crate::db::SQLITE_BULK_CACHE_KIB
        } else {
            crate::db::SQLITE_CACHE_KIB
        };
        // Worker threads let CREATE INDEX sort on every core.
        let threads = if on {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            0
        };
        c.batch_execute(&format!(
            "PRAGMA cache_size = -{kib}; PRAGMA threads = {threads};"
        ))?;
        let mode = if on { "DELETE" } else { "WAL" };
        // The answer is the mode now in force; a refusal leaves WAL, which is correct too.
        let _ = c.batch_execute(&format!("PRAGMA journal_mode = {mode};"));
    }
    Ok(())
}
