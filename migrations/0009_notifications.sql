-- Notifications: events for the operator's systems (and the customers'), kept in an outbox
-- written in the commit of the change that caused them, and their deliveries, attempted off the
-- request path until a receiver takes them.

-- One row per event. event_id is the Standard Webhooks webhook-id of all its deliveries.
CREATE TABLE notifications (
  id          INTEGER PRIMARY KEY,
  event_id    TEXT NOT NULL UNIQUE,
  type        TEXT NOT NULL,
  account_id  TEXT,
  -- The figures, as JSON: the webhook body's "data".
  data        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  -- 1 once its deliveries exist (one per destination configured then).
  fanned_out  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notifications_new ON notifications (id) WHERE fanned_out = 0;
CREATE INDEX notifications_account ON notifications (account_id, id);

CREATE TABLE notification_deliveries (
  id               INTEGER PRIMARY KEY,
  notification_id  INTEGER NOT NULL REFERENCES notifications(id),
  channel          TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
  -- The webhook's URL or the email address.
  target           TEXT NOT NULL,
  status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER,
  -- When the first failed attempt of this round was: retries go on for a day from there.
  failing_since    INTEGER,
  -- The receiver's last answer (HTTP status, SMTP code; NULL: unreachable) and what went wrong.
  last_status      INTEGER,
  last_error       TEXT,
  delivered_at     INTEGER,
  UNIQUE (notification_id, channel, target)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_failed ON notification_deliveries (id) WHERE status = 'failed';

-- Per account: its own low-balance threshold (set by the operator) and which alerts may fire,
-- written by the gateway in the group commit of the alert that changed them, so a restart
-- neither fires an alert again nor forgets one. No foreign key: a group commit must never fail
-- on one row.
CREATE TABLE account_alerts (
  account_id          TEXT PRIMARY KEY,
  low_balance_micros  INTEGER CHECK (low_balance_micros >= 0),
  -- NULL: not decided yet (the gateway derives it from the balance).
  low_armed           INTEGER,
  depleted_armed      INTEGER,
  quota_period        TEXT,
  quota_percent       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- key.expiring: the expiry a key was last told of (a new expiry is told again). Keys expiring
-- within days are found through this index, never by a scan.
ALTER TABLE api_keys ADD COLUMN expiry_notified_at INTEGER;
CREATE INDEX api_keys_expiring ON api_keys (expires_at) WHERE expires_at IS NOT NULL AND revoked_at IS NULL;

-- credits.added, decided where the money moves: in the transaction of the ledger row of every
-- grant and paid checkout, whichever process writes it (the CLI, the admin API, a Stripe
-- webhook). The balance is as the file has it: the durable balance and what open leases hold
-- unspent as far as their counters are written.
CREATE TRIGGER ledger_credits_added AFTER INSERT ON ledger WHEN NEW.kind IN ('grant', 'purchase')
BEGIN
  INSERT INTO notifications (event_id, type, account_id, data, created_at)
  SELECT 'evt_' || lower(hex(randomblob(16))), 'credits.added', NEW.account_id,
    json_object('accountId', NEW.account_id, 'kind', NEW.kind, 'reference', NEW.reference,
      'amountMicros', NEW.amount_micros, 'balanceMicros', b.micros),
    NEW.created_at
  FROM (SELECT NEW.balance_after_micros + coalesce((SELECT sum(granted_micros - consumed_micros) FROM leases
    WHERE account_id = NEW.account_id AND closed_at IS NULL), 0) AS micros) AS b;
END;

-- Money coming in re-arms balance.depleted, durably, whichever process moved it (the gateway's
-- memory hears the change too); balance.low is re-armed by the gateway against its threshold.
CREATE TRIGGER ledger_rearms_depleted AFTER INSERT ON ledger WHEN NEW.kind IN ('grant', 'purchase', 'dispute_release')
BEGIN
  UPDATE account_alerts SET depleted_armed = 1 WHERE account_id = NEW.account_id AND depleted_armed = 0;
END;
