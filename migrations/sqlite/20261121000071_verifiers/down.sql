DELETE FROM counters WHERE name = 'linkage_seq';
DROP TABLE linkage_events;
DROP TABLE verifier_serials;
DROP TABLE verifier_credentials;
DROP TABLE verifiers;
