// PostgreSQL paused (SIGSTOP, every one of its processes) for 10 s under load on two gateways:
// they keep answering from what their leases and slices hold, answer 503 within the refill wait
// what needs more, crash not, and once it resumes every answered request has its usage row and
// its charge, the ledger equals the balance and no node took another for dead. On a cluster of its own: pausing
// the suite's would stall every other test file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migratePg } from '../src/pg/migrate.ts';
import { createPool, type Pool } from '../src/pg/pool.ts';
import { bearer, startUpstream, type Upstream } from './helpers.ts';
import { freshDatabase, paidConfig, seedPgAccount, seedPgKey, startPostgres, type Postgres } from './postgres.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { until } from './until.ts';

const PRICE = 1_000;
const PAUSE_MS = 10_000;
/** Longer than the pause: a node whose database is paused is not at risk of being taken for dead. */
const TTL_MS = 30_000;

describe('PostgreSQL paused for 10 s under load', () => {
  let cluster: Postgres;
  let pool: Pool;
  let up: Upstream;
  let nodes: ServerProcess[] = [];
  let paused = false;

  beforeAll(async () => {
    cluster = await startPostgres();
    const url = await freshDatabase(cluster.url);
    pool = await createPool(url, 2);
    await migratePg(pool);
    up = await startUpstream();
    const config = paidConfig(up.url, PRICE);
    const env = { DATABASE_URL: url, TOLLGATE_CONFIG: config, NODE_TTL_MS: String(TTL_MS) };
    nodes = await Promise.all([1, 2].map(() => spawnServer(env, 20_000)));
  }, 60_000);
  afterAll(async () => {
    if (paused) for (const pid of cluster.pids()) process.kill(pid, 'SIGCONT');
    for (const n of nodes) n.child.kill('SIGKILL');
    await up?.close();
    await pool?.end();
    await cluster?.stop();
  });

  it('the nodes answer from what they hold, and everything is written once it resumes', async () => {
    const initial = 1_000_000 * PRICE;
    await seedPgAccount(pool, 'acct_pause', initial);
    const key = await seedPgKey(pool, 'acct_pause');
    const answered = { before: 0, during: 0, after: 0 };
    const other: number[] = [];
    let phase: keyof typeof answered = 'before';
    let pausedAt = 0;
    /** When the last request answered during the pause was answered, after the pause began. */
    let lastDuring = 0;
    let stop = false;
    let slowest = 0;
    const client = async (i: number) => {
      while (!stop) {
        const t0 = performance.now();
        const res = await fetch(`${nodes[i % 2].url}/api/x`, { headers: bearer(key) });
        await res.arrayBuffer();
        slowest = Math.max(slowest, performance.now() - t0);
        if (res.status === 200) {
          answered[phase]++;
          if (phase === 'during') lastDuring = performance.now() - pausedAt;
        }
        else other.push(res.status);
      }
    };
    const clients = Array.from({ length: 4 }, (_, i) => client(i));
    await until(() => answered.before >= 200, 10_000, 'load to run');

    const pids = cluster.pids();
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    paused = true;
    phase = 'during';
    pausedAt = performance.now();
    await new Promise((r) => setTimeout(r, PAUSE_MS)); // the pause itself is what is tested
    for (const pid of pids) process.kill(pid, 'SIGCONT');
    paused = false;
    const pauseMs = performance.now() - pausedAt;
    phase = 'after';
    await until(() => answered.after >= 200, 20_000, 'the nodes to go on once it resumed');
    stop = true;
    await Promise.all(clients);
    if (process.env.SHOW) console.log('FIGURES', { ...answered, pauseMs, lastDuring, slowest, other: other.length });
    // Paid from what the leases held, answered while the database could not be reached: past the
    // second after which a commit that does not answer stops holding answers back (Recorder).
    expect(answered.during).toBeGreaterThan(0);
    expect(lastDuring).toBeGreaterThan(1_000);
    // A request that needs more than its node holds is answered 503 after 5 s (the refill wait),
    // not held for the whole pause.
    expect(other.filter((s) => s !== 503)).toEqual([]);
    expect(other.length).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(5_000 + 1_500);
    for (const n of nodes) {
      n.child.kill('SIGTERM');
      expect((await n.exited).code).toBe(0);
    }
    nodes = [];
    const { rows: [b] } = await pool.query(`SELECT a.balance_micros AS balance,
        (SELECT sum(amount_micros) FROM ledger WHERE account_id = a.id)::bigint AS ledger,
        (SELECT count(*) FROM leases WHERE closed_at IS NULL)::int AS open,
        (SELECT coalesce(sum(price_micros), 0) FROM usage WHERE account_id = a.id)::bigint AS charged,
        (SELECT count(*) FROM usage WHERE account_id = a.id AND status = 200)::int AS rows
      FROM accounts a WHERE a.id = 'acct_pause'`);
    const total = answered.before + answered.during + answered.after;
    expect(b.rows).toBe(total);
    expect(b.charged).toBe(total * PRICE);
    expect(b.balance).toBe(b.ledger);
    expect(b.balance + b.charged).toBe(initial);
    expect(b.open).toBe(0);
  }, 90_000);
});
