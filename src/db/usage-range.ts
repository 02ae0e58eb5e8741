// Usage rows have no index but their rowid: they are appended in time order, so the first row
// at or after a time is found by binary search on the rowid (about 25 primary-key lookups for
// 30 million rows) instead of an index every insert would have to maintain.
import type { Db } from './open.ts';

/** Two subqueries: min() and max() in one SELECT would defeat SQLite's min/max optimization and scan the table. */
export const USAGE_BOUNDS = 'SELECT (SELECT min(id) FROM usage) AS lo, (SELECT max(id) FROM usage) AS hi';

export function usageIdRange(db: Db): (ts: number) => number {
  const bounds = db.prepare(USAGE_BOUNDS);
  const tsAt = db.prepare('SELECT id, ts FROM usage WHERE id >= ? ORDER BY id LIMIT 1');
  /** The smallest id whose row is at or after `ts`; past the last row when none is. */
  return (ts) => {
    const { lo, hi } = bounds.get() as { lo: number | null; hi: number | null };
    if (lo === null || hi === null) return 1;
    let low = lo;
    let high = hi + 1;
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      const row = tsAt.get(mid) as { id: number; ts: number } | undefined;
      if (!row || row.ts >= ts) high = mid;
      else low = row.id + 1;
    }
    return low;
  };
}
