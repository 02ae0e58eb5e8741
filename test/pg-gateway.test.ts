// Three gateways on one PostgreSQL, as processes (`node dist/server.js` with DATABASE_URL): money
// is exact across them, a balance one node leased is spent by requests that reach another, rate
// limits and quotas hold for all nodes together (with the buckets in PostgreSQL, and in Redis), a
// key revoked is refused by every node within a second, and a node killed with SIGKILL under load
// has its leases returned by the survivors: nothing charged that was not answered, the ledger whole.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashKey } from '../src/keys.ts';
import { migratePg } from '../src/pg/migrate.ts';
import { recordChange } from '../src/pg/pg-changes.ts';
import { createPool, type Pool } from '../src/pg/pool.ts';
import { bearer, startUpstream, type Upstream } from './helpers.ts';
import { books as booksOf, freshDatabase, OPEN_LIMITS, paidConfig, pgAccount, statusOf } from './postgres.ts';
import { startRedis, type Redis } from './redis.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { until } from './until.ts';

const PRICE = 1_000;
// Short, so a node killed under load is reaped within seconds; long enough that a busy machine
// (CI runs every suite at once on two cores) does not stall a heartbeat past two thirds of it,
// which makes a node refuse paid requests (503) for safety. At 900 ms it did, 4 of 50 requests.
const TTL_MS = 2_000;

