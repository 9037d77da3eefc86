DROP INDEX set_aside_cards_label;
DROP INDEX set_aside_cards_chip;
DROP INDEX set_aside_cards_batch;
DROP TABLE set_aside_cards;
