// Usage rows and their counters on the SQLite file. A group commit appends rows (append-only
// pages, cheap) and writes the tallies the gateway hands it, at most a bounded number per commit;
// each counter row keeps the id of the newest row it has counted (through_id), and `counters`
// the id up to which every row is counted. After a crash, recover() counts the rows past that
// mark into the counter rows that missed them: the counters lose nothing the rows hold.
import { createHash } from 'node:crypto';
import type { Notice, Tally, UsageLog } from '../storage/ports.ts';
import type { RecentUsage, UsageRecord } from '../storage/records.ts';
import type { Db } from './open.ts';
import { eventInsert } from './sqlite-outbox.ts';
import { writing } from './sqlite-busy.ts';
import { usageIdRange } from './usage-range.ts';
import { USAGE_COLUMNS as COLUMNS, usageCells } from '../storage/usage-columns.ts';

/**
 * Rows per INSERT statement, largest first: one statement for many rows costs less per row than
 * one each (4.4 against 7.5 µs here), and a commit of 27 rows goes as 16 + 8 + 2 + 1.
 */
const SIZES = [32, 16, 8, 4, 2, 1];

function insert(db: Db, rows: number) {
  const one = `(${COLUMNS.map(() => '?').join(', ')})`;
  return db.prepare(`INSERT INTO usage (${COLUMNS.join(', ')}) VALUES ${Array(rows).fill(one).join(', ')}`);
}

/** Stripe caps identifiers at 100 characters: a hash of what names the interval fits. */
export function overageIdentifier(accountId: string, meter: string, intervalStart: number): string {
  return `tg_${createHash('sha256').update(`${accountId}\u0000${meter}\u0000${intervalStart}`).digest('base64url').slice(0, 40)}`;
}

export type SqliteUsage = UsageLog & {
  recount(): number;
  /** write() with the rows as usageCells() lays them out. */
  writeCells(cells: readonly unknown[], tallies: readonly Tally[], throughId: number, notices: readonly Notice[]): void;
};

