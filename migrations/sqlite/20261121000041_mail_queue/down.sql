DROP INDEX mail_queue_due;
DROP TABLE mail_queue;
