// Keys and changes on a real PostgreSQL: a node reads a key with its account, balance and alert
// state in one query, and hears another node's changes within a second, once each, also when its
// listening connection is cut and when a change commits after a newer one.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashKey, generateKey } from '../src/keys.ts';
import { migratePg } from '../src/pg/migrate.ts';
import { createPgChanges, recordChange } from '../src/pg/pg-changes.ts';
import { createPgKeys } from '../src/pg/pg-keys.ts';
import { createPgLeases } from '../src/pg/pg-leases.ts';
import { createPool, transaction, type Pool } from '../src/pg/pool.ts';
import type { Change } from '../src/storage/ports.ts';
import { freshDatabase } from './postgres.ts';
import { until } from './until.ts';

describe('keys and changes on PostgreSQL', () => {
  let url: string;
  const pools: Pool[] = [];
  const stops: (() => Promise<void>)[] = [];
  const pool = async (max = 3) => {
    const p = await createPool(url, max);
    pools.push(p);
    return p;
  };

  beforeAll(async () => {
    url = await freshDatabase(inject('postgresUrl'));
    await migratePg(await pool(4));
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    await Promise.all(pools.map((p) => p.end()));
  });

  it('finds a key with its account, its balance with every node\'s leases, and its alert state; unknown keys are undefined', async () => {
    const p = pools[0];
    const key = generateKey();
    await p.query(`INSERT INTO accounts (id, email, plan, status, balance_micros, created_at, period_start, period_end)
      VALUES ('acct_k', 'k@example.com', 'pro', 'active', 5000, 0, 100, 200)`);
    await p.query(`INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at) VALUES ('acct_k', 5000, 5000, 'grant', 't', 0)`);
    await p.query(`INSERT INTO api_keys (id, account_id, hash, prefix, created_at, expires_at) VALUES ('key_k', 'acct_k', $1, 'tg_abc', 0, 999)`, [hashKey(key)]);
    await createPgLeases(p, 'node-x').lease('acct_k', undefined, 1, 2000);
    const keys = createPgKeys(p, 'node-a');
    expect(await keys.findKey(hashKey(key))).toEqual({
      key: { id: 'key_k', accountId: 'acct_k', expiresAt: 999, revokedAt: null },
      account: { id: 'acct_k', plan: 'pro', status: 'active', statusReason: null, pastDueSince: null, periodStart: 100 },
      lastUsageId: 0,
      balanceMicros: 5000,
      alerts: { lowBalanceMicros: null, state: null, periodEnd: 200 },
    });
    await p.query(`INSERT INTO account_alerts (account_id, low_balance_micros, low_armed, depleted_armed, quota_period, quota_percent)
      VALUES ('acct_k', 100, false, true, '2026-12', 80)`);
    await p.query(`INSERT INTO usage (node, id, ts, request_id, account_id, route, method, path, status, request_bytes, response_bytes,
      latency_us, price_micros, billable) VALUES ('node-a', 41, 0, 'r', 'acct_k', '/', 'GET', '/', 200, 0, 0, 0, 0, true),
      ('node-b', 97, 0, 'r', 'acct_k', '/', 'GET', '/', 200, 0, 0, 0, 0, true)`);
    expect(await keys.findKey(hashKey(key))).toMatchObject({
      lastUsageId: 41, alerts: { lowBalanceMicros: 100, state: { lowArmed: false, depletedArmed: true, quotaPeriod: '2026-12', quotaPercent: 80 } },
    });
    expect(await keys.findKey(hashKey(generateKey()))).toBeUndefined();
    expect(await keys.findAccount('acct_k')).toMatchObject({ id: 'acct_k', plan: 'pro' });
    expect(await keys.findAccount('acct_none')).toBeUndefined();
    await p.query(`INSERT INTO quota_usage (account_id, period, used) VALUES ('acct_k', '2026-12', 12)`);
    expect(await keys.quotaUsed('acct_k', '2026-12')).toBe(12);
    expect(await keys.quotaUsed('acct_k', '2026-11')).toBe(0);
  });

  it('another node\'s changes are heard within a second, once each; a node\'s own are heard at once, once', async () => {
    const errors: Error[] = [];
    const a = createPgChanges(await pool(), url, 'node-a', (e) => errors.push(e));
    const b = createPgChanges(await pool(), url, 'node-b', (e) => errors.push(e));
    stops.push(() => a.stop(), () => b.stop());
    const heardA: Change[] = [];
    const heardB: Change[] = [];
    a.subscribe((c) => heardA.push(c));
    b.subscribe((c) => heardB.push(c));
    // Other test files share the cluster, each in a database of its own: count and cut only this one's listeners.
    const listeners = `FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`;
    const listening = async () => (await pools[0].query(`SELECT count(*)::int AS n ${listeners}`)).rows[0].n >= 2;
    // Let b's first read fix where it starts from.
    await until(listening, 5_000, 'both nodes listening');

    a.publish({ kind: 'key', hash: 'h1' });
    await until(() => heardB.length === 1, 1_000, 'node b to hear of the key');
    expect(heardB).toEqual([{ kind: 'key', hash: 'h1' }]);
    expect(heardA).toEqual([{ kind: 'key', hash: 'h1' }]);

    // A change that commits after a newer one is still heard, once.
    const slow = await pools[0].connect();
    try {
      await slow.query('BEGIN');
      await recordChange(slow, { kind: 'account', id: 'acct_slow' }, 'cli');
      await recordChange(pools[0], { kind: 'balance', id: 'acct_fast' }, 'cli');
      // Both nodes must have read the newer change before the older commits, or one read finds both, in id order.
      await until(() => heardB.length === 2 && heardA.length === 2, 1_500, 'the newer change');
      await slow.query('COMMIT');
    } finally {
      slow.release();
    }
    await until(() => heardB.length === 3, 1_500, 'the change committed later');

    // Both nodes' listening connections cut: polling still hears within a second, and both listen again.
    await pools[0].query(`SELECT pg_terminate_backend(pid) ${listeners}`);
    await transaction(pools[0], (c) => recordChange(c, { kind: 'all' }, 'cli'));
    await until(() => heardB.length === 4 && heardA.length === 4, 1_500, 'a change while not listening');
    expect(heardB.slice(1)).toEqual([{ kind: 'balance', id: 'acct_fast' }, { kind: 'account', id: 'acct_slow' }, { kind: 'all' }]);
    expect(heardA.slice(1)).toEqual(heardB.slice(1));
    await until(listening, 5_000, 'both nodes listening again');
    expect(errors).toEqual([]);
  });
});
