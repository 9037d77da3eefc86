-- Issuance orders (発券指示): verified applications grouped into a batch by the office.
CREATE TABLE issuance_batches (
    id BIGSERIAL PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('ordered','running','completed')),
    ordered_by BIGINT NOT NULL REFERENCES users (id),
    ordered_at BIGINT NOT NULL,
    application_count BIGINT NOT NULL
);
ALTER TABLE applications ADD COLUMN batch_id BIGINT REFERENCES issuance_batches (id);
CREATE INDEX applications_batch ON applications (batch_id);
