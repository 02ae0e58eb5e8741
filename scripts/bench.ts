// Measures what the gateway costs (STYLE.md habit 10): each case loads the gateway and what it is
// compared with in the same run, in alternating rounds, and prints the median of the rounds, each
// round and the targets of issue 8. One file per case under scripts/bench/:
//   plain     the paid path (key, rate limits, credits, a usage row) against a bare proxy
//   accounts  the same load over 100,000 accounts against one account, and the gateway's RSS
//   sse       token-metered OpenAI streams against a bare proxy
//   webhook   the reply time of signed Stripe checkout.session.completed events
//   features  what the access log and notifications cost the plain path
//   floor     what a usage row and a log line a request cost the plain ratio, written on the event loop or in a thread
//   nodes     the plain path over 1, 2 and 4 gateways on one PostgreSQL
//
//   npm run bench                       build, then every case
//   BENCH_CASES=plain,sse               some cases only
//   BENCH_ROUNDS=5 BENCH_SECONDS=5      rounds per side and seconds per round
//   BENCH_ACCOUNTS=100000               accounts of the accounts case
//   BENCH_WEBHOOKS=200                  events of the webhook case
//   BENCH_SERVER=/tmp/old/server.js     bench another build (its cli.js beside it creates the schema)
//   BENCH_PROFILE=/tmp/prof             CPU-profile both proxies of plain and sse; list hot functions
//   BENCH_NOTIFICATIONS=1               the gateways with notifications configured (bench/gateway.ts)
//   ACCESS_LOG=off                      any gateway setting in the environment reaches the gateways
//
// Load comes from wrk (scripts/bench/wrk.ts); every server runs in its own process on 127.0.0.1.
// The exit code is 1 only for a broken run (errors, usage rows or money that do not add up) and
// 2 when the bench itself could not run; a missed target is printed, not an exit code.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { accountsCase } from './bench/accounts-case.ts';
import { featuresCase } from './bench/features-case.ts';
import { floorCase } from './bench/floor-case.ts';
import type { BenchContext } from './bench/context.ts';
import { nodesCase } from './bench/nodes-case.ts';
import { plainCase } from './bench/plain-case.ts';
import { forkServer, killAll } from './bench/processes.ts';
import { sseCase, SSE_EVENTS } from './bench/sse-case.ts';
import { webhookCase } from './bench/webhook-case.ts';
import { requireWrk } from './bench/wrk.ts';

const CASES = { plain: plainCase, accounts: accountsCase, sse: sseCase, webhook: webhookCase, features: featuresCase, floor: floorCase, nodes: nodesCase };
type CaseName = keyof typeof CASES;

const WARMUP_SECONDS = 2;

async function main(): Promise<number> {
  const selected = cases(process.env.BENCH_CASES);
  const rounds = positiveInt('BENCH_ROUNDS', 5);
  const seconds = positiveInt('BENCH_SECONDS', 5);
  const accounts = positiveInt('BENCH_ACCOUNTS', 100_000);
  const webhooks = positiveInt('BENCH_WEBHOOKS', 200);
  requireWrk();
  // Past this, something hangs: stop everything rather than wait.
  const budgetMs = selected.length * (2 * (rounds * seconds + WARMUP_SECONDS) + 300) * 1000;
  setTimeout(() => fail(new Error(`gave up after ${budgetMs / 1000} s`)), budgetMs).unref();
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  try {
    const upstream = await forkServer('upstream', new URL('./bench/upstream.ts', import.meta.url), { SSE_EVENTS: String(SSE_EVENTS) });
    const ctx: BenchContext = {
      dir, entry: resolve(process.env.BENCH_SERVER || 'dist/server.js'), upstreamUrl: upstream.url,
      rounds, seconds, warmupSeconds: WARMUP_SECONDS, accounts, webhooks,
      profileDir: process.env.BENCH_PROFILE ? resolve(process.env.BENCH_PROFILE) : undefined,
    };
    console.log(`tollgate bench: ${ctx.entry}, ${rounds} alternating round${rounds === 1 ? '' : 's'} of ${seconds} s a side after ${WARMUP_SECONDS} s of warm-up; ` +
      `cases ${selected.join(', ')}`);
    const problems: string[] = [];
    for (const name of selected) {
      for (const p of await CASES[name](ctx)) problems.push(`${name}: ${p}`);
    }
    for (const p of problems) console.error(`bench: BROKEN RUN, ${p}`);
    return problems.length === 0 ? 0 : 1;
  } finally {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`${name}: expected a positive integer, got "${raw}"`);
  return Number(raw);
}

function cases(raw: string | undefined): CaseName[] {
  const all = Object.keys(CASES) as CaseName[];
  const names = (raw || all.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(n in CASES));
  if (bad.length > 0 || names.length === 0) throw new Error(`BENCH_CASES: expected some of ${all.join(', ')}, got "${raw}"`);
  return all.filter((n) => names.includes(n));
}

function fail(err: Error): never {
  console.error(`bench: ${err.message}`);
  killAll();
  process.exit(2);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => fail(new Error(`stopped by ${signal}`)));
main().then((code) => process.exit(code), fail);
