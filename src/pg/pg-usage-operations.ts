// Usage and requests on PostgreSQL: an account's quota period and per-day series from the daily
// rollups (usage_daily, written in the statement that writes the rows, so nothing waits in a
// node's memory), its latest requests across all nodes, and one request by its id. Answered as
// LocalOperations does (admin/operations.ts over db/admin.ts, db/usage-totals.ts and
// db/request-lookup.ts): the same documents, defaults, refusals and messages.
import { day, time, type Operations, type RecentRequestsDoc, type UsageDaysDoc } from '../admin/operations.ts';
import { dayDoc, iso, recentDoc, requestDoc, type RequestDoc, type UsageDoc } from '../admin/shapes.ts';
import type { Config } from '../config.ts';
import { InvalidInputError, MAX_DAYS, monthRange, NotFoundError } from '../db/admin.ts';
import { AROUND_MS, SCAN_ROWS, type RequestRecord } from '../db/request-lookup.ts';
import type { DayRow } from '../db/usage-totals.ts';
import { formatMicros } from '../money.ts';
import { MonthlyPeriods, quotaPeriod, subscriptionPeriodKey } from '../state/periods.ts';
import type { AccountRecord, RecentUsage } from '../storage/records.ts';
import type { Client, Pool } from './pool.ts';

export type UsageOperations = Pick<Operations, 'usage' | 'usageByDay' | 'recentRequests' | 'findRequest'>;

const DAY_MS = 86_400_000;
/** A per-day series without dates: the last 30 days, today included (as LocalOperations). */
const DEFAULT_DAYS = 30;
/** A subscription's period runs until the next one arrives: no end, as a bigint bound. */
const NO_END = Number.MAX_SAFE_INTEGER;

const ACCOUNT = `SELECT id, plan, status, status_reason AS "statusReason", past_due_since AS "pastDueSince",
  period_start AS "periodStart", period_end AS "periodEnd" FROM accounts WHERE id = $1`;

/**
 * The period's quota counter and its requests by status, in one statement so both come from one
 * snapshot (a group commit writes the rows' counts to both at once). One row with a null status
 * when the period has no requests. $1 account, $2 period, $3 and $4 the days [from, to).
 */
const TOTALS = `SELECT q.used AS "quotaUsed", s.status, s.requests, s.billable, s."chargedMicros"
  FROM (SELECT coalesce((SELECT used FROM quota_usage WHERE account_id = $1 AND period = $2), 0) AS used) q
  LEFT JOIN (SELECT status, sum(requests)::bigint AS requests, sum(billable)::bigint AS billable, sum(charged_micros)::bigint AS "chargedMicros"
    FROM usage_daily WHERE account_id = $1 AND day >= $3 AND day < $4 GROUP BY status) s ON true`;

/** Every UTC day of [$2, $3), with zeros for days without requests. */
const DAYS = `SELECT d.day, coalesce(sum(u.requests), 0)::bigint AS requests, coalesce(sum(u.billable), 0)::bigint AS billable,
    coalesce(sum(u.charged_micros), 0)::bigint AS "chargedMicros", coalesce(sum(u.input_tokens), 0)::bigint AS "inputTokens",
    coalesce(sum(u.cached_tokens), 0)::bigint AS "cachedTokens", coalesce(sum(u.cache_write_tokens), 0)::bigint AS "cacheWriteTokens",
    coalesce(sum(u.output_tokens), 0)::bigint AS "outputTokens"
  FROM generate_series($2::bigint, $3::bigint - 1, ${DAY_MS}) AS d(day)
  LEFT JOIN usage_daily u ON u.account_id = $1 AND u.day = d.day GROUP BY d.day ORDER BY d.day`;

