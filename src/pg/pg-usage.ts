// Usage rows on PostgreSQL. A group commit is one statement, so one round trip: the rows go in as
// column arrays (unnest), and data-modifying CTEs add what they count to the quota counters, the
// leases' consumption, the overage outbox and the daily rollups, and write the alerts decided
// with them (against the state other nodes wrote: notify/alerts-once.ts). A row is counted as it is written: the gateway keeps no tallies for this backend,
// and after a crash nothing is left to count again.
import { fireOnce, type StoredState } from '../notify/alerts-once.ts';
import type { Notice, Tally, UsageLog } from '../storage/ports.ts';
import type { RecentUsage, UsageRecord } from '../storage/records.ts';
import { USAGE_COLUMNS, usageValues, type UsageColumn } from '../storage/usage-columns.ts';
import { transaction, type Client, type Pool } from './pool.ts';

/** Each row column's array type (the record lists every column, or the type check fails). */
const TYPE: Record<UsageColumn, string> = {
  id: 'bigint', prev_id: 'bigint', ts: 'bigint', request_id: 'text', account_id: 'text', key_id: 'text', route: 'text', method: 'text',
  path: 'text', status: 'int', request_bytes: 'bigint', response_bytes: 'bigint', latency_us: 'bigint', price_micros: 'bigint',
  billable: 'bool', lease_id: 'bigint', quota_period: 'text', overage_meter: 'text', overage_interval: 'bigint', model: 'text',
  input_tokens: 'bigint', cached_tokens: 'bigint', cache_write_tokens: 'bigint', output_tokens: 'bigint', estimated: 'bool',
};

const rowArrays = USAGE_COLUMNS.map((c, i) => `$${i + 2}::${TYPE[c]}[]`).join(', ');
const n = USAGE_COLUMNS.length + 2;
// Notices, as noticeArrays() passes them.
const notices = `unnest($${n}::text[], $${n + 1}::bool[], $${n + 2}::bool[], $${n + 3}::text[], $${n + 4}::int[],
  $${n + 5}::text[], $${n + 6}::text[], $${n + 7}::text[], $${n + 8}::bigint[]) WITH ORDINALITY
  AS x(account_id, low_armed, depleted_armed, quota_period, quota_percent, event_id, event_type, event_data, event_at, ord)`;

// As SQLite's overageIdentifier(): 'tg_' and 40 characters of the base64url SHA-256 of what names the interval.
const IDENTIFIER = `'tg_' || left(translate(encode(sha256(convert_to(account_id, 'UTF8') || '\\x00'::bytea
  || convert_to(overage_meter, 'UTF8') || '\\x00'::bytea || convert_to(overage_interval::text, 'UTF8')), 'base64'), '+/', '-_'), 40)`;

const WRITE = `WITH r AS (
    INSERT INTO usage (node, ${USAGE_COLUMNS.join(', ')})
    SELECT $1, * FROM unnest(${rowArrays})
    RETURNING account_id, ts, route, model, status, billable, price_micros, lease_id, quota_period, overage_meter, overage_interval,
      input_tokens, cached_tokens, cache_write_tokens, output_tokens
  ), quota AS (
    INSERT INTO quota_usage (account_id, period, used)
    SELECT account_id, quota_period, count(*) FROM r WHERE quota_period IS NOT NULL GROUP BY 1, 2
    ON CONFLICT (account_id, period) DO UPDATE SET used = quota_usage.used + excluded.used
  ), spent AS (
    UPDATE leases l SET consumed_micros = l.consumed_micros + s.micros
    FROM (SELECT lease_id, sum(price_micros) AS micros FROM r WHERE lease_id IS NOT NULL GROUP BY 1) s
    -- A lease a survivor ended while this node was taken for dead gave all it held back: those requests cost nothing.
    WHERE l.id = s.lease_id AND l.closed_at IS NULL
  ), overage AS (
    INSERT INTO meter_outbox (account_id, event_name, interval_start, value, identifier)
    SELECT account_id, overage_meter, overage_interval, count(*), ${IDENTIFIER}
    FROM r WHERE overage_meter IS NOT NULL GROUP BY account_id, overage_meter, overage_interval
    ON CONFLICT (account_id, event_name, interval_start) DO UPDATE SET value = meter_outbox.value + excluded.value
      WHERE meter_outbox.status = 'pending'
  ), days AS (
    INSERT INTO usage_daily (account_id, day, route, model, status, requests, billable, charged_micros,
      input_tokens, cached_tokens, cache_write_tokens, output_tokens)
    SELECT coalesce(account_id, ''), ts - ts % 86400000, route, coalesce(model, ''), status, count(*), count(*) FILTER (WHERE billable),
      sum(price_micros), coalesce(sum(input_tokens), 0), coalesce(sum(cached_tokens), 0), coalesce(sum(cache_write_tokens), 0),
      coalesce(sum(output_tokens), 0)
    FROM r GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (account_id, day, route, model, status) DO UPDATE SET requests = usage_daily.requests + excluded.requests,
      billable = usage_daily.billable + excluded.billable, charged_micros = usage_daily.charged_micros + excluded.charged_micros,
      input_tokens = usage_daily.input_tokens + excluded.input_tokens, cached_tokens = usage_daily.cached_tokens + excluded.cached_tokens,
      cache_write_tokens = usage_daily.cache_write_tokens + excluded.cache_write_tokens,
      output_tokens = usage_daily.output_tokens + excluded.output_tokens
  ), alerts AS (
    -- An account's last notice of the commit leaves its state (one upsert may touch a row once).
    INSERT INTO account_alerts (account_id, low_armed, depleted_armed, quota_period, quota_percent)
    SELECT DISTINCT ON (account_id) account_id, low_armed, depleted_armed, quota_period, quota_percent FROM ${notices}
    ORDER BY account_id, ord DESC
    ON CONFLICT (account_id) DO UPDATE SET low_armed = excluded.low_armed, depleted_armed = excluded.depleted_armed,
      quota_period = excluded.quota_period, quota_percent = excluded.quota_percent
  ), events AS (
    INSERT INTO notifications (event_id, type, account_id, data, created_at)
    SELECT event_id, event_type, account_id, event_data, event_at FROM ${notices} WHERE event_id IS NOT NULL
    ON CONFLICT (event_id) DO NOTHING
  )
  SELECT count(*) AS rows FROM r`;

