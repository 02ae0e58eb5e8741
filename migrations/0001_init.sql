-- Accounts, keys, credits with their ledger, quota counters, usage records and webhook events.
-- Money is an integer number of micro-dollars (…_micros); time is milliseconds since the epoch.

CREATE TABLE accounts (
  id              TEXT PRIMARY KEY,
  email           TEXT NOT NULL UNIQUE,
  name            TEXT,
  plan            TEXT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  -- Always equals the sum of this account's ledger rows; never negative, and never past 2^53 - 1
  -- so JavaScript reads it exactly.
  balance_micros  INTEGER NOT NULL DEFAULT 0 CHECK (balance_micros BETWEEN 0 AND 9007199254740991),
  created_at      INTEGER NOT NULL,
  -- Room for Stripe state: filled by the billing module.
  stripe_customer_id     TEXT UNIQUE,
  stripe_subscription_id TEXT
);

CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,
  account_id  TEXT NOT NULL REFERENCES accounts(id),
  name        TEXT,
  -- SHA-256 of the whole key (base64url); the key itself is never stored.
  hash        TEXT NOT NULL UNIQUE,
  -- The first characters of the key, to tell keys apart in listings.
  prefix      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,
  revoked_at  INTEGER,
  -- Set on the old key by a rotation: the key that replaced it.
  replaced_by TEXT
);
CREATE INDEX api_keys_account ON api_keys (account_id);

-- Append-only: every change of a balance is one row here, in the same transaction.
CREATE TABLE ledger (
  id                    INTEGER PRIMARY KEY,
  account_id            TEXT NOT NULL REFERENCES accounts(id),
  amount_micros         INTEGER NOT NULL,
  balance_after_micros  INTEGER NOT NULL CHECK (balance_after_micros >= 0),
  kind                  TEXT NOT NULL,
  reference             TEXT,
  created_at            INTEGER NOT NULL
);
CREATE INDEX ledger_account ON ledger (account_id, id);
-- An AI request's reserve and settle rows share its request id: finds reservations never settled.
CREATE INDEX ledger_reference ON ledger (reference);
CREATE TRIGGER ledger_append_only_update BEFORE UPDATE ON ledger
  BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only'); END;
CREATE TRIGGER ledger_append_only_delete BEFORE DELETE ON ledger
  BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only'); END;

-- Metered requests per account per quota period ('2026-11' for a calendar month).
CREATE TABLE quota_usage (
  account_id  TEXT NOT NULL,
  period      TEXT NOT NULL,
  used        INTEGER NOT NULL CHECK (used >= 0),
  PRIMARY KEY (account_id, period)
) WITHOUT ROWID;

-- One row per proxied request. No index but the rowid: rows are appended in time order, so a
-- time range is found by binary search on the rowid (src/db/usage-range.ts). An index on ts cost
-- about 1 us per insert; one on (account_id, ts) would be written in random order.
CREATE TABLE usage (
  id              INTEGER PRIMARY KEY,
  ts              INTEGER NOT NULL,
  request_id      TEXT NOT NULL,
  account_id      TEXT,
  key_id          TEXT,
  route           TEXT NOT NULL,
  method          TEXT NOT NULL,
  path            TEXT NOT NULL,
  status          INTEGER NOT NULL,
  request_bytes   INTEGER NOT NULL,
  response_bytes  INTEGER NOT NULL,
  latency_us      INTEGER NOT NULL,
  -- Credits this request cost (0 inside the quota or when not billable).
  price_micros    INTEGER NOT NULL,
  billable        INTEGER NOT NULL
);

-- Webhook events applied exactly once: the id is recorded in the transaction of its effect.
-- A failed event is kept (status 'failed', its payload) so an operator can see and replay it;
-- it is tried again when the sender retries.
CREATE TABLE webhook_events (
  id           TEXT PRIMARY KEY,
  source       TEXT NOT NULL,
  type         TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('applied', 'ignored', 'failed')),
  -- What 'ignored' and 'failed' mean for this event.
  note         TEXT,
  attempts     INTEGER NOT NULL DEFAULT 1,
  payload      TEXT NOT NULL,
  received_at  INTEGER NOT NULL,
  applied_at   INTEGER
);
