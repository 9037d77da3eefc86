-- Intake and four-field verification: residents imported from registry extracts, registry
-- change events, and applications. Personal data is sealed (AES-256-GCM) in `pii`; the
-- *_key columns are keyed hashes (HMAC-SHA-256) for equality lookups.
CREATE TABLE residents (
    id BIGSERIAL PRIMARY KEY,
    municipality_code TEXT NOT NULL,
    resident_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('resident','moved_out','deceased')),
    dob_key TEXT NOT NULL,
    name_key TEXT NOT NULL,
    pii BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
-- Named (not a table constraint) so a first bulk load can build it after inserting.
CREATE UNIQUE INDEX residents_key ON residents (municipality_code, resident_key);
CREATE INDEX residents_dob_key ON residents (dob_key);
CREATE INDEX residents_name_key ON residents (name_key);

CREATE TABLE registry_events (
    id BIGSERIAL PRIMARY KEY,
    municipality_code TEXT NOT NULL,
    event_id TEXT NOT NULL,
    resident_id BIGINT NOT NULL REFERENCES residents (id),
    kind TEXT NOT NULL CHECK (kind IN ('move_within','move_out','name_change','death','correction')),
    effective_date TEXT NOT NULL,
    changed_fields TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    processed_at BIGINT,
    UNIQUE (municipality_code, event_id)
);
CREATE INDEX registry_events_unprocessed ON registry_events (processed_at, id);

CREATE TABLE applications (
    id BIGSERIAL PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('new','reissue','renewal')),
    state TEXT NOT NULL,
    municipality_code TEXT NOT NULL,
    delivery TEXT NOT NULL CHECK (delivery IN ('mail','counter')),
    form_application BOOLEAN NOT NULL,
    form_power_of_attorney BOOLEAN NOT NULL,
    form_consent BOOLEAN NOT NULL,
    pii BYTEA NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    registry_status TEXT,
    verdicts TEXT,
    resident_id BIGINT REFERENCES residents (id),
    decided_by BIGINT REFERENCES users (id),
    decided_at BIGINT,
    decision_reason TEXT
);
CREATE INDEX applications_queue ON applications (municipality_code, state, id);
