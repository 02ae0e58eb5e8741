-- Usage rows and the counters derived from them. Each node numbers its own rows (the key is the
-- node and its number), so nodes never wait on one another for ids. A group commit inserts the
-- rows and adds what they count to the counters in the same statement: a row is never written
-- without being counted, so nothing is counted again after a crash, and a dead node's leases
-- already show what its rows spent.

CREATE TABLE usage (
  node                text NOT NULL,
  id                  bigint NOT NULL,
  -- The account's previous row on the same node (0: none).
  prev_id             bigint NOT NULL DEFAULT 0,
  ts                  bigint NOT NULL,
  request_id          text NOT NULL,
  account_id          text,
  key_id              text,
  route               text NOT NULL,
  method              text NOT NULL,
  path                text NOT NULL,
  status              integer NOT NULL,
  request_bytes       bigint NOT NULL,
  response_bytes      bigint NOT NULL,
  latency_us          bigint NOT NULL,
  price_micros        bigint NOT NULL,
  billable            boolean NOT NULL,
  lease_id            bigint,
  quota_period        text,
  overage_meter       text,
  overage_interval    bigint,
  model               text,
  input_tokens        bigint,
  cached_tokens       bigint,
  cache_write_tokens  bigint,
  output_tokens       bigint,
  estimated           boolean NOT NULL DEFAULT false,
  PRIMARY KEY (node, id)
);
-- Time ranges (the usage API, retention): rows arrive in time order, so a BRIN index stays small.
CREATE INDEX usage_ts ON usage USING brin (ts);
CREATE INDEX usage_account ON usage (account_id, ts);

-- Metered requests per account per quota period ('2026-11' for a calendar month).
CREATE TABLE quota_usage (
  account_id  text NOT NULL,
  period      text NOT NULL,
  used        bigint NOT NULL CHECK (used >= 0),
  PRIMARY KEY (account_id, period)
);

-- Daily rollups per account ('' for auth-free routes), route, model ('' on plain routes) and status.
CREATE TABLE usage_daily (
  account_id          text NOT NULL,
  day                 bigint NOT NULL,
  route               text NOT NULL,
  model               text NOT NULL,
  status              integer NOT NULL,
  requests            bigint NOT NULL,
  billable            bigint NOT NULL,
  charged_micros      bigint NOT NULL,
  input_tokens        bigint NOT NULL,
  cached_tokens       bigint NOT NULL,
  cache_write_tokens  bigint NOT NULL,
  output_tokens       bigint NOT NULL,
  PRIMARY KEY (account_id, day, route, model, status)
);
CREATE INDEX usage_daily_day ON usage_daily (day, account_id, status);

-- Overage units per Stripe meter and interval, reported to Stripe by one node at a time.
CREATE TABLE meter_outbox (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id       text NOT NULL REFERENCES accounts(id),
  event_name       text NOT NULL,
  interval_start   bigint NOT NULL,
  value            bigint NOT NULL CHECK (value >= 0),
  -- Stripe caps identifiers at 100 characters: a hash of what names the interval (as SQLite's).
  identifier       text NOT NULL UNIQUE,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'reported')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  bigint NOT NULL DEFAULT 0,
  last_error       text,
  reported_at      bigint,
  UNIQUE (account_id, event_name, interval_start)
);
CREATE INDEX meter_outbox_pending ON meter_outbox (status, next_attempt_at);

-- Alerts decided in the gateways' memory: an account's alert state, and the events they fired,
-- written in the commit of the row that decided them.
CREATE TABLE account_alerts (
  account_id          text PRIMARY KEY,
  low_balance_micros  bigint CHECK (low_balance_micros >= 0),
  low_armed           boolean,
  depleted_armed      boolean,
  quota_period        text,
  quota_percent       integer NOT NULL DEFAULT 0
);

CREATE TABLE notifications (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id    text NOT NULL UNIQUE,
  type        text NOT NULL,
  account_id  text,
  -- The figures, as JSON: the webhook body's "data".
  data        text NOT NULL,
  created_at  bigint NOT NULL,
  fanned_out  boolean NOT NULL DEFAULT false
);
CREATE INDEX notifications_new ON notifications (id) WHERE NOT fanned_out;
CREATE INDEX notifications_account ON notifications (account_id, id);
