DROP TABLE certificates;
DROP TABLE cas;
DROP TABLE audit_head;
DROP TABLE audit_log;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE login_attempts;
DROP TABLE users;
