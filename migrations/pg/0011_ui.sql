-- The browser pages (src/ui/) on PostgreSQL, as SQLite's migrations/0010: a secret every node
-- shares for signing the customer portal's session cookies and sealing signup keys, and the
-- signup claims. (usage_daily_day of 0002 is the index the console's overview reads, as SQLite's
-- 0012; subscription_payments came with 0008.)
CREATE TABLE ui_settings (
  name   text PRIMARY KEY,
  value  text NOT NULL
);
-- 244 random bits from gen_random_uuid() (core since PostgreSQL 13, from the strong random source).
INSERT INTO ui_settings (name, value) VALUES ('secret', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

-- SIGNUP=checkout: an account waiting for its Checkout session to be paid. The key is issued in
-- checkout.session.completed's transaction and kept sealed here until the success page shows it
-- once; then `sealed` is cleared (shown_at says it was).
CREATE TABLE signup_claims (
  session_id  text PRIMARY KEY,
  account_id  text NOT NULL REFERENCES accounts(id),
  key_id      text,
  sealed      text,
  created_at  bigint NOT NULL,
  shown_at    bigint
);
