DROP TABLE applications;
DROP TABLE registry_events;
DROP TABLE residents;
