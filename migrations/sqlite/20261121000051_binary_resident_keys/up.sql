-- The residents' keyed hashes as 16-byte BLOBs instead of 32 hex digits: smaller rows and
-- index entries for registries of a million residents. SQLite cannot change a column's type,
-- so each column is replaced by a BLOB column of the same name (at the end of the row).
DROP INDEX residents_key;
DROP INDEX residents_dob_key;
DROP INDEX residents_name_key;
ALTER TABLE residents ADD COLUMN resident_key_b BLOB NOT NULL DEFAULT x'';
ALTER TABLE residents ADD COLUMN dob_key_b BLOB NOT NULL DEFAULT x'';
ALTER TABLE residents ADD COLUMN name_key_b BLOB NOT NULL DEFAULT x'';
UPDATE residents SET resident_key_b = unhex(resident_key), dob_key_b = unhex(dob_key),
    name_key_b = unhex(name_key);
ALTER TABLE residents DROP COLUMN resident_key;
ALTER TABLE residents DROP COLUMN dob_key;
ALTER TABLE residents DROP COLUMN name_key;
ALTER TABLE residents RENAME COLUMN resident_key_b TO resident_key;
ALTER TABLE residents RENAME COLUMN dob_key_b TO dob_key;
ALTER TABLE residents RENAME COLUMN name_key_b TO name_key;
CREATE UNIQUE INDEX residents_key ON residents (municipality_code, resident_key);
CREATE INDEX residents_dob_key ON residents (dob_key);
CREATE INDEX residents_name_key ON residents (name_key);
