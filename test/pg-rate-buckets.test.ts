// Shared rate-limit buckets on a real PostgreSQL: takes from three nodes at once never give more
// than the bucket holds, and a bucket refills for the time since its last take.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migratePg } from '../src/pg/migrate.ts';
import { createPgRateBuckets } from '../src/pg/pg-rate-buckets.ts';
import { createPool, type Pool } from '../src/pg/pool.ts';
import { freshDatabase, seedPgAccount } from './postgres.ts';

describe('rate buckets on PostgreSQL', () => {
  let pools: Pool[];

  beforeAll(async () => {
    const url = await freshDatabase(inject('postgresUrl'));
    pools = await Promise.all([1, 2, 3].map(() => createPool(url, 4)));
    await migratePg(pools[0]);
  });
  afterAll(async () => {
    for (const p of pools) await p.end();
  });

  it('90 takes of 1 from three nodes at once against a bucket of 60 give exactly 60', async () => {
    await seedPgAccount(pools[0], 'acct_burst', 0);
    const stores = pools.map((p) => createPgRateBuckets(p));
    // A bucket that refills one token an hour: nothing comes back during the test.
    const takes = await Promise.all(Array.from({ length: 90 }, (_, i) => stores[i % 3].take('acct_burst', 'minute', 60, 1 / 3_600_000, 1)));
    expect(takes.reduce((s, t) => s + t.taken, 0)).toBe(60);
    expect(takes.filter((t) => t.taken !== 0 && t.taken !== 1)).toEqual([]);
  });

  it('gives whole tokens up to what it holds, and refills with time', async () => {
    await seedPgAccount(pools[0], 'acct_refill', 0);
    const store = createPgRateBuckets(pools[0]);
    expect((await store.take('acct_refill', 'second', 10, 10 / 1_000, 4)).taken).toBe(4);
    const rest = await store.take('acct_refill', 'second', 10, 10 / 1_000, 100);
    expect(rest.taken).toBeGreaterThanOrEqual(6); // 6 left, and what 1 ms or so refilled
    expect(rest.taken).toBeLessThanOrEqual(7);
    await new Promise((r) => setTimeout(r, 300));
    // 300 ms at 10 a second: 3 more (the round trips add a little).
    const later = await store.take('acct_refill', 'second', 10, 10 / 1_000, 100);
    expect(later.taken).toBeGreaterThanOrEqual(3);
    expect(later.taken).toBeLessThanOrEqual(5);
  });
});
