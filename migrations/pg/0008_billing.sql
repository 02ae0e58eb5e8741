-- Stripe billing, as SQLite keeps it (migrations/0001, 0003, 0004, 0011): the webhook events
-- applied, what checkouts were created and bought, disputes, objects in a final state, and
-- subscription revenue. A Stripe event may reach any node: its id is the primary key of
-- webhook_events, written in the transaction of its effect, so it is applied once across all.
-- The events an effect notifies of go into `notifications` (migration 0002), kept for delivery.

CREATE TABLE webhook_events (
  id           text PRIMARY KEY,
  source       text NOT NULL,
  type         text NOT NULL,
  -- 'applying' only inside the transaction that applies it: no other transaction sees it.
  status       text NOT NULL CHECK (status IN ('applying', 'applied', 'ignored', 'failed')),
  note         text,
  attempts     integer NOT NULL DEFAULT 1,
  payload      text NOT NULL,
  received_at  bigint NOT NULL,
  applied_at   bigint
);

CREATE TABLE checkout_sessions (
  session_id     text PRIMARY KEY,
  account_id     text NOT NULL REFERENCES accounts(id),
  amount_micros  bigint NOT NULL CHECK (amount_micros > 0),
  created_at     bigint NOT NULL
);

CREATE TABLE credit_purchases (
  session_id       text PRIMARY KEY,
  account_id       text NOT NULL REFERENCES accounts(id),
  payment_intent   text UNIQUE,
  amount_micros    bigint NOT NULL CHECK (amount_micros > 0),
  refunded_micros  bigint NOT NULL DEFAULT 0,
  created_at       bigint NOT NULL
);

CREATE TABLE disputes (
  id               text PRIMARY KEY,
  account_id       text NOT NULL REFERENCES accounts(id),
  disputed_micros  bigint NOT NULL,
  frozen_micros    bigint NOT NULL,
  status           text NOT NULL,
  created_at       bigint NOT NULL,
  closed_at        bigint
);
CREATE INDEX disputes_open ON disputes (account_id) WHERE closed_at IS NULL;

CREATE TABLE stripe_final_states (
  object_id   text PRIMARY KEY,
  account_id  text NOT NULL REFERENCES accounts(id),
  state       text NOT NULL CHECK (state IN ('subscription_ended', 'invoice_paid')),
  event_at    bigint NOT NULL
);

CREATE TABLE subscription_payments (
  invoice_id     text PRIMARY KEY,
  account_id     text NOT NULL REFERENCES accounts(id),
  amount_micros  bigint NOT NULL CHECK (amount_micros >= 0),
  currency       text NOT NULL,
  paid_at        bigint NOT NULL
);
CREATE INDEX subscription_payments_paid_at ON subscription_payments (paid_at);
