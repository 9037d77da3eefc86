-- Revocation (SPEC §2.6, §4). A certificate's status lives beside its issuance state:
-- revoked_at/revocation_reason are NULL while it is good; reason 6 (certificateHold) is a
-- hold that may be lifted. Every status change takes the next value of the status_seq
-- counter, so a delta CRL lists exactly what changed after its base CRL (a lifted hold:
-- status_seq set, revoked_at NULL → removeFromCRL). crl_shard is the CRL partition the
-- certificate's CRL distribution point names (NULL: the CA's whole CRL).
ALTER TABLE certificates ADD COLUMN revoked_at BIGINT;
ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER
    CHECK (revocation_reason IN (0, 1, 3, 4, 5, 6));
ALTER TABLE certificates ADD COLUMN status_seq BIGINT;
ALTER TABLE certificates ADD COLUMN crl_shard INTEGER;
-- Covering: a full CRL is read from this index alone, never from the rows (which carry the
-- certificate and its TBS, ~3 KB each).
CREATE INDEX certificates_revoked ON certificates
    (issuer, crl_shard, serial, revoked_at, revocation_reason, not_after) WHERE revoked_at IS NOT NULL;
CREATE INDEX certificates_status_seq ON certificates (issuer, status_seq) WHERE status_seq IS NOT NULL;

-- Monotonic counters taken inside the writing transaction (the row lock orders them).
CREATE TABLE counters (
    name TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('status_seq', 0);

-- Signed CRLs, newest per (issuer, shard, kind) served. shard -1 is the whole CRL.
-- covers_seq: every status change up to this counter value is reflected.
CREATE TABLE crls (
    id BIGSERIAL PRIMARY KEY,
    issuer TEXT NOT NULL,
    shard INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('full','delta')),
    number BIGINT NOT NULL,
    base_number BIGINT,
    covers_seq BIGINT NOT NULL,
    entries BIGINT NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    der BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX crls_number ON crls (issuer, shard, number);
CREATE INDEX crls_latest ON crls (issuer, shard, kind, number);

-- Old → new certificate links (renewal: the new signing certificate on the same card).
CREATE TABLE certificate_links (
    id BIGSERIAL PRIMARY KEY,
    old_certificate_id BIGINT NOT NULL UNIQUE REFERENCES certificates (id),
    new_certificate_id BIGINT NOT NULL UNIQUE REFERENCES certificates (id),
    created_at BIGINT NOT NULL
);

-- The card's validity, beside its production and delivery state: active, suspended (on
-- hold after a loss report), revoked (dead for good), destroyed (never reached the holder).
ALTER TABLE cards ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active','suspended','revoked','destroyed'));

-- Follow-up applications (reissue, renewal) point at the application and card they follow.
ALTER TABLE applications ADD COLUMN previous_application_id BIGINT REFERENCES applications (id);
ALTER TABLE applications ADD COLUMN card_id BIGINT REFERENCES cards (id);
-- A renewal records the signing certificate it replaces when it starts, so that a rerun
-- after a crash tells the old certificate from the one it issued.
ALTER TABLE applications ADD COLUMN renews_certificate_id BIGINT REFERENCES certificates (id);
