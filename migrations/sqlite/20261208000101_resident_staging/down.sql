ALTER TABLE residents DROP COLUMN content_key;
DROP TABLE resident_staging;