// Everything twice: rate limits shared through PostgreSQL, then through Redis (REDIS_URL).
describe.each([{ redis: false }, { redis: true }])('three gateways on one PostgreSQL (Redis: $redis)', ({ redis: withRedis }) => {
  let url: string;
  let pool: Pool;
  let up: Upstream;
  let redis: Redis | undefined;
  let nodes: ServerProcess[] = [];

  beforeAll(async () => {
    if (withRedis) redis = await startRedis();
    url = await freshDatabase(inject('postgresUrl'));
    pool = await createPool(url, 4);
    await migratePg(pool);
    up = await startUpstream();
    const config = paidConfig(up.url, PRICE, {
        // Rate limits each node's memory alone would give three times over.
        perMinute: { limits: { perMinute: 60 }, monthlyQuota: 0, overage: 'credits' },
        perSecond: { limits: { perSecond: 20 }, monthlyQuota: 0, overage: 'credits' },
        quota30: { limits: OPEN_LIMITS, burst: 1_000_000, monthlyQuota: 30, overage: 'block' },
        quota1000: { limits: OPEN_LIMITS, burst: 1_000_000, monthlyQuota: 1_000, overage: 'block' },
    });
    const env: Record<string, string> = { DATABASE_URL: url, TOLLGATE_CONFIG: config, NODE_TTL_MS: String(TTL_MS) };
    if (redis) env.REDIS_URL = redis.url;
    nodes = await Promise.all([1, 2, 3].map(() => spawnServer(env, 20_000)));
  }, 60_000);
  afterAll(async () => {
    for (const n of nodes) n.child.kill('SIGKILL');
    await up?.close();
    await pool?.end();
    await redis?.stop();
  });

  const account = (micros: number, plan = 'default') => pgAccount(pool, micros, plan);

  const call = (node: ServerProcess, key: string) => statusOf(node.url, key);

  const books = (id: string) => booksOf(pool, id);

  it('a 50-way burst spread over the nodes against a balance for 7: exactly 7 succeed, the ledger equals the balance', async () => {
    const { id, key } = await account(7 * PRICE);
    const statuses = await Promise.all(Array.from({ length: 50 }, (_, i) => call(nodes[i % 3], key)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(7);
    expect(statuses.filter((s) => s !== 200 && s !== 402)).toEqual([]);
    await until(async () => (await books(id)).charged === 7 * PRICE, 5_000, 'the 7 rows to be written');
    const b = await books(id);
    expect(b.balance).toBe(b.ledger);
    expect(b.balance + b.held).toBe(0);
  });

  it('48 requests at once on one node, again and again, against a large balance: none refused', async () => {
    const { id, key } = await account(1_000_000 * PRICE);
    const statuses: number[] = [];
    for (let round = 0; round < 10; round++) statuses.push(...await Promise.all(Array.from({ length: 48 }, () => call(nodes[0], key))));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // Leases are taken 64 requests' worth at a time (up to 16 times that while spent fast), not the whole balance.
    const b = await books(id);
    expect(b.held).toBeLessThanOrEqual(2 * 16 * 64 * PRICE);
  });

  it('requests whose client left while they waited for the database are not forwarded and free their slots', async () => {
    const { id, key } = await account(1_000 * PRICE);
    // The account's row locked: the first request's lease call waits for it.
    const lock = await pool.connect();
    await lock.query('BEGIN');
    await lock.query('SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE', [id]);
    const aborts = Array.from({ length: 64 }, () => new AbortController()); // MAX_CONCURRENT_PER_CLIENT's default
    const left = aborts.map((a) => fetch(`${nodes[0].url}/api/x`, { headers: bearer(key), signal: a.signal }).catch(() => 'aborted'));
    await until(async () => (await pool.query('SELECT 1 FROM pg_locks WHERE NOT granted')).rowCount! > 0, 5_000, 'a lease call to wait for the lock');
    const forwarded = up.received.length;
    for (const a of aborts) a.abort();
    expect(await Promise.all(left)).toEqual(aborts.map(() => 'aborted'));
    // A barrier: once the node answers a request sent after the aborts, it has read them.
    expect((await fetch(`${nodes[0].url}/_tollgate/health`)).status).toBe(200);
    await lock.query('COMMIT');
    lock.release();
    const statuses = await Promise.all(aborts.map(() => call(nodes[0], key)));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(up.received.length - forwarded).toBe(64);
  });

  it('a balance one node leased whole is spent by requests that reach the others', async () => {
    const { id, key } = await account(5 * PRICE);
    expect(await call(nodes[0], key)).toBe(200); // node 1 leases all of it
    expect(await call(nodes[1], key)).toBe(200);
    expect(await call(nodes[2], key)).toBe(200);
    expect(await call(nodes[1], key)).toBe(200);
    expect(await call(nodes[2], key)).toBe(200);
    expect(await call(nodes[0], key)).toBe(402);
    await until(async () => (await books(id)).charged === 5 * PRICE, 5_000, 'the 5 rows to be written');
    const b = await books(id);
    expect(b.balance).toBe(b.ledger);
    expect(b.balance + b.held).toBe(0);
  });

  it('a burst of 150 spread over the nodes against 60 a minute admits 60, not 60 per node', async () => {
    const { id, key } = await account(1_000 * PRICE, 'perMinute');
    const statuses = await Promise.all(Array.from({ length: 150 }, (_, i) => call(nodes[i % 3], key)));
    const admitted = statuses.filter((s) => s === 200).length;
    // The bucket refills one token a second while the burst runs: at most 5% over.
    expect(admitted).toBeGreaterThanOrEqual(60);
    expect(admitted).toBeLessThanOrEqual(63);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    // The bucket is where REDIS_URL says: in Redis, or in the database.
    const inDatabase = (await pool.query('SELECT 1 FROM rate_buckets WHERE account_id = $1', [id])).rowCount;
    expect(inDatabase).toBe(withRedis ? 0 : 1);
  });

  it('a burst of 90 spread over the nodes against a monthly quota of 30 admits exactly 30', async () => {
    const { id, key } = await account(0, 'quota30');
    const statuses = await Promise.all(Array.from({ length: 90 }, (_, i) => call(nodes[i % 3], key)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(30);
    expect(statuses.filter((s) => s !== 200 && s !== 402)).toEqual([]);
    const { rows } = await pool.query('SELECT handed_out AS "handedOut" FROM quota_usage WHERE account_id = $1', [id]);
    expect(rows).toEqual([{ handedOut: 30 }]);
    await until(async () => (await pool.query('SELECT used FROM quota_usage WHERE account_id = $1', [id])).rows[0].used === 30, 5_000, 'the 30 rows to be counted');
  });

  it('steady traffic under a shared limit is never refused', async () => {
    const { key } = await account(1_000 * PRICE, 'perSecond');
    // 15 a second over three nodes against 20 a second, for 2 s.
    const statuses: number[] = [];
    const started = performance.now();
    for (let i = 0; i < 30; i++) {
      const due = started + i * (1_000 / 15);
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      statuses.push(await call(nodes[i % 3], key));
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });

  it('a key revoked by another process is refused by every node within a second', async () => {
    const { key } = await account(100 * PRICE);
    for (const n of nodes) expect(await call(n, key)).toBe(200);
    const hash = hashKey(key);
    await pool.query('UPDATE api_keys SET revoked_at = 1 WHERE hash = $1', [hash]);
    await recordChange(pool, { kind: 'key', hash }, '');
    const revoked = performance.now();
    for (const n of nodes) await until(async () => (await call(n, key)) === 401, 1_000, 'the revocation to be seen');
    expect(performance.now() - revoked).toBeLessThan(1_000);
  });

  it('a node killed with SIGKILL under load: its leases return within the TTL; charged never exceeds answered', async () => {
    const initial = 100_000 * PRICE;
    const { id, key } = await account(initial);
    let answered = 0;
    let stop = false;
    const victim = nodes[2];
    const client = async (i: number) => {
      while (!stop) {
        const alive = victim.child.exitCode === null && victim.child.signalCode === null;
        const node = alive ? nodes[i % 3] : nodes[i % 2];
        try {
          if ((await call(node, key)) === 200) answered++;
        } catch {
          if (node !== victim) throw new Error('a survivor failed a request');
        }
      }
    };
    const clients = Array.from({ length: 12 }, (_, i) => client(i));
    await until(() => answered >= 300, 20_000, 'load to run');
    victim.child.kill('SIGKILL');
    await victim.exited;
    const killed = performance.now();
    // Reaped: the node's row is gone, and no open lease belongs to a node not in the table.
    const reaped = async () => (await pool.query(`SELECT (SELECT count(*) FROM nodes)::int AS nodes,
      (SELECT count(*) FROM leases WHERE closed_at IS NULL AND node NOT IN (SELECT id FROM nodes))::int AS orphans`)).rows[0];
    expect(await reaped()).toEqual({ nodes: 3, orphans: 0 });
    await until(async () => (await reaped()).nodes === 2, 3 * TTL_MS, 'the dead node to be reaped');
    expect(await reaped()).toEqual({ nodes: 2, orphans: 0 });
    expect(performance.now() - killed).toBeLessThan(3 * TTL_MS);
    const before = answered;
    await until(() => answered >= before + 100, 10_000, 'the survivors to go on answering');
    stop = true;
    await Promise.all(clients);
    // A slice of a quota held at shutdown goes back: 5 used of the 10 node 1 took.
    const sliced = await account(0, 'quota1000');
    for (let i = 0; i < 5; i++) expect(await call(nodes[0], sliced.key)).toBe(200);
    const handedOut = async () => (await pool.query('SELECT handed_out AS n FROM quota_usage WHERE account_id = $1', [sliced.id])).rows[0].n;
    expect(await handedOut()).toBe(10);
    // The survivors end their leases at shutdown: all that is left is in the balance.
    nodes = nodes.filter((n) => n !== victim);
    await Promise.all(nodes.map(async (n) => {
      n.child.kill('SIGTERM');
      expect((await n.exited).code).toBe(0);
    }));
    expect(await handedOut()).toBe(5);
    const b = await books(id);
    if (process.env.SHOW) console.log('FIGURES', { answered, charged: b.charged / PRICE, reapedMs: performance.now() - killed });
    expect(b.open).toBe(0);
    expect(b.balance).toBe(b.ledger);
    expect(b.balance + b.charged).toBe(initial);
    expect(b.charged / PRICE).toBeLessThanOrEqual(answered);
    // What the killed node had not written is all that can be missing: at most a commit's worth.
    expect(b.charged / PRICE).toBeGreaterThan(answered - 50);
  }, 60_000);
});
