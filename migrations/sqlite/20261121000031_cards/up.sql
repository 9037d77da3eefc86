-- Cards (SPEC §2.4): one per ordered application, written by the batch runner. The card
-- number is reserved (unique) before the card is touched; `state` records how far writing
-- got, so a rerun after a crash resumes instead of starting over. PINs are sealed with the
-- data key until the PIN mailer has gone out, then erased. A card whose writing was cut off
-- so that it can no longer be read or opened is `spoiled`: its number is never used again,
-- and the application gets a new card (so only one live card per application).
CREATE TABLE cards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    card_number TEXT NOT NULL UNIQUE,
    application_id BIGINT NOT NULL REFERENCES applications (id),
    batch_id BIGINT NOT NULL REFERENCES issuance_batches (id),
    state TEXT NOT NULL CHECK (state IN ('allocated','personalised','certified','written','spoiled',
                                    'shipped','delivered','returned','handed_over')),
    chip_serial TEXT,
    keygen TEXT CHECK (keygen IN ('card','software')),
    pins BLOB,
    expires_on TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    written_at BIGINT,
    -- Delivery (SPEC §2.5): restricted-delivery mail or the counter.
    tracking_number TEXT,
    shipped_at BIGINT,
    delivered_at BIGINT,
    returned_at BIGINT,
    handed_over_at BIGINT,
    handed_over_by BIGINT REFERENCES users (id)
);
CREATE INDEX cards_batch ON cards (batch_id, state);
CREATE UNIQUE INDEX cards_live ON cards (application_id) WHERE state <> 'spoiled';
ALTER TABLE certificates ADD COLUMN card_id BIGINT REFERENCES cards (id);
CREATE INDEX certificates_card ON certificates (card_id);
