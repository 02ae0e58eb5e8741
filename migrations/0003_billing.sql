-- Stripe state. Times from Stripe are kept in milliseconds like the rest of the schema.

-- Why an account is suspended: 'payment_failed', 'dispute' or 'operator' (shown in its 402s).
ALTER TABLE accounts ADD COLUMN status_reason TEXT;
-- `created` of the newest invoice.paid / invoice.payment_failed applied: an older one is skipped.
ALTER TABLE accounts ADD COLUMN standing_event_at INTEGER;
-- What a refund took beyond the balance; the next top-up pays it first.
ALTER TABLE accounts ADD COLUMN debt_micros INTEGER NOT NULL DEFAULT 0 CHECK (debt_micros >= 0);
ALTER TABLE accounts ADD COLUMN subscription_status TEXT;
-- `created` of the newest subscription event applied: an older one never overwrites it.
ALTER TABLE accounts ADD COLUMN subscription_event_at INTEGER;
ALTER TABLE accounts ADD COLUMN past_due_since INTEGER;
-- The subscription's billing period: the quota period while it lasts.
ALTER TABLE accounts ADD COLUMN period_start INTEGER;
ALTER TABLE accounts ADD COLUMN period_end INTEGER;

-- Credits bought through Checkout, so refunds and disputes can be traced back to them.
CREATE TABLE credit_purchases (
  session_id       TEXT PRIMARY KEY,
  account_id       TEXT NOT NULL REFERENCES accounts(id),
  payment_intent   TEXT UNIQUE,
  amount_micros    INTEGER NOT NULL CHECK (amount_micros > 0),
  -- Stripe's running amount_refunded, as already debited.
  refunded_micros  INTEGER NOT NULL DEFAULT 0,
  created_at       INTEGER NOT NULL
);

CREATE TABLE disputes (
  id              TEXT PRIMARY KEY,
  account_id      TEXT NOT NULL REFERENCES accounts(id),
  -- What is disputed, in credits; and what was taken out of the balance while it is open.
  disputed_micros INTEGER NOT NULL,
  frozen_micros   INTEGER NOT NULL,
  status          TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  closed_at       INTEGER
);

-- Metered overage waiting to be reported to Stripe: one row per account, meter and interval.
-- `identifier` makes a retried report harmless (Stripe keeps the first with that identifier).
CREATE TABLE meter_outbox (
  id               INTEGER PRIMARY KEY,
  account_id       TEXT NOT NULL REFERENCES accounts(id),
  event_name       TEXT NOT NULL,
  interval_start   INTEGER NOT NULL,
  value            INTEGER NOT NULL CHECK (value >= 0),
  identifier       TEXT NOT NULL UNIQUE,
  status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'reported')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL DEFAULT 0,
  last_error       TEXT,
  reported_at      INTEGER,
  UNIQUE (account_id, event_name, interval_start)
);
CREATE INDEX meter_outbox_pending ON meter_outbox (status, next_attempt_at);
