// Usage rows on a real PostgreSQL: one statement per group commit writes the rows and counts
// them into the quota counters, the leases' consumption, the overage outbox and the rollups.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { overageIdentifier } from '../src/db/sqlite-usage.ts';
import { migratePg } from '../src/pg/migrate.ts';
import { createPgLeases } from '../src/pg/pg-leases.ts';
import { createPgUsage } from '../src/pg/pg-usage.ts';
import { createPool, type Pool } from '../src/pg/pool.ts';
import type { UsageRecord } from '../src/storage/records.ts';
import { freshDatabase, seedPgAccount } from './postgres.ts';

const DAY = 86_400_000;
const T0 = Date.parse('2026-12-01T10:00:00Z');

function usageRow(o: Partial<UsageRecord> & { id: number }): UsageRecord {
  return {
    prevId: 0, ts: T0, requestId: `req_${o.id}`, accountId: 'acct_1', keyId: 'key_1', route: '/api/', method: 'GET', path: '/api/x',
    status: 200, requestBytes: 0, responseBytes: 11, latencyUs: 900, priceMicros: 0, billable: true, ...o,
  };
}

describe('usage rows on PostgreSQL', () => {
  let pool: Pool;

  beforeAll(async () => {
    pool = await createPool(await freshDatabase(inject('postgresUrl')), 4);
    await migratePg(pool);
    for (const id of ['acct_1', 'acct_2']) {
      await seedPgAccount(pool, id, 1_000_000);
    }
  });
  afterAll(() => pool.end());

  it('a commit counts its rows into every counter, in one statement, as SQLite counts them', async () => {
    const usage = createPgUsage(pool, 'node-a');
    expect(usage.countsRows).toBe(true);
    const { leaseId } = await createPgLeases(pool, 'node-a').lease('acct_1', undefined, 1, 10_000);
    expect(await usage.nextId()).toBe(1);
    const rows = [
      usageRow({ id: 1, priceMicros: 100, leaseId, quotaPeriod: '2026-12' }),
      usageRow({ id: 2, prevId: 1, priceMicros: 100, leaseId, quotaPeriod: '2026-12', overageMeter: 'api_calls', overageInterval: T0 - (T0 % DAY) }),
      usageRow({ id: 3, prevId: 2, status: 502, billable: false, quotaPeriod: undefined }),
      usageRow({ id: 4, accountId: 'acct_2', route: '/v1/', path: '/v1/chat/completions', method: 'POST', priceMicros: 0, ts: T0 + DAY,
        ai: { model: 'gpt-4o', inputTokens: 30, cachedTokens: 10, cacheWriteTokens: 0, outputTokens: 7, estimated: true } }),
      usageRow({ id: 5, accountId: null, keyId: null, route: '/', path: '/public' }),
    ];
    const queries: string[] = [];
    const spy = pool.query.bind(pool);
    pool.query = ((...args: Parameters<Pool['query']>) => {
      queries.push(typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text);
      return spy(...args);
    }) as Pool['query'];
    try {
      await usage.write(rows, [], 0, []);
    } finally {
      pool.query = spy;
    }
    expect(queries).toHaveLength(1);
    // Alerts (rare) go in a transaction that reads the state other nodes stored first (test/alerts-once.test.ts).
    await usage.write([], [], 0, [
      { accountId: 'acct_1', alerts: { lowArmed: true, depletedArmed: true, quotaPeriod: null, quotaPercent: 0 }, event: undefined },
      { accountId: 'acct_1', alerts: { lowArmed: false, depletedArmed: true, quotaPeriod: '2026-12', quotaPercent: 80 },
        event: { id: 'evt_1', type: 'quota.threshold', accountId: 'acct_1', createdAt: T0, data: { period: '2026-12', percent: 80 } } },
      { accountId: 'acct_1', alerts: { lowArmed: false, depletedArmed: true, quotaPeriod: '2026-12', quotaPercent: 80 },
        event: { id: 'evt_2', type: 'balance.low', accountId: 'acct_1', createdAt: T0, data: { balanceMicros: 9800 } } },
    ]);

    expect(await usage.nextId()).toBe(6);
    const q = (sql: string) => pool.query(sql).then((r) => r.rows);
    expect(await q('SELECT account_id, period, used FROM quota_usage')).toEqual([{ account_id: 'acct_1', period: '2026-12', used: 2 }]);
    expect(await q(`SELECT consumed_micros FROM leases WHERE id = ${leaseId}`)).toEqual([{ consumed_micros: 200 }]);
    expect(await q('SELECT account_id, event_name, value, identifier FROM meter_outbox')).toEqual([{
      account_id: 'acct_1', event_name: 'api_calls', value: 1, identifier: overageIdentifier('acct_1', 'api_calls', T0 - (T0 % DAY)),
    }]);
    expect(await q(`SELECT account_id, day, route, model, status, requests, billable, charged_micros, input_tokens, cached_tokens, output_tokens
      FROM usage_daily ORDER BY account_id, day, status`)).toEqual([
      { account_id: '', day: T0 - (T0 % DAY), route: '/', model: '', status: 200, requests: 1, billable: 1, charged_micros: 0, input_tokens: 0, cached_tokens: 0, output_tokens: 0 },
      { account_id: 'acct_1', day: T0 - (T0 % DAY), route: '/api/', model: '', status: 200, requests: 2, billable: 2, charged_micros: 200, input_tokens: 0, cached_tokens: 0, output_tokens: 0 },
      { account_id: 'acct_1', day: T0 - (T0 % DAY), route: '/api/', model: '', status: 502, requests: 1, billable: 0, charged_micros: 0, input_tokens: 0, cached_tokens: 0, output_tokens: 0 },
      { account_id: 'acct_2', day: T0 + DAY - (T0 % DAY), route: '/v1/', model: 'gpt-4o', status: 200, requests: 1, billable: 1, charged_micros: 0, input_tokens: 30, cached_tokens: 10, output_tokens: 7 },
    ]);
    expect(await q('SELECT account_id, low_armed, depleted_armed, quota_period, quota_percent FROM account_alerts')).toEqual([
      { account_id: 'acct_1', low_armed: false, depleted_armed: true, quota_period: '2026-12', quota_percent: 80 },
    ]);
    expect(await q(`SELECT event_id, type, account_id, data FROM notifications WHERE type <> 'credits.added' ORDER BY id`)).toEqual([
      { event_id: 'evt_1', type: 'quota.threshold', account_id: 'acct_1', data: '{"period":"2026-12","percent":80}' },
      { event_id: 'evt_2', type: 'balance.low', account_id: 'acct_1', data: '{"balanceMicros":9800}' },
    ]);
    expect((await usage.recent('acct_1', 3, 10)).map((r) => r.requestId)).toEqual(['req_3', 'req_2', 'req_1']);
    expect((await usage.recent('acct_1', 3, 2)).map((r) => r.requestId)).toEqual(['req_3', 'req_2']);
    // Another node's rows of the account are among its latest too, in time order.
    await createPgUsage(pool, 'node-z').write([usageRow({ id: 1, requestId: 'req_z', ts: T0 + 1 })], [], 0, []);
    expect((await usage.recent('acct_1', 3, 2)).map((r) => r.requestId)).toEqual(['req_z', 'req_3']);

    // A second commit adds to the same counters.
    await usage.write([usageRow({ id: 6, prevId: 3, priceMicros: 100, leaseId, quotaPeriod: '2026-12' })], [], 0, []);
    expect(await q('SELECT used FROM quota_usage')).toEqual([{ used: 3 }]);
    expect(await q(`SELECT consumed_micros FROM leases WHERE id = ${leaseId}`)).toEqual([{ consumed_micros: 300 }]);
    expect(await createPgUsage(pool, 'node-b').nextId()).toBe(1);
  });

  it('a commit that fails writes nothing: no row, no count', async () => {
    const usage = createPgUsage(pool, 'node-c');
    const before = await pool.query('SELECT (SELECT count(*) FROM usage)::int AS rows, (SELECT sum(used) FROM quota_usage)::int AS used');
    // Row 2 repeats row 1's id: the whole statement is refused.
    await expect(usage.write([usageRow({ id: 1, quotaPeriod: '2026-12' }), usageRow({ id: 1, quotaPeriod: '2026-12' })], [], 0, [])).rejects.toThrow(/duplicate key/);
    const after = await pool.query('SELECT (SELECT count(*) FROM usage)::int AS rows, (SELECT sum(used) FROM quota_usage)::int AS used');
    expect(after.rows).toEqual(before.rows);
  });

  it('retention deletes the oldest rows a batch at a time; the rollups stay', async () => {
    const usage = createPgUsage(pool, 'node-d');
    await usage.write(Array.from({ length: 5 }, (_, i) => usageRow({ id: i + 1, ts: T0 - 10 * DAY })), [], 0, []);
    const days = await pool.query('SELECT sum(requests)::int AS n FROM usage_daily');
    expect(await usage.prune(T0 - DAY, 3)).toBe(3);
    expect(await usage.prune(T0 - DAY, 3)).toBe(2);
    expect(await usage.prune(T0 - DAY, 3)).toBe(0);
    expect((await pool.query('SELECT sum(requests)::int AS n FROM usage_daily')).rows).toEqual(days.rows);
  });
});