// Newest first through usage_account (account_id, ts); rows of one millisecond by their node's
// numbering, newest first (across nodes their order is arbitrary). SQLite orders by the order
// rows were written, here by the time the row carries.
const RECENT = `SELECT ts, request_id AS "requestId", method, path, status, price_micros AS "priceMicros", model,
  input_tokens AS "inputTokens", output_tokens AS "outputTokens", estimated
  FROM usage WHERE account_id = $1 ORDER BY ts DESC, id DESC LIMIT $2`;

// `id` is the row's number on its node: the table's key is (node, id), RequestRecord has one
// number, and the request id, not the row, is what names a request to the operator. pg gives
// booleans as booleans (SQLite's 0 and 1 need mapping).
const REQUEST = `SELECT id, ts, request_id AS "requestId", account_id AS "accountId", key_id AS "keyId", route, method, path, status,
  request_bytes AS "requestBytes", response_bytes AS "responseBytes", latency_us AS "latencyUs", price_micros AS "priceMicros", billable,
  quota_period AS "quotaPeriod", model, input_tokens AS "inputTokens", cached_tokens AS "cachedTokens",
  cache_write_tokens AS "cacheWriteTokens", output_tokens AS "outputTokens", estimated
  FROM usage WHERE ts >= $1 AND ts < $2 AND request_id = $3 LIMIT 1`;
const EDGES = 'SELECT min(ts) AS "from", max(ts) AS "to" FROM usage WHERE ts >= $1 AND ts < $2';

/**
 * Where "the latest rows" start, so that a lookup reads about $1 (SCAN_ROWS) of them however many
 * nodes write: no node has more than its share, $1 / (nodes alive now), after the start. The start
 * is the newest of the nodes' cutoffs, a node's cutoff being the time of its row just older than
 * its latest share (each node numbers its rows in order). A skip scan of the primary key finds the
 * nodes with rows, an index probe each: there are many (a new id each run), but one that stopped
 * long ago cuts off nothing recent; one stopped within the window adds up to its share. Null: no
 * node has more than its share, and every row is read.
 */
const LATEST = `WITH RECURSIVE ids AS (
    (SELECT node FROM usage ORDER BY node LIMIT 1)
    UNION ALL
    SELECT (SELECT u.node FROM usage u WHERE u.node > ids.node ORDER BY u.node LIMIT 1) FROM ids WHERE ids.node IS NOT NULL
  ), share AS (SELECT greatest(1, $1::bigint / greatest(1, (SELECT count(*) FROM nodes))) AS n)
  SELECT max((SELECT c.ts FROM usage c WHERE c.node = ids.node AND c.id <= last.id - share.n ORDER BY c.id DESC LIMIT 1)) AS cutoff
  FROM ids, share, LATERAL (SELECT max(u.id) AS id FROM usage u WHERE u.node = ids.node) last WHERE ids.node IS NOT NULL`;

export interface PgUsageDeps {
  config: () => Config;
  now: () => number;
  /** How many of the latest rows a request lookup reads (default SCAN_ROWS; tests pass fewer). */
  scanRows?: number;
}

