-- The residents' keyed hashes as 16-byte values instead of 32 hex digits: smaller rows and
-- index entries for registries of a million residents.
ALTER TABLE residents
    ALTER COLUMN resident_key TYPE BYTEA USING decode(resident_key, 'hex'),
    ALTER COLUMN dob_key TYPE BYTEA USING decode(dob_key, 'hex'),
    ALTER COLUMN name_key TYPE BYTEA USING decode(name_key, 'hex');
