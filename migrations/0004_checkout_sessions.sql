-- Credit checkouts this gateway created, recorded when Stripe returns the session: only a session
-- found here becomes credits, for the amount recorded here. Any other paid Checkout of the same
-- customer (a Payment Link, another product) is not a top-up.
CREATE TABLE checkout_sessions (
  session_id     TEXT PRIMARY KEY,
  account_id     TEXT NOT NULL REFERENCES accounts(id),
  amount_micros  INTEGER NOT NULL CHECK (amount_micros > 0),
  created_at     INTEGER NOT NULL
);
