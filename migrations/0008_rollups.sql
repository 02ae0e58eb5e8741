-- Daily totals per account, route, model and status, written with the usage rows' counters
-- (each row says up to which usage row it has counted, as the other counters do: through_id). Usage totals
-- and charts read these, never the raw rows: their cost does not grow with the usage table, and
-- they outlive the raw rows' retention. account_id '' holds the requests of auth-free routes.
CREATE TABLE usage_daily (
  account_id          TEXT NOT NULL,
  -- Midnight UTC, in ms.
  day                 INTEGER NOT NULL,
  route               TEXT NOT NULL,
  -- '' on plain routes.
  model               TEXT NOT NULL,
  status              INTEGER NOT NULL,
  requests            INTEGER NOT NULL,
  billable            INTEGER NOT NULL,
  charged_micros      INTEGER NOT NULL,
  input_tokens        INTEGER NOT NULL,
  cached_tokens       INTEGER NOT NULL,
  cache_write_tokens  INTEGER NOT NULL,
  output_tokens       INTEGER NOT NULL,
  -- The newest row counted here: the account's newest row overall is the head of its chain of
  -- rows (usage.prev_id), read with the key when the account is first seen.
  through_id          INTEGER NOT NULL,
  PRIMARY KEY (account_id, day, route, model, status)
) WITHOUT ROWID;
-- Gateway-wide series (the operator's overview) read by day.
CREATE INDEX usage_daily_day ON usage_daily (day);

-- The rows written before this migration, counted once.
INSERT INTO usage_daily
  SELECT coalesce(account_id, ''), ts - ts % 86400000, route, coalesce(model, ''), status, count(*), sum(billable),
    sum(price_micros), coalesce(sum(input_tokens), 0), coalesce(sum(cached_tokens), 0), coalesce(sum(cache_write_tokens), 0),
    coalesce(sum(output_tokens), 0), max(id)
  FROM usage GROUP BY 1, 2, 3, 4, 5;
