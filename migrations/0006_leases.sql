-- Money and counters live in the gateway's memory and reach the file in group commits.
--
-- Money: a gateway takes a lease out of an account's balance (a 'lease' ledger row) and admits,
-- reserves and settles requests against it in memory. Each usage row names the lease that paid
-- for it: the rows are the consumption. When the lease ends, what its rows did not spend goes
-- back to the balance (a 'lease_return' row). balance_micros still equals the sum of the ledger.
--
-- Counters (quota used, the account's latest row, consumption of a lease, metered overage) are
-- written from memory with bounded work per commit. Each counter row says up to which usage row
-- it has counted (through_id); rows after it are counted again from the usage table at start,
-- so a crash forgets nothing the usage rows hold.

-- Usage rows get their id from the gateway (one writer per file), so a row can name the previous
-- row of its account: an account's recent requests are a chain, read in as many lookups.
ALTER TABLE usage ADD COLUMN prev_id INTEGER;
-- The lease the request's price was taken from (NULL: nothing was charged).
ALTER TABLE usage ADD COLUMN lease_id INTEGER;
-- The quota period the request counted against (NULL: it did not count).
ALTER TABLE usage ADD COLUMN quota_period TEXT;
-- The Stripe billing meter and interval the request counted against as overage (NULL: it did not).
ALTER TABLE usage ADD COLUMN overage_meter TEXT;
ALTER TABLE usage ADD COLUMN overage_interval INTEGER;

CREATE TABLE leases (
  id               INTEGER PRIMARY KEY,
  account_id       TEXT NOT NULL REFERENCES accounts(id),
  -- The gateway holding it: the lease outlives neither the process nor (later) the node.
  node             TEXT NOT NULL,
  -- Taken out of the balance so far, net of what was given back while it ran.
  granted_micros   INTEGER NOT NULL CHECK (granted_micros >= 0),
  -- Spent by the lease's usage rows up to through_id.
  consumed_micros  INTEGER NOT NULL DEFAULT 0 CHECK (consumed_micros >= 0),
  through_id       INTEGER NOT NULL DEFAULT 0,
  created_at       INTEGER NOT NULL,
  closed_at        INTEGER,
  CHECK (consumed_micros <= granted_micros)
);
CREATE INDEX leases_open ON leases (account_id) WHERE closed_at IS NULL;

ALTER TABLE quota_usage ADD COLUMN through_id INTEGER NOT NULL DEFAULT 0;
-- Rows written before this migration get their chain once (one pass over the table).
UPDATE usage SET prev_id = c.prev
  FROM (SELECT id, lag(id) OVER (PARTITION BY account_id ORDER BY id) AS prev FROM usage WHERE account_id IS NOT NULL) AS c
  WHERE usage.id = c.id AND c.prev IS NOT NULL;

ALTER TABLE meter_outbox ADD COLUMN through_id INTEGER NOT NULL DEFAULT 0;

-- Usage rows up to this id are all counted in the counter rows above: the start of what is
-- counted again after a crash.
CREATE TABLE counters (
  name   TEXT PRIMARY KEY,
  value  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) SELECT 'through_id', coalesce(max(id), 0) FROM usage;

-- Changes other processes must see (a key revoked, a plan changed, credits granted): the
-- gateway reads what is new since it last looked and forgets only what changed.
CREATE TABLE changes (
  id          INTEGER PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('key', 'account', 'balance')),
  -- The key's hash for 'key', the account id otherwise.
  subject     TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);

-- AI reservations a crash left unsettled under the previous scheme are given back once, here
-- (the gateway no longer scans the ledger for them at every start).
CREATE TEMP TABLE orphans AS
  SELECT r.id, r.account_id, -r.amount_micros AS micros, r.reference FROM ledger r
  WHERE r.kind = 'reserve'
    AND NOT EXISTS (SELECT 1 FROM ledger s WHERE s.reference = r.reference AND s.kind IN ('settle', 'release'));
INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
  SELECT o.account_id, o.micros, a.balance_micros + sum(o.micros) OVER (PARTITION BY o.account_id ORDER BY o.id),
    'release', o.reference, CAST(strftime('%s', 'now') AS INTEGER) * 1000
  FROM orphans o JOIN accounts a ON a.id = o.account_id ORDER BY o.id;
UPDATE accounts SET balance_micros = balance_micros + (SELECT sum(micros) FROM orphans o WHERE o.account_id = accounts.id)
  WHERE id IN (SELECT account_id FROM orphans);
DROP TABLE orphans;
