// nodes: 1, 2 and 4 gateway processes on one PostgreSQL (a throwaway cluster, as the tests start
// one), the plain paid path spread over all of them: one account, one key, 50 connections to each
// node, every request paid from the balance the nodes share through their leases. Per node count:
// requests/s, the gateways' CPU per request, and PostgreSQL round trips per request
// (pg_stat_statements' calls: heartbeats and change polls count too), under steady load (EDGE_MS). Issue 12's targets: CPU per
// request flat within 20% from 1 to 4 nodes, round trips per request below 0.05. Between the gateways' rounds as
// many bare proxies take the same load, so the run also prints what the machine alone does to CPU per
// request when 4 processes (and 4 wrks, and the upstream) share its cores.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import pg from 'pg';
import { migratePg } from '../../src/pg/migrate.ts';
import { freshDatabase, seedPgAccount, seedPgKey, startPostgres } from '../../test/postgres.ts';
import { profileFlags, type BenchContext } from './context.ts';
import { CREDITS_MICROS, PAID_PLAN, PLAN, untilReady } from './gateway.ts';
import { cpuTimeMs, forkServer, freePort, spawnTracked, stop, withTimeout } from './processes.ts';
import { verdict } from './rounds.ts';
import { wrk, type WrkResult } from './wrk.ts';

/** Per node, as the plain case loads its one gateway: a commit carries the rows of the connections waiting for it. */
const CONNECTIONS = 50;
const PRICE_MICROS = 100;
const NODE_COUNTS = [1, 2, 4];
const MAX_CPU_GROWTH = 1.2;
const MAX_ROUND_TRIPS = 0.05;
/**
 * CPU and round trips are measured under steady load: each round's first and last second are left
 * out, where wrk opens and closes its connections. Closing 50 connections mid-request costs each
 * gateway about 150 ms of CPU (aborted requests, their errors): spread over a round's requests it
 * weighs four times as much per request on a node of four, which answers a quarter as many.
 */
const EDGE_MS = 1_000;

interface Run { nodes: number; rps: number; cpuUs: number; roundTrips: number; bareRps: number; bareCpuUs: number }

/** The CPU time the processes have used so far, together. */
const cpuMsOf = (processes: { child: ChildProcess }[]) => processes.reduce((sum, p) => sum + (cpuTimeMs(p.child.pid) ?? NaN), 0);

/** One round of `load`, sampled as it starts, EDGE_MS into it, EDGE_MS before its end, and once it is over. */
async function sampledRound<S>(load: (seconds: number) => Promise<WrkResult[]>, seconds: number, sample: () => S | Promise<S>) {
  const start = await sample();
  const running = load(seconds);
  await sleep(EDGE_MS);
  const from = await sample();
  await sleep(seconds * 1000 - 2 * EDGE_MS);
  const to = await sample();
  const results = await running;
  const end = await sample();
  return { start, from, to, end, results, requests: results.reduce((n, r) => n + r.requests, 0), seconds: Math.max(...results.map((r) => r.seconds)) };
}

export async function nodesCase(ctx: BenchContext): Promise<string[]> {
  console.log(`\nnodes: GET / at ${PRICE_MICROS} µ$ a request, one key, ${CONNECTIONS} connections to each of 1, 2 and 4 gateways on one PostgreSQL`);
  const cluster = await startPostgres(['shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track=all']);
  const problems: string[] = [];
  const runs: Run[] = [];
  try {
    for (const n of NODE_COUNTS) runs.push(await measure(ctx, cluster.url, n, problems));
  } finally {
    await cluster.stop();
  }
  const one = runs[0];
  for (const r of runs) {
    console.log(`  ${r.nodes} node${r.nodes === 1 ? ' ' : 's'}: ${Math.round(r.rps)} req/s, CPU ${r.cpuUs.toFixed(1)} µs a request (all gateways), ` +
      `${r.roundTrips.toFixed(4)} PostgreSQL round trips a request; bare proxies ${Math.round(r.bareRps)} req/s, CPU ${r.bareCpuUs.toFixed(1)} µs a request`);
  }
  const growth = Math.max(...runs.map((r) => r.cpuUs)) / one.cpuUs;
  verdict('CPU per request, most / 1 node', growth.toFixed(3), `≤ ${MAX_CPU_GROWTH}`, growth <= MAX_CPU_GROWTH);
  const bareGrowth = Math.max(...runs.map((r) => r.bareCpuUs)) / one.bareCpuUs;
  console.log(`  bare proxies' CPU per request, most / 1 process: ${bareGrowth.toFixed(3)}; the gateways' growth over theirs: ${(growth / bareGrowth).toFixed(3)}`);
  const trips = Math.max(...runs.map((r) => r.roundTrips));
  verdict('round trips per request, most', trips.toFixed(4), `< ${MAX_ROUND_TRIPS}`, trips < MAX_ROUND_TRIPS);
  return problems;
}

