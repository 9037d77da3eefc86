-- Cards set aside while a batch was written (issue 12): a token in the card stack that is not
-- what kofu expects (a security-officer PIN that does not match, a card that cannot be
-- initialised or opened, a label kofu does not know, the number of a card written on another
-- chip, an unreadable token, a spoiled card). The operator pulls them from the stack; kofu
-- never takes a chip serial listed here again, nor gives a card the number such a token carries.
CREATE TABLE set_aside_cards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id BIGINT NOT NULL REFERENCES issuance_batches (id),
    card_id BIGINT REFERENCES cards (id),
    chip_serial TEXT NOT NULL,
    token_label TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('so_pin_mismatch','init_failed','pin_failed','unreadable',
                                           'unknown_label','other_card','spoiled')),
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX set_aside_cards_batch ON set_aside_cards (batch_id);
CREATE INDEX set_aside_cards_chip ON set_aside_cards (chip_serial);
CREATE INDEX set_aside_cards_label ON set_aside_cards (token_label);
