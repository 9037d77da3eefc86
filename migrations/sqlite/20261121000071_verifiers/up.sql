-- Verifiers (SPEC §5): approved relying parties, their credentials, the signing serials
-- each has registered, and the change feed of serial linkage.

-- cas: the issuing CAs whose data the verifier may use (comma-separated CA names).
-- rate_limit: requests per minute (a token bucket of that size, refilled evenly).
CREATE TABLE verifiers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    contact TEXT NOT NULL,
    cas TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','suspended')),
    rate_limit BIGINT NOT NULL CHECK (rate_limit > 0),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A client certificate (from the infrastructure CA's verifier-client profile) or an API
-- token (only its SHA-256 is kept). Revoking sets revoked_at; nothing is deleted.
CREATE TABLE verifier_credentials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    verifier_id BIGINT NOT NULL REFERENCES verifiers (id),
    kind TEXT NOT NULL CHECK (kind IN ('certificate','token')),
    label TEXT NOT NULL,
    token_hash TEXT UNIQUE,
    certificate_id BIGINT UNIQUE REFERENCES certificates (id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    CHECK ((kind = 'token') = (token_hash IS NOT NULL)),
    CHECK ((kind = 'certificate') = (certificate_id IS NOT NULL))
);
CREATE INDEX verifier_credentials_verifier ON verifier_credentials (verifier_id);

-- The signing certificates a verifier's users presented. seq comes from the linkage_seq
-- counter: the registration is the first entry ("linked") of the verifier's change feed.
CREATE TABLE verifier_serials (
    verifier_id BIGINT NOT NULL REFERENCES verifiers (id),
    certificate_id BIGINT NOT NULL REFERENCES certificates (id),
    card_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (verifier_id, certificate_id)
);
CREATE INDEX verifier_serials_seq ON verifier_serials (verifier_id, seq);
CREATE INDEX verifier_serials_card ON verifier_serials (verifier_id, card_id);

-- What happened to the certificates of a card, in linkage_seq order (the counter's row
-- lock orders writers, so a reader never sees seq n+1 committed before n): revocations
-- (reason 6 = hold), lifted holds, renewals (certificate_id → new_certificate_id).
CREATE TABLE linkage_events (
    seq BIGINT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('revoked','hold_lifted','renewed')),
    card_id BIGINT NOT NULL,
    certificate_id BIGINT NOT NULL REFERENCES certificates (id),
    new_certificate_id BIGINT REFERENCES certificates (id),
    reason INTEGER,
    at BIGINT NOT NULL
);
CREATE INDEX linkage_events_card ON linkage_events (card_id, seq);
INSERT INTO counters (name, value) VALUES ('linkage_seq', 0);
