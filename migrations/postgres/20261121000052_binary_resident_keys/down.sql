ALTER TABLE residents
    ALTER COLUMN resident_key TYPE TEXT USING encode(resident_key, 'hex'),
    ALTER COLUMN dob_key TYPE TEXT USING encode(dob_key, 'hex'),
    ALTER COLUMN name_key TYPE TEXT USING encode(name_key, 'hex');
