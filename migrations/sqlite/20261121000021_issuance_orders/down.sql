DROP INDEX applications_batch;
ALTER TABLE applications DROP COLUMN batch_id;
DROP TABLE issuance_batches;
