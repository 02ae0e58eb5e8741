// One request by its id, as a customer quotes it in a support ticket. The usage table has no
// index but its rowid (see usage-range.ts), so the lookup reads a bounded range of rows.
import type { Db } from './open.ts';
import { usageIdRange } from './usage-range.ts';

/** One usage row as the operator sees it. */
export interface RequestRecord {
  id: number;
  ts: number;
  requestId: string;
  accountId: string | null;
  keyId: string | null;
  route: string;
  method: string;
  path: string;
  status: number;
  requestBytes: number;
  responseBytes: number;
  latencyUs: number;
  priceMicros: number;
  billable: boolean;
  quotaPeriod: string | null;
  model: string | null;
  inputTokens: number | null;
  cachedTokens: number | null;
  cacheWriteTokens: number | null;
  outputTokens: number | null;
  estimated: boolean;
}

/** A request lookup: the row, or where it was looked for. */
export interface RequestSearch {
  found: RequestRecord | undefined;
  /** The times of the oldest and newest rows searched (null: there were none). */
  from: number | null;
  to: number | null;
}

/** Rows a request lookup reads at most: 0.15 to 0.3 s of scanning on the 2-core development machine. */
export const SCAN_ROWS = 1_000_000;
/** With a hint of its time, a request is looked for this long either side of it. */
export const AROUND_MS = 15 * 60_000;

const REQUEST_COLS = `id, ts, request_id AS requestId, account_id AS accountId, key_id AS keyId, route, method, path, status,
  request_bytes AS requestBytes, response_bytes AS responseBytes, latency_us AS latencyUs, price_micros AS priceMicros, billable,
  quota_period AS quotaPeriod, model, input_tokens AS inputTokens, cached_tokens AS cachedTokens,
  cache_write_tokens AS cacheWriteTokens, output_tokens AS outputTokens, estimated`;

/**
 * The row of a request id, looked for among the latest SCAN_ROWS rows, or within AROUND_MS of
 * `around`. A bounded scan rather than an index: an index on request_id (random UUIDs) cost
 * 35 µs per inserted row at a million rows, more than the whole request path.
 */
export function findRequest(db: Db, requestId: string, around?: number, scanRows = SCAN_ROWS): RequestSearch {
  const last = db.prepare('SELECT coalesce(max(id), 0) FROM usage').pluck().get() as number;
  let lo: number;
  let hi: number;
  if (around === undefined) {
    hi = last + 1;
    lo = Math.max(1, hi - scanRows);
  } else {
    const firstId = usageIdRange(db);
    lo = firstId(around - AROUND_MS);
    hi = firstId(around + AROUND_MS);
    if (hi - lo > scanRows) {
      lo = Math.max(lo, firstId(around) - Math.floor(scanRows / 2));
      hi = lo + scanRows;
    }
  }
  const row = db.prepare(`SELECT ${REQUEST_COLS} FROM usage WHERE id >= ? AND id < ? AND request_id = ? LIMIT 1`).get(lo, hi, requestId) as
    (Omit<RequestRecord, 'billable' | 'estimated'> & { billable: number; estimated: number }) | undefined;
  if (row) return { found: { ...row, billable: row.billable === 1, estimated: row.estimated === 1 }, from: row.ts, to: row.ts };
  const edge = (order: 'ASC' | 'DESC') =>
    (db.prepare(`SELECT ts FROM usage WHERE id >= ? AND id < ? ORDER BY id ${order} LIMIT 1`).pluck().get(lo, hi) as number | undefined) ?? null;
  return { found: undefined, from: edge('ASC'), to: edge('DESC') };
}
