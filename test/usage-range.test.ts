// Usage rows are found by time through a binary search on the rowid (no index on ts).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDb } from '../src/db/open.ts';
import { USAGE_BOUNDS, usageIdRange } from '../src/db/usage-range.ts';
import { tempDir } from './helpers.ts';

function dbWith(times: number[]) {
  const db = openDb(join(tempDir(), 'u.db'));
  const insert = db.prepare(`INSERT INTO usage (ts, request_id, route, method, path, status, request_bytes, response_bytes,
    latency_us, price_micros, billable) VALUES (?, 'r', '/', 'GET', '/', 200, 0, 0, 0, 0, 1)`);
  for (const t of times) insert.run(t);
  return db;
}

describe('usageIdRange', () => {
  it('finds the first row at or after a time, with equal times and gaps in the ids', () => {
    const db = dbWith([10, 20, 20, 20, 30, 40, 50]);
    db.prepare('DELETE FROM usage WHERE id = 5').run(); // the row at 30: a gap
    const first = usageIdRange(db);
    // A bound may land in a gap; what counts is the rows it selects.
    const from = (t: number) => db.prepare('SELECT id FROM usage WHERE id >= ? ORDER BY id').pluck().all(first(t));
    expect(from(0)).toEqual([1, 2, 3, 4, 6, 7]);
    expect(from(10)).toEqual([1, 2, 3, 4, 6, 7]);
    expect(from(11)).toEqual([2, 3, 4, 6, 7]);
    expect(from(20)).toEqual([2, 3, 4, 6, 7]);
    expect(from(21)).toEqual([6, 7]);
    expect(from(40)).toEqual([6, 7]);
    expect(from(50)).toEqual([7]);
    expect(from(51)).toEqual([]);
  });

  it('on an empty table every range is empty', () => {
    const first = usageIdRange(dbWith([]));
    expect(first(123)).toBe(first(456));
  });

  it('agrees with a scan on 10 000 rows', () => {
    const times = Array.from({ length: 10_000 }, (_, i) => 1_000 + Math.floor(i / 3));
    const db = dbWith(times);
    const first = usageIdRange(db);
    const scan = db.prepare('SELECT coalesce(min(id), (SELECT max(id) + 1 FROM usage)) FROM usage WHERE ts >= ?').pluck();
    for (const t of [0, 1_000, 1_001, 2_500, 4_332, 4_333, 9_999]) expect(first(t)).toBe(scan.get(t));
  });

  it('reads the table\'s bounds from the ends of its rowid b-tree, never by a scan of the table', () => {
    // min() and max() in one SELECT defeat SQLite's min/max optimization: a scan of every row.
    const plan = dbWith([1, 2, 3]).prepare(`EXPLAIN QUERY PLAN ${USAGE_BOUNDS}`).all() as { detail: string }[];
    expect(plan.map((p) => p.detail).filter((d) => /^SCAN usage\b/.test(d) && !/USING INTEGER PRIMARY KEY/.test(d))).toEqual([]);
  });
});
