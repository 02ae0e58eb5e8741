-- What paid subscription invoices brought in (invoice.paid), beside credit_purchases (paid
-- credit checkouts): together, the Stripe revenue of the console's overview. One row per invoice,
-- whichever of Stripe's repeated events arrives first.
CREATE TABLE subscription_payments (
  invoice_id     TEXT PRIMARY KEY,
  account_id     TEXT NOT NULL REFERENCES accounts(id),
  amount_micros  INTEGER NOT NULL CHECK (amount_micros >= 0),
  currency       TEXT NOT NULL,
  paid_at        INTEGER NOT NULL
);
CREATE INDEX subscription_payments_paid_at ON subscription_payments (paid_at);
