// Usage totals and series from the daily rollups (usage_daily), never from the raw rows: what they
// cost depends on the days asked for, not on the size of the usage table. Counters wait in the
// gateway's memory before they are written (COUNTER_DELAY_MS): a running gateway's pending
// totals (`pending`) are added in; another process reads what was written.
import type { DayTotals } from '../storage/ports.ts';
import type { Db } from './open.ts';

const DAY_MS = 86_400_000;

/** One UTC day's totals over its routes, models and statuses (`day`: midnight UTC, in ms). */
export type DayRow = Omit<DayTotals, 'route' | 'model' | 'status'>;

const SUMS = `sum(requests) AS requests, sum(billable) AS billable, sum(charged_micros) AS chargedMicros,
  sum(input_tokens) AS inputTokens, sum(cached_tokens) AS cachedTokens, sum(cache_write_tokens) AS cacheWriteTokens,
  sum(output_tokens) AS outputTokens`;

/** The days [from, to) touch, as usage_daily keys them: a period starting mid-day counts its first day whole. */
function days(from: number, to: number): [number, number] {
  return [from - (from % DAY_MS), to];
}

/** Requests of an account by status over [from, to), with totals. */
export function totalsByStatus(db: Db, accountId: string, from: number, to: number, pending: Iterable<DayTotals> = []) {
  const [lo, hi] = days(from, to);
  const rows = db.prepare(`SELECT status, ${SUMS} FROM usage_daily WHERE account_id = ? AND day >= ? AND day < ? GROUP BY status`)
    .all(accountId, lo, hi) as (DayRow & { status: number })[];
  const byStatus = new Map<number, { requests: number; billable: number; chargedMicros: number }>();
  for (const r of rows) byStatus.set(r.status, { requests: r.requests, billable: r.billable, chargedMicros: r.chargedMicros });
  for (const d of pending) {
    if (d.day < lo || d.day >= hi) continue;
    const s = byStatus.get(d.status) ?? { requests: 0, billable: 0, chargedMicros: 0 };
    s.requests += d.requests;
    s.billable += d.billable;
    s.chargedMicros += d.chargedMicros;
    byStatus.set(d.status, s);
  }
  return byStatus;
}

/** A day without requests. */
export function emptyDay(day: number): DayRow {
  return { day, requests: 0, billable: 0, chargedMicros: 0, inputTokens: 0, cachedTokens: 0, cacheWriteTokens: 0, outputTokens: 0 };
}

/** One row per day with requests in [from, to), oldest first; accountId undefined: the whole gateway. */
export function seriesByDay(db: Db, accountId: string | undefined, from: number, to: number, pending: Iterable<DayTotals> = []): DayRow[] {
  const [lo, hi] = days(from, to);
  const rows = (accountId === undefined
    ? db.prepare(`SELECT day, ${SUMS} FROM usage_daily WHERE day >= ? AND day < ? GROUP BY day ORDER BY day`).all(lo, hi)
    : db.prepare(`SELECT day, ${SUMS} FROM usage_daily WHERE account_id = ? AND day >= ? AND day < ? GROUP BY day ORDER BY day`).all(accountId, lo, hi)) as DayRow[];
  const byDay = new Map(rows.map((r) => [r.day, r]));
  for (const d of pending) {
    if (d.day < lo || d.day >= hi) continue;
    let r = byDay.get(d.day);
    if (!r) byDay.set(d.day, (r = emptyDay(d.day)));
    r.requests += d.requests;
    r.billable += d.billable;
    r.chargedMicros += d.chargedMicros;
    r.inputTokens += d.inputTokens;
    r.cachedTokens += d.cachedTokens;
    r.cacheWriteTokens += d.cacheWriteTokens;
    r.outputTokens += d.outputTokens;
  }
  return [...byDay.values()].sort((a, b) => a.day - b.day);
}
