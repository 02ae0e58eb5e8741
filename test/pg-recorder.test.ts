// The gateway's recorder over a usage log that answers later (PostgreSQL): one commit written at a
// time, the rows that arrive meanwhile making the next. Connections waiting for their rows split
// into two halves, one in the commit being written and one in the next, so a commit carries about
// half the busy connections' rows; a connection goes on only once its last row is durable. Three nodes
// spend leases of the same accounts: every row is counted into the counters as it is written.
import { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migratePg } from '../src/pg/migrate.ts';
import { createPgLeases } from '../src/pg/pg-leases.ts';
import { createPgUsage } from '../src/pg/pg-usage.ts';
import { createPool, type Pool } from '../src/pg/pool.ts';
import { Recorder, type Counted } from '../src/state/recorder.ts';
import { freshDatabase, seedPgAccount } from './postgres.ts';
import { until } from './until.ts';

const NODES = 3;
const CONNECTIONS = 60;
const REQUESTS = 20;
const PRICE = 7;

describe('the recorder on PostgreSQL, three nodes', () => {
  let url: string;
  const pools: Pool[] = [];

  beforeAll(async () => {
    url = await freshDatabase(inject('postgresUrl'));
    const p = await createPool(url, 2);
    pools.push(p);
    await migratePg(p);
    for (const id of ['acct_a', 'acct_b', 'acct_c']) {
      await seedPgAccount(p, id, 1_000_000);
    }
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
  });

  it('writes every row once, counted, in commits of many rows; a connection goes on only once its row is in', async () => {
    let roundTrips = 0;
    const errors: Error[] = [];
    const checks: Promise<void>[] = [];
    const nodes = await Promise.all(Array.from({ length: NODES }, async (_, n) => {
      const pool = await createPool(url, 4);
      pools.push(pool);
      const node = `node-${n}`;
      const usage = createPgUsage(pool, node);
      const write = usage.write.bind(usage);
      usage.write = (...args) => {
        roundTrips++;
        return write(...args);
      };
      const recorder = new Recorder(usage, { maxQueuedRows: 10_000, counterDelayMs: 120_000, onError: (_m, e) => errors.push(e) });
      recorder.start(await usage.nextId());
      const leases = createPgLeases(pool, node);
      const accounts: (Counted & { leaseId: number })[] = [];
      for (const id of ['acct_a', 'acct_b', 'acct_c']) {
        const { leaseId } = await leases.lease(id, undefined, 1, 100_000);
        accounts.push({ accountId: id, lastUsageId: 0, tally: undefined, writing: undefined, dirtySince: 0, leaseId });
      }
      return { node, pool, recorder, accounts };
    }));

    await Promise.all(nodes.flatMap(({ node, pool, recorder, accounts }) => Array.from({ length: CONNECTIONS }, async (_, c) => {
      const socket = new Socket();
      for (let i = 0; i < REQUESTS; i++) {
        // The connection's next request is handled once its previous row is written.
        const wait = recorder.durable(socket);
        if (wait !== true) await wait;
        const a = accounts[(c + i) % accounts.length];
        const requestId = `${node}-${c}-${i}`;
        recorder.append({
          id: 0, prevId: 0, ts: Date.now(), requestId, accountId: a.accountId, keyId: 'key', route: '/api/', method: 'GET', path: '/api/x',
          status: 200, requestBytes: 0, responseBytes: 2, latencyUs: 100, priceMicros: PRICE, billable: true, quotaPeriod: '2026-12', leaseId: a.leaseId,
        }, a, socket);
        if (i === REQUESTS - 1) {
          // The last row: once durable() lets the connection go, the row is in the database.
          const w = recorder.durable(socket);
          checks.push((w === true ? Promise.resolve() : new Promise<void>((r) => w.then(r))).then(async () => {
            const { rowCount } = await pool.query('SELECT 1 FROM usage WHERE request_id = $1', [requestId]);
            expect(rowCount, requestId).toBe(1);
          }));
        }
      }
    })));
    await Promise.all(checks);
    await Promise.all(nodes.map((n) => n.recorder.drain()));
    expect(errors).toEqual([]);

    const rows = NODES * CONNECTIONS * REQUESTS;
    const q = (sql: string) => pools[0].query(sql).then((r) => r.rows);
    expect(await q('SELECT count(*)::int AS n, count(DISTINCT request_id)::int AS distinct FROM usage')).toEqual([{ n: rows, distinct: rows }]);
    expect(await q('SELECT sum(used)::int AS used FROM quota_usage')).toEqual([{ used: rows }]);
    expect(await q('SELECT sum(requests)::int AS requests, sum(charged_micros)::int AS charged FROM usage_daily')).toEqual([{ requests: rows, charged: rows * PRICE }]);
    // Each lease's consumption is what its rows spent.
    expect(await q(`SELECT count(*)::int AS wrong FROM leases l
      WHERE consumed_micros <> (SELECT coalesce(sum(price_micros), 0) FROM usage u WHERE u.lease_id = l.id)`)).toEqual([{ wrong: 0 }]);
    expect(roundTrips / rows).toBeLessThan(0.05);
  });

  it('a commit the database refuses is written later, in order, once: connections do not wait meanwhile', async () => {
    const pool = await createPool(url, 2);
    pools.push(pool);
    // A commit that waits for a lock gives up after 100 ms, as one that finds the database busy.
    pool.on('connect', (c) => void c.query('SET lock_timeout = 100'));
    const errors: Error[] = [];
    const usage = createPgUsage(pool, 'node-locked');
    const recorder = new Recorder(usage, { maxQueuedRows: 10_000, counterDelayMs: 120_000, onError: (_m, e) => errors.push(e) });
    recorder.start(await usage.nextId());
    const account: Counted = { accountId: 'acct_a', lastUsageId: 0, tally: undefined, writing: undefined, dirtySince: 0 };
    const socket = new Socket();
    const row = (i: number) => ({
      id: 0, prevId: 0, ts: Date.now(), requestId: `locked-${i}`, accountId: 'acct_a', keyId: 'key', route: '/api/', method: 'GET',
      path: '/api/x', status: 200, requestBytes: 0, responseBytes: 2, latencyUs: 100, priceMicros: 0, billable: true, quotaPeriod: '2026-12',
    });

    const holder = await pools[0].connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE usage IN ACCESS EXCLUSIVE MODE');
    try {
      for (let i = 0; i < 30; i++) {
        const wait = recorder.durable(socket);
        if (wait !== true) await wait; // released when the commit fails: answers do not wait for a busy database
        recorder.append(row(i), account, socket);
      }
      await until(() => errors.length > 0, 5_000, 'a refused commit');
    } finally {
      await holder.query('COMMIT');
      holder.release();
    }
    await until(async () => (await pools[0].query(`SELECT count(*)::int AS n FROM usage WHERE node = 'node-locked'`)).rows[0].n === 30, 5_000, 'every row written');
    await recorder.drain();
    const { rows } = await pools[0].query(`SELECT id, prev_id, request_id FROM usage WHERE node = 'node-locked' ORDER BY id`);
    expect(rows.map((r) => r.request_id)).toEqual(Array.from({ length: 30 }, (_, i) => `locked-${i}`));
    // Each row names the one before it: the chain survived the retries.
    expect(rows.every((r, i) => r.prev_id === (i === 0 ? 0 : rows[i - 1].id))).toBe(true);
    expect(errors[0].message).toMatch(/lock/);
  });

  it('a row whose commit is being written is still the gateway\'s to show (the account\'s latest requests)', async () => {
    const pool = await createPool(url, 2);
    pools.push(pool);
    const usage = createPgUsage(pool, 'node-inflight');
    const recorder = new Recorder(usage, { maxQueuedRows: 10_000, counterDelayMs: 120_000, onError: () => undefined });
    recorder.start(await usage.nextId());
    const account: Counted = { accountId: 'acct_b', lastUsageId: 0, tally: undefined, writing: undefined, dirtySince: 0 };
    const holder = await pools[0].connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE usage IN ACCESS EXCLUSIVE MODE');
    try {
      recorder.append({
        id: 0, prevId: 0, ts: Date.now(), requestId: 'inflight-1', accountId: 'acct_b', keyId: 'key', route: '/api/', method: 'GET',
        path: '/api/x', status: 200, requestBytes: 0, responseBytes: 2, latencyUs: 100, priceMicros: 0, billable: true, quotaPeriod: '2026-12',
      }, account, new Socket());
      recorder.commit(); // handed to the database, which waits for the lock
      await until(async () => (await pools[0].query('SELECT 1 FROM pg_locks WHERE NOT granted')).rowCount! > 0, 5_000, 'the commit to wait for the lock');
      expect(recorder.queued('acct_b', 5).map((r) => r.requestId)).toEqual(['inflight-1']);
    } finally {
      await holder.query('COMMIT');
      holder.release();
    }
    await recorder.drain();
    expect(recorder.queued('acct_b', 5)).toEqual([]);
    // The newest of the account's rows (the other tests' nodes wrote some before).
    expect((await usage.recent('acct_b', account.lastUsageId, 5))[0].requestId).toBe('inflight-1');
  });
});
