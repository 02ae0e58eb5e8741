-- Operator actions, as SQLite's audit_log keeps them (migrations/0007_admin.sql): who, what, on
-- which account or key, and what changed (JSON, never a key).
CREATE TABLE audit_log (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at          bigint NOT NULL,
  actor       text NOT NULL,
  action      text NOT NULL,
  target      text NOT NULL,
  account_id  text,
  change      text NOT NULL
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);
