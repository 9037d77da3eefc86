-- Registry imports (issue 15): sealed rows are written here in short transactions while the
-- server keeps taking writes, then moved into residents in one transaction at the end, so an
-- import is still all-or-nothing but holds the write lock only for the move.
CREATE TABLE resident_staging (
    id BIGSERIAL PRIMARY KEY,
    import_id BIGINT NOT NULL,
    municipality_code TEXT NOT NULL,
    resident_key BYTEA NOT NULL,
    status TEXT NOT NULL,
    dob_key BYTEA NOT NULL,
    name_key BYTEA NOT NULL,
    pii BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    content_key BYTEA NOT NULL
);
CREATE INDEX resident_staging_import ON resident_staging (import_id);

-- A keyed hash of a resident's record and status as last imported: a re-import stages only
-- the residents whose record changed. NULL (rows from before, or changed by the change feed):
-- compared as changed.
ALTER TABLE residents ADD COLUMN content_key BYTEA;