export function createSqliteUsage(db: Db): SqliteUsage {
  const firstAtOrAfter = usageIdRange(db);
  const inserts = SIZES.map((n) => ({ n, statement: insert(db, n), args: new Array<unknown>(n * COLUMNS.length) }));
  const q = {
    quota: db.prepare(`INSERT INTO quota_usage (account_id, period, used, through_id) VALUES (?, ?, ?, ?)
      ON CONFLICT (account_id, period) DO UPDATE SET used = used + excluded.used, through_id = excluded.through_id`),
    spent: db.prepare('UPDATE leases SET consumed_micros = consumed_micros + ?, through_id = ? WHERE id = ?'),
    overage: db.prepare(`INSERT INTO meter_outbox (account_id, event_name, interval_start, value, identifier, through_id)
      VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, event_name, interval_start)
      DO UPDATE SET value = value + excluded.value, through_id = excluded.through_id WHERE status = 'pending'`),
    day: db.prepare(`INSERT INTO usage_daily (account_id, day, route, model, status, requests, billable, charged_micros,
      input_tokens, cached_tokens, cache_write_tokens, output_tokens, through_id)
      VALUES (@accountId, @day, @route, @model, @status, @requests, @billable, @chargedMicros,
      @inputTokens, @cachedTokens, @cacheWriteTokens, @outputTokens, @throughId)
      ON CONFLICT (account_id, day, route, model, status) DO UPDATE SET requests = requests + excluded.requests,
        billable = billable + excluded.billable, charged_micros = charged_micros + excluded.charged_micros,
        input_tokens = input_tokens + excluded.input_tokens, cached_tokens = cached_tokens + excluded.cached_tokens,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens, output_tokens = output_tokens + excluded.output_tokens,
        through_id = excluded.through_id`),
    oldest: db.prepare('SELECT id, ts FROM usage ORDER BY id LIMIT 1'),
    prune: db.prepare('DELETE FROM usage WHERE id < ?'),
    through: db.prepare(`UPDATE counters SET value = ? WHERE name = 'through_id'`),
    throughNow: db.prepare(`SELECT value FROM counters WHERE name = 'through_id'`).pluck(),
    last: db.prepare('SELECT coalesce(max(id), 0) FROM usage').pluck(),
    row: db.prepare(`SELECT id, prev_id AS prevId, ts, request_id AS requestId, method, path, status, price_micros AS priceMicros,
      model, input_tokens AS inputTokens, output_tokens AS outputTokens, estimated FROM usage WHERE id = ?`),
    // The operator's own threshold (low_balance_micros) is Admin's: never written here.
    alerts: db.prepare(`INSERT INTO account_alerts (account_id, low_armed, depleted_armed, quota_period, quota_percent)
      VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET low_armed = excluded.low_armed,
        depleted_armed = excluded.depleted_armed, quota_period = excluded.quota_period, quota_percent = excluded.quota_percent`),
  };
  const addEvent = eventInsert(db);

  const width = COLUMNS.length;
  // `cells`: the rows' values one after the other, USAGE_COLUMNS.length a row (as a writer thread gets them).
  const writeTx = db.transaction((cells: readonly unknown[], tallies: readonly Tally[], throughId: number, notices: readonly Notice[]) => {
    const rows = cells.length / width;
    let i = 0;
    for (const { n, statement, args } of inserts) {
      for (; i + n <= rows; i += n) {
        for (let k = 0, from = i * width; k < n * width; k++) args[k] = cells[from + k];
        statement.run(args);
      }
    }
    for (const t of tallies) {
      for (const { period, units } of t.quota ?? []) q.quota.run(t.accountId, period, units, t.throughId);
      for (const { leaseId, micros } of t.spent ?? []) q.spent.run(micros, t.throughId, leaseId);
      for (const o of t.overage ?? []) {
        q.overage.run(t.accountId, o.meter, o.intervalStart, o.units, overageIdentifier(t.accountId, o.meter, o.intervalStart), t.throughId);
      }
      for (const d of t.days) q.day.run({ accountId: t.accountId, throughId: t.throughId, ...d });
    }
    // In the order decided: an account's last notice leaves its state.
    for (const n of notices) {
      const a = n.alerts;
      q.alerts.run(n.accountId, a.lowArmed ? 1 : 0, a.depletedArmed ? 1 : 0, a.quotaPeriod, a.quotaPercent);
      if (n.event) addEvent(n.event);
    }
    q.through.run(throughId);
  });

  // After a crash: every row past the mark, counted into each counter row that has not counted it.
  const recountTx = db.transaction((): number => {
    const from = q.throughNow.get() as number;
    const last = q.last.get() as number;
    if (last <= from) return 0;
    db.prepare(`CREATE TEMP TABLE tail AS SELECT id, coalesce(account_id, '') AS account_id, quota_period, lease_id,
      price_micros, overage_meter, overage_interval, ts - ts % 86400000 AS day, route, coalesce(model, '') AS model, status,
      billable, coalesce(input_tokens, 0) AS input_tokens, coalesce(cached_tokens, 0) AS cached_tokens,
      coalesce(cache_write_tokens, 0) AS cache_write_tokens, coalesce(output_tokens, 0) AS output_tokens
      FROM usage WHERE id > ?`).run(from);
    db.exec(`
      INSERT INTO quota_usage (account_id, period, used, through_id)
        SELECT t.account_id, t.quota_period, count(*), max(t.id) FROM temp.tail t
        LEFT JOIN quota_usage q ON q.account_id = t.account_id AND q.period = t.quota_period
        WHERE t.quota_period IS NOT NULL AND t.id > coalesce(q.through_id, 0)
        GROUP BY t.account_id, t.quota_period
        ON CONFLICT (account_id, period) DO UPDATE SET used = used + excluded.used, through_id = excluded.through_id;
      UPDATE leases SET consumed_micros = consumed_micros + c.spent, through_id = c.last
        FROM (SELECT t.lease_id, sum(t.price_micros) AS spent, max(t.id) AS last FROM temp.tail t
          JOIN leases l ON l.id = t.lease_id WHERE t.id > l.through_id GROUP BY t.lease_id) AS c
        WHERE leases.id = c.lease_id;
      INSERT INTO usage_daily
        SELECT t.account_id, t.day, t.route, t.model, t.status, count(*), sum(t.billable), sum(t.price_micros),
          sum(t.input_tokens), sum(t.cached_tokens), sum(t.cache_write_tokens), sum(t.output_tokens), max(t.id)
        FROM temp.tail t LEFT JOIN usage_daily d ON d.account_id = t.account_id AND d.day = t.day AND d.route = t.route
          AND d.model = t.model AND d.status = t.status
        WHERE t.id > coalesce(d.through_id, 0)
        GROUP BY t.account_id, t.day, t.route, t.model, t.status
        ON CONFLICT (account_id, day, route, model, status) DO UPDATE SET requests = requests + excluded.requests,
          billable = billable + excluded.billable, charged_micros = charged_micros + excluded.charged_micros,
          input_tokens = input_tokens + excluded.input_tokens, cached_tokens = cached_tokens + excluded.cached_tokens,
          cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens, output_tokens = output_tokens + excluded.output_tokens,
          through_id = excluded.through_id;`);
    // Overage rows are few (accounts past their quota on a Stripe plan) and need an identifier.
    const overage = db.prepare(`SELECT t.account_id AS accountId, t.overage_meter AS meter, t.overage_interval AS intervalStart,
      count(*) AS units, max(t.id) AS last FROM temp.tail t
      LEFT JOIN meter_outbox o ON o.account_id = t.account_id AND o.event_name = t.overage_meter AND o.interval_start = t.overage_interval
      WHERE t.overage_meter IS NOT NULL AND t.id > coalesce(o.through_id, 0)
      GROUP BY t.account_id, t.overage_meter, t.overage_interval HAVING t.account_id <> ''`).all() as { accountId: string; meter: string; intervalStart: number; units: number; last: number }[];
    for (const o of overage) {
      q.overage.run(o.accountId, o.meter, o.intervalStart, o.units, overageIdentifier(o.accountId, o.meter, o.intervalStart), o.last);
    }
    db.exec('DROP TABLE temp.tail');
    q.through.run(last);
    return last - from;
  });

  const writeCells: SqliteUsage['writeCells'] = (cells, tallies, throughId, notices) => writing(() => writeTx.immediate(cells, tallies, throughId, notices));

  return {
    nextId: () => (q.last.get() as number) + 1,
    write: (rows, tallies, throughId, notices) => writeCells(usageCells(rows), tallies, throughId, notices),
    writeCells,
    // One writer: the account's rows are a chain through prev_id, found without an index of their own.
    recent(_accountId, head, limit) {
      const out: RecentUsage[] = [];
      for (let id = head; id > 0 && out.length < limit;) {
        const r = q.row.get(id) as (Omit<RecentUsage, 'estimated'> & { id: number; prevId: number | null; estimated: number }) | undefined;
        if (!r) break; // deleted by retention: the chain ends here
        const { prevId, id: _id, ...rest } = r;
        out.push({ ...rest, estimated: r.estimated === 1 });
        id = prevId ?? 0;
      }
      return out;
    },
    recount: () => writing(() => recountTx.immediate()),
    prune(before, limit) {
      const first = q.oldest.get() as { id: number; ts: number } | undefined;
      if (!first || first.ts >= before) return 0;
      // The oldest `limit` rows, but none past `before` and none not yet counted (rows are in time order).
      const end = Math.min(firstAtOrAfter(before), first.id + limit, (q.throughNow.get() as number) + 1);
      return writing(() => q.prune.run(end).changes);
    },
  };
}