/** Reads only: `db` may be the pool or a connection in a transaction. */
export function pgUsageOperations(db: Pool | Client, deps: PgUsageDeps): UsageOperations {
  const { now, scanRows = SCAN_ROWS } = deps;
  const periods = new MonthlyPeriods();

  /** The account as the request path sees it (what its quota period is computed from), and its period's end: Admin.accountRecord. */
  async function accountRecord(id: string): Promise<AccountRecord & { periodEnd: number | null }> {
    const { rows: [a] } = await db.query<AccountRecord & { periodEnd: number | null }>(ACCOUNT, [id]);
    if (!a) throw new NotFoundError(`account ${id}`);
    return a;
  }

  return {
    async usage(accountId, { month }): Promise<UsageDoc> {
      const account = await accountRecord(accountId);
      const period = month ?? quotaPeriod(account, now(), periods);
      const subscription = account.periodStart !== null && period === subscriptionPeriodKey(account.periodStart);
      // A subscription's period takes every request from its start until the next period arrives.
      const range = subscription ? { from: account.periodStart!, to: Infinity } : monthRange(period);
      // As usage_daily keys days: a period starting mid-day counts its first day whole (usage-totals.ts).
      const { rows } = await db.query<{ quotaUsed: number; status: number | null; requests: number; billable: number; chargedMicros: number }>(
        TOTALS, [accountId, period, range.from - (range.from % DAY_MS), Math.min(range.to, NO_END)]);
      const byStatus: Record<string, number> = {};
      let requests = 0, billable = 0, chargedMicros = 0;
      for (const r of rows) {
        if (r.status === null) continue;
        byStatus[r.status] = r.requests;
        requests += r.requests;
        billable += r.billable;
        chargedMicros += r.chargedMicros;
      }
      const { plans, defaultPlan } = deps.config();
      // As the gateway does: a plan missing from the config falls back to the default plan.
      const monthlyQuota = (plans[account.plan] ?? plans[defaultPlan])?.monthlyQuota ?? null;
      return {
        id: account.id, period, periodStart: iso(range.from)!, periodEnd: iso(subscription ? account.periodEnd : range.to), plan: account.plan, monthlyQuota,
        quotaUsed: rows[0].quotaUsed, requests, billable, chargedMicros, charged: formatMicros(chargedMicros), byStatus,
      };
    },

    async usageByDay(accountId, query): Promise<UsageDaysDoc> {
      const to = query.to === undefined ? now() - (now() % DAY_MS) : day(query.to, 'to');
      const from = query.from === undefined ? to - (DEFAULT_DAYS - 1) * DAY_MS : day(query.from, 'from');
      if (to < from) throw new InvalidInputError('to: before from');
      await accountRecord(accountId);
      const start = Math.floor(from / DAY_MS);
      const end = Math.ceil((to + DAY_MS) / DAY_MS);
      if (end - start > MAX_DAYS) throw new InvalidInputError(`at most ${MAX_DAYS} days at once`);
      const { rows } = await db.query<DayRow>(DAYS, [accountId, start * DAY_MS, end * DAY_MS]);
      return { id: accountId, from: iso(from)!.slice(0, 10), to: iso(to)!.slice(0, 10), days: rows.map(dayDoc) };
    },

    async recentRequests(accountId, limit): Promise<RecentRequestsDoc> {
      await accountRecord(accountId);
      const { rows } = await db.query<RecentUsage>(RECENT, [accountId, limit]);
      return { id: accountId, requests: rows.map(recentDoc) };
    },

    /**
     * A bounded search, as on SQLite and for its reason (request-lookup.ts: no index on request_id):
     * the latest rows (LATEST) or those within AROUND_MS of `around`, as a time range the BRIN index
     * usage_ts reads. Unlike SQLite's, the range around a time is not narrowed when it holds more
     * than SCAN_ROWS rows: finding where each node's rows cross a time would take a binary search
     * of each node's key, and half an hour is what `around` promises. A miss reads the range again
     * for its edges, as SQLite's does.
     */
    async findRequest(requestId, around): Promise<RequestDoc> {
      let lo: number, hi: number;
      if (around === undefined) {
        const { rows: [{ cutoff }] } = await db.query<{ cutoff: number | null }>(LATEST, [scanRows]);
        [lo, hi] = [cutoff === null ? -NO_END : cutoff + 1, NO_END];
      } else {
        const at = time(around, 'around');
        [lo, hi] = [at - AROUND_MS, at + AROUND_MS];
      }
      const { rows: [found] } = await db.query<RequestRecord>(REQUEST, [lo, hi, requestId]);
      if (found) return requestDoc(found);
      const { rows: [edges] } = await db.query<{ from: number | null; to: number | null }>(EDGES, [lo, hi]);
      const where = edges.from === null ? 'no requests are stored there' : `it looked from ${iso(edges.from)} to ${iso(edges.to)}`;
      throw new NotFoundError(`request ${requestId}`, `${where}; give the time of the request (around) to look elsewhere`);
    },
  };
}
