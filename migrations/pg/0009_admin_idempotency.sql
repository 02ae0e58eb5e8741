-- The admin API's Idempotency-Key answers, as SQLite's admin_idempotency (migrations/0007): kept
-- 24 h per token and key, sealed with a key derived from the token, written in the transaction of
-- the action they answer.
CREATE TABLE admin_idempotency (
  actor         text NOT NULL,
  key           text NOT NULL,
  request_hash  text NOT NULL,
  status        integer NOT NULL,
  body          bytea NOT NULL,
  created_at    bigint NOT NULL,
  PRIMARY KEY (actor, key)
);
CREATE INDEX admin_idempotency_age ON admin_idempotency (created_at);
