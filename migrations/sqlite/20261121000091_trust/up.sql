-- Trust (issue 13): holder keys certified once, staff credentials that can be taken away,
-- login throttling per account and source, leases for work that must run once across
-- instances, the registry resident an application was checked against, and idempotency keys.

-- SHA-256 of the certified SubjectPublicKeyInfo. A holder's key is certified at most once
-- (an abandoned intent never was); other profiles are checked in code (responders and the TLS
-- server keep their key across renewals).
ALTER TABLE certificates ADD COLUMN key_hash BLOB;
CREATE INDEX certificates_key_hash ON certificates (key_hash);
CREATE UNIQUE INDEX certificates_holder_key ON certificates (key_hash)
    WHERE profile IN ('signing', 'authentication') AND state <> 'abandoned';

ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
ALTER TABLE users ADD COLUMN last_login_at BIGINT;
ALTER TABLE login_attempts ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX login_attempts_user_source_at ON login_attempts (username, source, at);

-- A keyed hash of the resident (municipality and resident code) the clerk's check found:
-- one live card per person.
ALTER TABLE applications ADD COLUMN resident_key BLOB;
CREATE INDEX applications_resident_key ON applications (resident_key);

-- Leases: one holder at a time for a batch run or the instance duties; a holder that stops
-- renewing loses it when it expires, and another may take it.
CREATE TABLE leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    instance TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The first answer to a POST with an Idempotency-Key, returned again to a retry.
CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL REFERENCES users (id),
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, scope, idem_key)
);
