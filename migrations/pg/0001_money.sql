-- PostgreSQL: the state several gateways share. This migration holds what money across nodes
-- needs: accounts, keys, the ledger, the gateways themselves (nodes) and their leases. Money is
-- micro-dollars in bigint, never past 2^53 - 1 so JavaScript reads it exactly; time is bigint ms
-- since the epoch, taken from the database's clock wherever nodes compare times.

CREATE TABLE accounts (
  id                      text PRIMARY KEY,
  email                   text NOT NULL,
  name                    text,
  plan                    text NOT NULL,
  status                  text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  status_reason           text,
  -- Always equals the sum of this account's ledger rows; never negative.
  balance_micros          bigint NOT NULL DEFAULT 0 CHECK (balance_micros BETWEEN 0 AND 9007199254740991),
  debt_micros             bigint NOT NULL DEFAULT 0 CHECK (debt_micros >= 0),
  created_at              bigint NOT NULL,
  stripe_customer_id      text UNIQUE,
  stripe_subscription_id  text,
  standing_event_at       bigint,
  subscription_status     text,
  subscription_event_at   bigint,
  past_due_since          bigint,
  period_start            bigint,
  period_end              bigint,
  standing_invoice_id     text
);
CREATE UNIQUE INDEX accounts_email_nocase ON accounts (lower(email));

CREATE TABLE api_keys (
  id                  text PRIMARY KEY,
  account_id          text NOT NULL REFERENCES accounts(id),
  name                text,
  -- SHA-256 of the whole key (base64url); the key itself is never stored.
  hash                text NOT NULL UNIQUE,
  prefix              text NOT NULL,
  created_at          bigint NOT NULL,
  expires_at          bigint,
  revoked_at          bigint,
  replaced_by         text,
  expiry_notified_at  bigint
);
CREATE INDEX api_keys_account ON api_keys (account_id);
CREATE INDEX api_keys_expiring ON api_keys (expires_at) WHERE expires_at IS NOT NULL AND revoked_at IS NULL;

-- Append-only: every change of a balance is one row here, in the same transaction.
CREATE TABLE ledger (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id            text NOT NULL REFERENCES accounts(id),
  amount_micros         bigint NOT NULL,
  balance_after_micros  bigint NOT NULL CHECK (balance_after_micros >= 0),
  kind                  text NOT NULL,
  reference             text,
  created_at            bigint NOT NULL
);
CREATE INDEX ledger_account ON ledger (account_id, id);
CREATE INDEX ledger_reference ON ledger (reference);
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger FOR EACH ROW EXECUTE FUNCTION append_only();

-- Every gateway process is a node: its heartbeat says it is alive. A node silent past the TTL is
-- dead, and the survivors return what its leases hold.
CREATE TABLE nodes (
  id            text PRIMARY KEY,
  started_at    bigint NOT NULL,
  heartbeat_at  bigint NOT NULL
);

-- A node's share of an account's balance, taken out of it (a 'lease' ledger row) and spent in the
-- node's memory; what it did not spend goes back when it ends (a 'lease_return' row). The sum of
-- the open leases of an account can never exceed what its balance held: each take is a
-- conditional update of the account's row.
CREATE TABLE leases (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id       text NOT NULL REFERENCES accounts(id),
  node             text NOT NULL,
  -- Taken out of the balance so far, net of what was given back while it ran.
  granted_micros   bigint NOT NULL CHECK (granted_micros >= 0),
  -- Spent by the lease's usage rows up to through_id.
  consumed_micros  bigint NOT NULL DEFAULT 0 CHECK (consumed_micros >= 0),
  through_id       bigint NOT NULL DEFAULT 0,
  created_at       bigint NOT NULL,
  closed_at        bigint,
  CHECK (consumed_micros <= granted_micros)
);
CREATE INDEX leases_open ON leases (account_id) WHERE closed_at IS NULL;
CREATE INDEX leases_node_open ON leases (node) WHERE closed_at IS NULL;
