-- The day index of the rollups names rows again and no longer carries their sums (0010 made it
-- covering). Covering, it let the console's overview read the index alone, but every counter
-- write moved the account's entry in it: with 100 000 accounts on the file a rollup write took
-- 58-72 µs, 24 µs with this index. The request path pays for those writes; the overview is an
-- operator's page (at 90 000 rollup rows, 22 → 58 ms at the median, scripts/ui-pages.ts).
DROP INDEX usage_daily_day;
CREATE INDEX usage_daily_day ON usage_daily (day, account_id, status);
