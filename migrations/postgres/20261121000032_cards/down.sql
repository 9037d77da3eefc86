DROP INDEX certificates_card;
ALTER TABLE certificates DROP COLUMN card_id;
DROP INDEX cards_live;
DROP INDEX cards_batch;
DROP TABLE cards;