async function measure(ctx: BenchContext, clusterUrl: string, nodes: number, problems: string[]): Promise<Run> {
  const url = await freshDatabase(clusterUrl);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const dir = join(ctx.dir, `nodes-${nodes}`);
  try {
    await migratePg(pool);
    await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await seedPgAccount(pool, 'acct_bench', CREDITS_MICROS);
    await pool.query('UPDATE accounts SET plan = $1', [PLAN]);
    const keysFile = join(ctx.dir, `keys-${nodes}.txt`);
    writeFileSync(keysFile, `${await seedPgKey(pool, 'acct_bench')}\n`);
    const configPath = join(ctx.dir, `nodes-${nodes}.config.json`);
    writeFileSync(configPath, JSON.stringify({
      routes: [{ path: '/', upstream: ctx.upstreamUrl, priceMicros: PRICE_MICROS }], plans: { [PLAN]: PAID_PLAN }, defaultPlan: PLAN,
    }));
    const gateways = await Promise.all(Array.from({ length: nodes }, async (_, i) => {
      const port = await freePort();
      const g = spawnTracked(process.execPath, [...profileFlags(ctx, `nodes-${nodes}-${i + 1}`), ctx.entry], {
        PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: url, TOLLGATE_CONFIG: configPath, LOG_LEVEL: 'warn', ACCESS_LOG: 'off', DATABASE_PATH: join(dir, `${i}.db`),
      });
      await withTimeout(`node ${i + 1} /_tollgate/ready`, untilReady(`http://127.0.0.1:${port}`, () => g.child.exitCode ?? g.child.signalCode));
      return { ...g, url: `http://127.0.0.1:${port}/` };
    }));
    const load = (seconds: number) => Promise.all(gateways.map((g) => wrk({ url: g.url, keysFile }, { connections: CONNECTIONS, seconds })));
    const answered: WrkResult[][] = [await load(ctx.warmupSeconds)];
    const bares = await Promise.all(gateways.map((_, i) => forkServer(`bare proxy ${i + 1}`, new URL('./bare-proxy.ts', import.meta.url), { UPSTREAM_URL: ctx.upstreamUrl })));
    const bareLoad = (seconds: number) => Promise.all(bares.map((b) => wrk({ url: `${b.url}/` }, { connections: CONNECTIONS, seconds })));
    await bareLoad(ctx.warmupSeconds);
    const bareCpuMs = () => cpuMsOf(bares);
    // One statement, so exactly one of ours falls between two samples.
    const sample = async () => {
      const { rows: [r] } = await pool.query<{ calls: string; rows: string }>(
        'SELECT (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements) AS calls, (SELECT count(*) FROM usage) AS rows');
      return { cpuMs: cpuMsOf(gateways), calls: Number(r.calls), rows: Number(r.rows) };
    };
    const rounds: Run[] = [];
    const whole: Run[] = [];
    // A bare proxy writes no rows: the requests of its window are its round's share of them (the load is steady).
    const windowShare = 1 - (2 * EDGE_MS) / (ctx.seconds * 1000);
    for (let round = 0; round < ctx.rounds; round++) {
      const g = await sampledRound(load, ctx.seconds, sample);
      answered.push(g.results);
      const per = (a: typeof g.from, b: typeof g.from, n: number) => ({ cpuUs: ((b.cpuMs - a.cpuMs) * 1000) / n, roundTrips: (b.calls - a.calls - 1) / n });
      const b = await sampledRound(bareLoad, ctx.seconds, bareCpuMs);
      const bareRps = b.requests / b.seconds;
      // Usage rows counted in the window are the requests answered in it (each writes one, within a commit).
      rounds.push({ nodes, rps: g.requests / g.seconds, ...per(g.from, g.to, g.to.rows - g.from.rows), bareRps, bareCpuUs: ((b.to - b.from) * 1000) / (b.requests * windowShare) });
      whole.push({ nodes, rps: g.requests / g.seconds, ...per(g.start, g.end, g.requests), bareRps, bareCpuUs: ((b.end - b.start) * 1000) / b.requests });
    }
    for (const b of bares) await stop(b.child);
    console.log(`  ${nodes} node${nodes === 1 ? '' : 's'}, whole rounds (wrk's connects and closes included): ${whole.map((r) => `${r.cpuUs.toFixed(1)} µs ${r.roundTrips.toFixed(4)}, bare ${r.bareCpuUs.toFixed(1)} µs`).join('; ')}`);
    console.log(`  ${nodes} node${nodes === 1 ? '' : 's'}, rounds: ${rounds.map((r) => `${Math.round(r.rps)} req/s ${r.cpuUs.toFixed(1)} µs ${r.roundTrips.toFixed(4)}, bare ${Math.round(r.bareRps)} req/s ${r.bareCpuUs.toFixed(1)} µs`).join('; ')}`);
    for (const g of gateways) {
      const code = await stop(g.child);
      // Its warnings and errors (the access log is off), the last ones.
      if (code !== 0) problems.push(`${nodes} nodes: a gateway exited with ${code}\n${g.output().split('\n').slice(-20).join('\n')}`);
    }
    const failures = answered.flat().filter((r) => r.errors > 0 || r.mismatches > 0).map((r) => `${nodes} nodes: ${r.errorText} ${r.mismatches} mismatches`);
    problems.push(...failures);
    // Every lease returned at shutdown: the balance, the ledger and the rows agree.
    const books = (await pool.query(`SELECT a.balance_micros AS balance, (SELECT sum(amount_micros) FROM ledger)::bigint AS ledger,
      (SELECT count(*) FROM leases WHERE closed_at IS NULL)::int AS open, (SELECT coalesce(sum(price_micros), 0) FROM usage)::bigint AS charged,
      (SELECT count(*) FROM usage)::bigint AS rows FROM accounts a`)).rows[0] as Record<string, string>;
    const [balance, ledger, open, charged, rows] = ['balance', 'ledger', 'open', 'charged', 'rows'].map((k) => Number(books[k]));
    const total = answered.flat().reduce((s, r) => s + r.requests, 0);
    if (balance !== ledger) problems.push(`${nodes} nodes: balance ${balance} but the ledger sums to ${ledger}`);
    if (open !== 0) problems.push(`${nodes} nodes: ${open} leases left open after shutdown`);
    if (balance + charged !== CREDITS_MICROS) problems.push(`${nodes} nodes: balance ${balance} + charged ${charged} is not the ${CREDITS_MICROS} granted`);
    if (rows < total) problems.push(`${nodes} nodes: ${rows} usage rows for ${total} responses`);
    const median = (k: keyof Run) => [...rounds].sort((x, y) => x[k] - y[k])[Math.floor(rounds.length / 2)][k];
    return { nodes, rps: median('rps'), cpuUs: median('cpuUs'), roundTrips: median('roundTrips'), bareRps: median('bareRps'), bareCpuUs: median('bareCpuUs') };
  } finally {
    await pool.end();
  }
}
