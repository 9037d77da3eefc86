-- Outgoing e-mail (SPEC §2.5): queued in the transaction that causes it, delivered by a
-- worker that retries with back-off while the mail server is down. The message (address,
-- subject, body) is personal data and sealed with the data key.
CREATE TABLE mail_queue (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    message BYTEA NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending','sent')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX mail_queue_due ON mail_queue (state, next_attempt_at);
