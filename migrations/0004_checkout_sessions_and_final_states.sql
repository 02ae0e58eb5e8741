-- Credit checkouts this gateway created, recorded when Stripe returns the session: only a session
-- found here becomes credits, for the amount recorded here. Any other paid Checkout of the same
-- customer (a Payment Link, another product) is not a top-up.
CREATE TABLE checkout_sessions (
  session_id     TEXT PRIMARY KEY,
  account_id     TEXT NOT NULL REFERENCES accounts(id),
  amount_micros  INTEGER NOT NULL CHECK (amount_micros > 0),
  created_at     INTEGER NOT NULL
);

-- Stripe objects in a state they never leave: subscriptions that ended (canceled,
-- incomplete_expired) and invoices that were paid. An event about one arriving afterwards is
-- stale whatever its `created` says (whole seconds, and Stripe does not deliver in order).
CREATE TABLE stripe_final_states (
  object_id   TEXT PRIMARY KEY,
  account_id  TEXT NOT NULL REFERENCES accounts(id),
  state       TEXT NOT NULL CHECK (state IN ('subscription_ended', 'invoice_paid')),
  event_at    INTEGER NOT NULL
);

-- The invoice of the payment event behind standing_event_at: what decides a same-second tie.
ALTER TABLE accounts ADD COLUMN standing_invoice_id TEXT;
