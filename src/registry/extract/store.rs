//! Storing an import in two steps, so that a running server keeps taking writes: the sealed
//! rows go to `resident_staging` in short transactions as the sealing threads hand them over
//! (the write lock is free between chunks), then one transaction moves them into `residents`
//! (known residents updated, new ones inserted; SQL over the staged rows, no sealing, so the
//! lock is held for the move only). A failure before the move leaves `residents` untouched,
//! and the staged rows of the import are removed either way.

use super::*;
use crate::db::schema::resident_staging;

/// A sealed resident waiting in the staging table.
#[derive(Insertable)]
#[diesel(table_name = resident_staging)]
struct Staged<'a> {
    import_id: i64,
    municipality_code: &'a str,
    resident_key: &'a [u8],
    status: &'a str,
    dob_key: &'a [u8],
    name_key: &'a [u8],
    pii: &'a [u8],
    updated_at: i64,
    content_key: &'a [u8],
}

/// What an import did.
pub(super) struct Stored {
    /// Residents added.
    pub fresh: usize,
    /// Residents whose record or status changed.
    pub updated: usize,
    /// Residents the file brings nothing new for (not written at all).
    pub unchanged: usize,
}

/// Store sealed residents as they arrive (see the module header); a resident whose record
/// and status are what the last import stored is left as it is. Fewer than `expected` (a
/// sealing thread that stopped) stores nothing.
#[allow(clippy::too_many_arguments)]
pub(super) fn store_residents(
    conn: &mut DbConn,
    chunks: std::sync::mpsc::Receiver<Result<Vec<NewResident>>>,
    expected: usize,
    municipalities: &BTreeSet<&str>,
    target: &str,
    actor: &Actor,
    now_s: i64,
    timing: &mut StoreTiming,
) -> Result<Stored> {
    let mut id = [0u8; 8];
    openssl::rand::rand_bytes(&mut id)?;
    let import_id = i64::from_be_bytes(id) & i64::MAX;
    let result = known_contents(conn, municipalities)
        .and_then(|known| stage(conn, &chunks, &known, import_id, timing))
        .and_then(|(staged, unchanged)| {
            if staged + unchanged != expected {
                return Err(Error::Internal(format!(
                    "sealing stopped after {} of {expected} residents; nothing was imported",
                    staged + unchanged
                )));
            }
            let moving = std::time::Instant::now();
            let moved = move_staged(
                conn, import_id, staged, unchanged, target, actor, now_s, timing,
            );
            timing.moved = moving.elapsed();
            moved.map(|(fresh, updated)| Stored {
                fresh,
                updated,
                unchanged,
            })
        });
    // A sealer still sending (after a failure) stops at its next send.
    drop(chunks);
    if let Err(e) = clear_staging(conn, import_id) {
        tracing::warn!(error = %e, import_id, "staged rows of an import were not removed");
    }
    result
}

/// The content key of every resident of the municipalities, by resident key (NULL keys, from
/// before or after a change-feed event, are left out: compared as changed).
fn known_contents(
    conn: &mut DbConn,
    municipalities: &BTreeSet<&str>,
) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
    let mut known = HashMap::new();
    for m in municipalities {
        let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = residents::table
            .filter(residents::municipality_code.eq(*m))
            .filter(residents::content_key.is_not_null())
            .select((residents::resident_key, residents::content_key))
            .load(conn)?;
        known.extend(rows.into_iter().filter_map(|(k, c)| Some((k, c?))));
    }
    Ok(known)
}

/// Write each chunk's new and changed residents in a transaction of its own; returns how many
/// rows were staged and how many were unchanged.
fn stage(
    conn: &mut DbConn,
    chunks: &std::sync::mpsc::Receiver<Result<Vec<NewResident>>>,
    known: &HashMap<Vec<u8>, Vec<u8>>,
    import_id: i64,
    timing: &mut StoreTiming,
) -> Result<(usize, usize)> {
    let started = std::time::Instant::now();
    let (mut staged, mut unchanged) = (0, 0);
    for chunk in chunks.iter() {
        let chunk = chunk?;
        if timing.first_chunk.is_none() {
            timing.first_chunk = Some(started.elapsed());
        }
        let rows: Vec<Staged<'_>> = chunk
            .iter()
            .filter(|r| known.get(&r.resident_key) != r.content_key.as_ref())
            .map(|r| Staged {
                import_id,
                municipality_code: &r.municipality_code,
                resident_key: &r.resident_key,
                status: &r.status,
                dob_key: &r.dob_key,
                name_key: &r.name_key,
                pii: &r.pii,
                updated_at: r.updated_at,
                content_key: r.content_key.as_deref().unwrap_or_default(),
            })
            .collect();
        unchanged += chunk.len() - rows.len();
        if rows.is_empty() {
            continue;
        }
        conn.transaction(|c| -> Result<()> {
            match c {
                DbConn::Sqlite(lite) => {
                    for r in &rows {
                        diesel::insert_into(resident_staging::table)
                            .values(r)
                            .execute(lite)?;
                    }
                }
                DbConn::Pg(pg) => {
                    for part in rows.chunks(500) {
                        diesel::insert_into(resident_staging::table)
                            .values(part)
                            .execute(pg)?;
                    }
                }
            }
            Ok(())
        })?;
        staged += rows.len();
    }
    Ok((staged, unchanged))
}

