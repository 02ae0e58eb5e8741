-- Rate limits shared by every node: one token bucket per account and window ('second', 'minute',
-- 'day'), refilled by the time since it was last taken from (on the database's clock). A node
-- takes a slice of its tokens and spends them in memory, so what all nodes admit never exceeds
-- what the bucket gave.
CREATE TABLE rate_buckets (
  account_id  text NOT NULL REFERENCES accounts(id),
  name        text NOT NULL,
  tokens      double precision NOT NULL CHECK (tokens >= 0),
  -- What the last take took (RETURNING reads it: the take is one upsert).
  taken       double precision NOT NULL,
  at          bigint NOT NULL,
  PRIMARY KEY (account_id, name)
);