/** Notices as the statement's arrays: account, low armed, depleted armed, quota period, quota percent; then the event, if any. */
function noticeArrays(ns: readonly Notice[]): unknown[][] {
  return [
    ns.map((x) => x.accountId), ns.map((x) => x.alerts.lowArmed), ns.map((x) => x.alerts.depletedArmed),
    ns.map((x) => x.alerts.quotaPeriod), ns.map((x) => x.alerts.quotaPercent), ns.map((x) => x.event?.id ?? null),
    ns.map((x) => x.event?.type ?? null), ns.map((x) => (x.event ? JSON.stringify(x.event.data) : null)),
    ns.map((x) => x.event?.createdAt ?? null),
  ];
}

export function createPgUsage(pool: Pool, node: string): UsageLog {
  return {
    countsRows: true,
    remote: true,

    async nextId() {
      const { rows } = await pool.query<{ next: number }>('SELECT coalesce(max(id), 0) + 1 AS next FROM usage WHERE node = $1', [node]);
      return rows[0].next;
    },

    async write(rows: readonly UsageRecord[], _tallies: readonly Tally[], _throughId: number, noticed: readonly Notice[]) {
      const row = new Array<unknown>(USAGE_COLUMNS.length);
      const cols = USAGE_COLUMNS.map(() => new Array<unknown>(rows.length));
      rows.forEach((r, i) => {
        usageValues(r, row, 0);
        for (let c = 0; c < row.length; c++) cols[c][i] = row[c];
      });
      const write = (c: Client | Pool, ns: readonly Notice[]) =>
        c.query({ name: 'tollgate-usage-write', text: WRITE, values: [node, ...cols, ...noticeArrays(ns)] });
      if (noticed.length === 0) {
        await write(pool, noticed);
        return;
      }
      // Alerts are rare: their commit reads the accounts' stored state under its lock first, so
      // an alert another node fired already is not fired again (notify/alerts-once.ts).
      await transaction(pool, async (c) => {
        const ids = [...new Set(noticed.map((x) => x.accountId))].sort();
        await c.query('INSERT INTO account_alerts (account_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [ids]);
        const { rows: stored } = await c.query<StoredState & { accountId: string }>(`SELECT account_id AS "accountId", low_armed AS "lowArmed",
          depleted_armed AS "depletedArmed", quota_period AS "quotaPeriod", quota_percent AS "quotaPercent"
          FROM account_alerts WHERE account_id = ANY ($1) ORDER BY account_id FOR UPDATE`, [ids]);
        await write(c, fireOnce(noticed, new Map(stored.map((s) => [s.accountId, s]))));
      });
    },

    // Every node's rows of the account, by its index (usage_account): not this node's chain alone.
    async recent(accountId, _head, limit) {
      const { rows } = await pool.query<RecentUsage>(`SELECT ts, request_id AS "requestId", method, path, status, price_micros AS "priceMicros",
          model, input_tokens AS "inputTokens", output_tokens AS "outputTokens", estimated
        FROM usage WHERE account_id = $1 ORDER BY ts DESC, node DESC, id DESC LIMIT $2`, [accountId, limit]);
      return rows;
    },

    async prune(before, limit) {
      const r = await pool.query('DELETE FROM usage WHERE ctid = ANY (ARRAY(SELECT ctid FROM usage WHERE ts < $1 LIMIT $2))', [before, limit]);
      return r.rowCount ?? 0;
    },
  };
}