/// Run `sql` with its one parameter (`$1`) bound to the import.
fn run_sql(c: &mut DbConn, sql: &str, import_id: i64) -> Result<usize> {
    use diesel::sql_types::BigInt;
    Ok(match c {
        DbConn::Sqlite(lite) => diesel::sql_query(sql.replace("$1", "?1"))
            .bind::<BigInt, _>(import_id)
            .execute(lite)?,
        DbConn::Pg(pg) => diesel::sql_query(sql)
            .bind::<BigInt, _>(import_id)
            .execute(pg)?,
    })
}

const COLUMNS: &str =
    "municipality_code, resident_key, status, dob_key, name_key, pii, updated_at, content_key";

/// The one transaction that makes an import visible.
#[allow(clippy::too_many_arguments)]
fn move_staged(
    conn: &mut DbConn,
    import_id: i64,
    expected: usize,
    unchanged: usize,
    target: &str,
    actor: &Actor,
    now_s: i64,
    timing: &mut StoreTiming,
) -> Result<(usize, usize)> {
    conn.transaction(|c| {
        crate::db::lock_for_write(c)?;
        // Into an empty table, build the indexes after the rows (a sorted build instead of
        // a million random B-tree inserts); duplicates were already refused line by line.
        let rebuild = resident_count(c)? == 0;
        let updated = if rebuild {
            for (name, _) in RESIDENT_INDEXES {
                diesel::sql_query(format!("DROP INDEX {name}")).execute(c)?;
            }
            0
        } else {
            run_sql(
                c,
                "UPDATE residents SET status = s.status, dob_key = s.dob_key, \
                 name_key = s.name_key, pii = s.pii, updated_at = s.updated_at, \
                 content_key = s.content_key \
                 FROM resident_staging AS s WHERE s.import_id = $1 \
                 AND residents.municipality_code = s.municipality_code \
                 AND residents.resident_key = s.resident_key",
                import_id,
            )?
        };
        let fresh = if rebuild {
            run_sql(
                c,
                &format!(
                    "INSERT INTO residents ({COLUMNS}) SELECT {COLUMNS} FROM resident_staging \
                     WHERE import_id = $1 ORDER BY id"
                ),
                import_id,
            )?
        } else {
            run_sql(
                c,
                &format!(
                    "INSERT INTO residents ({COLUMNS}) SELECT {COLUMNS} FROM resident_staging AS s \
                     WHERE s.import_id = $1 AND NOT EXISTS (SELECT 1 FROM residents AS r \
                     WHERE r.municipality_code = s.municipality_code \
                     AND r.resident_key = s.resident_key) ORDER BY s.id"
                ),
                import_id,
            )?
        };
        if fresh + updated != expected {
            return Err(Error::Internal(format!(
                "moved {} of {expected} staged residents; nothing was imported",
                fresh + updated
            )));
        }
        let indexing = std::time::Instant::now();
        if rebuild {
            for (_, create) in RESIDENT_INDEXES {
                diesel::sql_query(create).execute(c)?;
            }
        }
        timing.index = indexing.elapsed();
        audit::append(
            c,
            now_s,
            actor,
            "registry.import",
            target,
            &format!(
                "rows={} new={fresh} updated={updated} unchanged={unchanged}",
                fresh + updated + unchanged
            ),
        )?;
        Ok::<_, Error>((fresh, updated))
    })
}

/// Remove an import's staged rows, ten thousand a transaction.
fn clear_staging(conn: &mut DbConn, import_id: i64) -> Result<()> {
    while run_sql(
        conn,
        "DELETE FROM resident_staging WHERE id IN \
         (SELECT id FROM resident_staging WHERE import_id = $1 LIMIT 10000)",
        import_id,
    )? > 0
    {}
    Ok(())
}
