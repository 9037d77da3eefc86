DROP INDEX residents_key;
DROP INDEX residents_dob_key;
DROP INDEX residents_name_key;
ALTER TABLE residents ADD COLUMN resident_key_t TEXT NOT NULL DEFAULT '';
ALTER TABLE residents ADD COLUMN dob_key_t TEXT NOT NULL DEFAULT '';
ALTER TABLE residents ADD COLUMN name_key_t TEXT NOT NULL DEFAULT '';
UPDATE residents SET resident_key_t = lower(hex(resident_key)), dob_key_t = lower(hex(dob_key)),
    name_key_t = lower(hex(name_key));
ALTER TABLE residents DROP COLUMN resident_key;
ALTER TABLE residents DROP COLUMN dob_key;
ALTER TABLE residents DROP COLUMN name_key;
ALTER TABLE residents RENAME COLUMN resident_key_t TO resident_key;
ALTER TABLE residents RENAME COLUMN dob_key_t TO dob_key;
ALTER TABLE residents RENAME COLUMN name_key_t TO name_key;
CREATE UNIQUE INDEX residents_key ON residents (municipality_code, resident_key);
CREATE INDEX residents_dob_key ON residents (dob_key);
CREATE INDEX residents_name_key ON residents (name_key);
