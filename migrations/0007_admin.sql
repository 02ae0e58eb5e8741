-- The operator surface: an audit log of administrative changes, and the answers of admin API
-- POSTs kept for their Idempotency-Key.

-- Every administrative change (accounts, plans, standing, keys, credits, webhook replays), written
-- in the transaction of the change by src/db/admin.ts. Append-only, like the ledger.
CREATE TABLE audit_log (
  id          INTEGER PRIMARY KEY,
  at          INTEGER NOT NULL,
  -- 'cli', or 'token:' and the first 12 hex digits of the admin token's SHA-256 (never the token).
  actor       TEXT NOT NULL,
  -- 'account.create', 'account.update', 'key.create', 'key.revoke', 'key.rotate',
  -- 'credits.grant', 'credits.deduct', 'webhook.replay'.
  action      TEXT NOT NULL,
  -- The account, key or event acted on.
  target      TEXT NOT NULL,
  account_id  TEXT,
  -- What changed, as JSON ({"plan": {"from": "free", "to": "pro"}}, {"amountMicros": …}); never a key.
  change      TEXT NOT NULL,
  -- The admin API request's X-Request-Id (NULL from the CLI on the file).
  request_id  TEXT
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;

-- A POST's answer, kept 24 h for a retry with the same Idempotency-Key by the same token. The
-- answer is encrypted with a key derived from the token and the Idempotency-Key (a created API
-- key is in it, and only hashes of keys may be stored); request_hash tells a retry from a reuse
-- of the key for another request.
CREATE TABLE admin_idempotency (
  actor         TEXT NOT NULL,
  key           TEXT NOT NULL,
  request_hash  TEXT NOT NULL,
  status        INTEGER NOT NULL,
  body          BLOB NOT NULL,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (actor, key)
) WITHOUT ROWID;
CREATE INDEX admin_idempotency_age ON admin_idempotency (created_at);
