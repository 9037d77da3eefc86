//! The registry change feed (`kofu registry changes`): each event checked, applied once to
//! the resident it names, and kept (registry_events) for the revocation work that acts on it.

use super::*;

/// A change-feed line that passed every check of its own, before the database is asked
/// about it; `resident_id` is 0 until the resident is found.
struct Change {
    line: u64,
    event_id: String,
    kind: &'static str,
    effective_date: String,
    municipality_code: String,
    resident_code: String,
    resident_id: i64,
    name: Option<String>,
    name_kana: Option<String>,
    birth_date: Option<chrono::NaiveDate>,
    sex: Option<Sex>,
    address: Option<String>,
    postal_code: Option<String>,
}

/// Check every line of a change feed on its own (fields, kinds, dates, duplicates), without
/// the database: the number of events, or every bad line named.
pub fn read_changes(input: impl Read) -> Result<usize> {
    let mut errors = Errors(Vec::new(), 0);
    let lines = read_lines(input, &mut errors)?;
    errors.into_result()?;
    Ok(lines.len())
}

/// The lines of a change feed that pass their own checks; the others go to `errors`.
fn read_lines(input: impl Read, errors: &mut Errors) -> Result<Vec<Change>> {
    let (mut rdr, col) = open_csv(input, &CHANGE_COLUMNS)?;
    let mut changes = Vec::new();
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if e.is_io_error() => return Err(unreadable(line, e)),
            Err(e) => {
                errors.push(
                    e.position().map_or(line, |p| p.line()),
                    "line",
                    format!("not valid CSV: {e}"),
                );
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        if record.len() != CHANGE_COLUMNS.len() {
            errors.push(
                line,
                "line",
                format!(
                    "has {} fields, expected {}",
                    record.len(),
                    CHANGE_COLUMNS.len()
                ),
            );
            continue;
        }
        let get = |c: &str| record.get(col[c]).unwrap_or("");
        let before = errors.1;
        let event_id = get("event_id").to_string();
        if event_id.is_empty() || event_id.len() > 64 {
            errors.push(line, "event_id", "1–64 characters");
        }
        let muni = get("municipality_code").to_string();
        if let Err(Error::BadInput { message, .. }) = check_municipality_code(&muni) {
            errors.push(line, "municipality_code", message);
        }
        let kind = CHANGE_KINDS.iter().find(|k| **k == get("kind")).copied();
        if kind.is_none() {
            errors.push(
                line,
                "kind",
                format!(
                    "{:?}: expected one of {}",
                    get("kind"),
                    CHANGE_KINDS.join(", ")
                ),
            );
        }
        let effective_date = match era::parse(get("effective_date")) {
            Ok(d) => d.format("%Y-%m-%d").to_string(),
            Err(m) => {
                errors.push(line, "effective_date", m);
                String::new()
            }
        };
        let name = text(errors, line, "name", get("name"), false);
        let name_kana = optional(
            errors,
            line,
            "name_kana",
            get("name_kana"),
            kana::check_name,
        );
        let birth_date = optional(errors, line, "birth_date", get("birth_date"), era::parse);
        let sex = optional(errors, line, "sex", get("sex"), |v| {
            Sex::parse(v).ok_or_else(|| format!("{v:?}: expected 1/2, male/female or 男/女"))
        });
        let address = text(errors, line, "address", get("address"), false);
        let postal_code = optional(
            errors,
            line,
            "postal_code",
            get("postal_code"),
            jp::postal_code,
        );
        match kind {
            Some("move_within") if address.is_none() => errors.push(
                line,
                "address",
                "a move within the municipality needs the new address",
            ),
            Some("name_change") if name.is_none() && name_kana.is_none() => {
                errors.push(line, "name", "a name change needs the new name or kana")
            }
            Some("correction")
                if name.is_none()
                    && name_kana.is_none()
                    && birth_date.is_none()
                    && sex.is_none()
                    && address.is_none() =>
            {
                errors.push(
                    line,
                    "kind",
                    "a correction needs at least one corrected field",
                )
            }
            _ => {}
        }
        if !event_id.is_empty()
            && let Some(first) = seen.insert((muni.clone(), event_id.clone()), line)
        {
            errors.push(line, "event_id", format!("the same event as line {first}"));
        }
        if errors.1 > before {
            continue;
        }
        if let Some(kind) = kind {
            changes.push(Change {
                line,
                event_id,
                kind,
                effective_date,
                municipality_code: muni,
                resident_code: get("resident_code").to_string(),
                resident_id: 0,
                name,
                name_kana,
                birth_date,
                sex,
                address,
                postal_code,
            });
        }
    }
    Ok(changes)
}

