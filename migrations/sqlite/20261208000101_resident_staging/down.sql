DROP TABLE resident_staging;
