// Fills a database with usage rows and their daily rollups, as a busy quarter would leave them:
// rows in time order from `start` to `end`, accounts round-robin, every 50th a 502 (not
// billable), every 10th an AI row. Used by the measuring scripts (usage-query.ts, ui-pages.ts).
import type { Db } from '../src/db/open.ts';

export function seedUsage(db: Db, { rows, accounts, start, end }: { rows: number; accounts: number; start: number; end: number }): void {
  db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${accounts - 1})
    INSERT INTO accounts (id, email, plan, created_at) SELECT 'acct_' || i, 'a' || i || '@example.com', 'default', 0 FROM n`);
  db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows})
    INSERT INTO usage (id, ts, request_id, account_id, route, method, path, status, request_bytes, response_bytes, latency_us,
      price_micros, billable, model, input_tokens, output_tokens)
    SELECT i, ${start} + i * ${Math.floor((end - start) / rows)}, 'req-' || i, 'acct_' || (i % ${accounts}),
      CASE WHEN i % 10 = 0 THEN '/v1/chat/completions' ELSE '/api/' END, 'GET', '/api/x',
      CASE WHEN i % 50 = 0 THEN 502 ELSE 200 END, 0, 11, 100, 100, CASE WHEN i % 50 = 0 THEN 0 ELSE 1 END,
      CASE WHEN i % 10 = 0 THEN 'gpt-5' END, CASE WHEN i % 10 = 0 THEN 20 END, CASE WHEN i % 10 = 0 THEN 10 END FROM n`);
  db.exec(`INSERT INTO usage_daily
    SELECT coalesce(account_id, ''), ts - ts % 86400000, route, coalesce(model, ''), status, count(*), sum(billable),
      sum(price_micros), coalesce(sum(input_tokens), 0), 0, 0, coalesce(sum(output_tokens), 0), max(id)
    FROM usage GROUP BY 1, 2, 3, 4, 5;
    UPDATE counters SET value = (SELECT max(id) FROM usage)`);
}