/// Apply a change feed. Validates every line first (each resident must exist); stores
/// nothing if any line is bad; skips events applied before.
pub fn apply_changes(
    conn: &mut DbConn,
    key: &DataKey,
    input: impl Read,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<ChangeSummary> {
    let mut errors = Errors(Vec::new(), 0);
    let mut already = 0usize;
    let mut changes = Vec::new();
    for mut ch in read_lines(input, &mut errors)? {
        // Applied before? Then this run skips it.
        let done: i64 = registry_events::table
            .filter(registry_events::municipality_code.eq(&ch.municipality_code))
            .filter(registry_events::event_id.eq(&ch.event_id))
            .count()
            .get_result(conn)?;
        if done > 0 {
            already += 1;
            continue;
        }
        let rkey = resident_key(key, &ch.municipality_code, &ch.resident_code);
        let resident: Option<i64> = residents::table
            .filter(residents::municipality_code.eq(&ch.municipality_code))
            .filter(residents::resident_key.eq(&rkey))
            .select(residents::id)
            .first(conn)
            .optional()?;
        let Some(resident_id) = resident else {
            errors.push(
                ch.line,
                "resident_code",
                "no such resident in this municipality's extract",
            );
            continue;
        };
        ch.resident_id = resident_id;
        changes.push(ch);
    }
    errors.0.sort_by_key(|e| e.line);
    errors.into_result()?;

    let now_s = now.timestamp();
    let applied = changes.len();
    let mut sealer = key.sealer()?;
    conn.transaction(|c| {
        let mut touched = HashSet::new();
        for ch in &changes {
            let (status, sealed): (String, Vec<u8>) = residents::table
                .find(ch.resident_id)
                .select((residents::status, residents::pii))
                .first(c)?;
            let crate::registry::Opened(old) = key.open_json(RESIDENTS_TABLE, &sealed)?;
            let mut new = old.clone();
            let mut new_status = RegistryStatus::parse(&status).unwrap_or(RegistryStatus::Resident);
            if let Some(v) = &ch.name {
                new.person.name = v.clone();
            }
            if let Some(v) = &ch.name_kana {
                new.person.name_kana = v.clone();
            }
            if let Some(v) = ch.birth_date {
                new.person.birth_date = v;
            }
            if let Some(v) = ch.sex {
                new.person.sex = v;
            }
            if let Some(v) = &ch.address {
                new.person.address = v.clone();
            }
            if let Some(v) = &ch.postal_code {
                new.person.postal_code = v.clone();
            }
            match ch.kind {
                "move_out" => new_status = RegistryStatus::MovedOut,
                "death" => new_status = RegistryStatus::Deceased,
                _ => {}
            }
            // Which facts this event changed, for the revocation work that acts on them.
            let changed: Vec<&str> = [
                ("name", new.person.name != old.person.name),
                ("name_kana", new.person.name_kana != old.person.name_kana),
                ("birth_date", new.person.birth_date != old.person.birth_date),
                ("sex", new.person.sex != old.person.sex),
                ("address", new.person.address != old.person.address),
                (
                    "postal_code",
                    new.person.postal_code != old.person.postal_code,
                ),
                ("status", new_status.as_str() != status),
            ]
            .into_iter()
            .filter_map(|(field, differs)| differs.then_some(field))
            .collect();
            let row = seal_resident(key, &mut sealer, &new, new_status, now_s)?;
            diesel::update(residents::table.find(ch.resident_id))
                .set((
                    residents::status.eq(&row.status),
                    residents::dob_key.eq(&row.dob_key),
                    residents::name_key.eq(&row.name_key),
                    residents::pii.eq(&row.pii),
                    residents::updated_at.eq(now_s),
                    // Changed by the feed: the next import compares it as changed.
                    residents::content_key.eq(None::<Vec<u8>>),
                ))
                .execute(c)?;
            diesel::insert_into(registry_events::table)
                .values((
                    registry_events::municipality_code.eq(&new.municipality_code),
                    registry_events::event_id.eq(&ch.event_id),
                    registry_events::resident_id.eq(ch.resident_id),
                    registry_events::kind.eq(ch.kind),
                    registry_events::effective_date.eq(&ch.effective_date),
                    registry_events::changed_fields.eq(changed.join(",")),
                    registry_events::applied_at.eq(now_s),
                ))
                .execute(c)
                .map_err(|e| match Error::from(e) {
                    Error::Duplicate(_) => Error::Changed(format!(
                        "line {}: event {} was applied concurrently",
                        ch.line, ch.event_id
                    )),
                    other => other,
                })?;
            touched.insert(new.municipality_code.clone());
        }
        let target = touched
            .iter()
            .map(|m| format!("municipality:{m}"))
            .collect::<Vec<_>>()
            .join(",");
        audit::append(
            c,
            now_s,
            actor,
            "registry.changes",
            &target,
            &format!("applied={applied} already_applied={already}"),
        )?;
        Ok::<_, Error>(())
    })?;
    Ok(ChangeSummary {
        applied,
        already_applied: already,
    })
}
