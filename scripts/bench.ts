// Measures what the gateway costs: the same local upstream is loaded directly, through a bare
// node:http + undici proxy, and through the gateway (auth, three rate-limit windows, quota, usage
// rows), one after the other in one run, and prints the gateway/bare ratio (STYLE.md habit 10).
// The streaming case does the same with an OpenAI chat stream on the gateway's token-metered
// /v1/chat/completions route (scripts/bench/sse-case.ts) and prints streams/s and events/s.
//
//   npm run bench                       build, then 10 s per target
//   BENCH_SECONDS=30 BENCH_ROUNDS=3     longer runs, targets alternated across rounds
//   BENCH_CASES=plain | sse             one case only (default: plain,sse)
//   BENCH_SSE_EVENTS=20                 chunk events per stream (then [DONE])
//   BENCH_SSE_DELAY_MS=0                the upstream's pause between events (0: back to back)
//   BENCH_PROFILE=/tmp/prof             also CPU-profile the gateway and the bare proxy; list hot functions
//   BENCH_SERVER=/tmp/other/server.js   bench another gateway build (default dist/server.js)
//
// Every server runs in its own process on 127.0.0.1; this process only generates load. Each case
// starts its own bare proxy and gateway, so their CPU figures and profiles hold that case alone.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { profileReport } from './bench/cpu-profile.ts';
import { startGateway } from './bench/gateway.ts';
import { measure, printTable, summarize, type Row, type Target } from './bench/load.ts';
import { forkServer, killAll, stop } from './bench/processes.ts';
import { runSseCase } from './bench/sse-case.ts';

const SECONDS = positiveInt('BENCH_SECONDS', 10);
const ROUNDS = positiveInt('BENCH_ROUNDS', 1);
const CASES = cases(process.env.BENCH_CASES);
const SSE_EVENTS = positiveInt('BENCH_SSE_EVENTS', 20);
// A role chunk, at least one content chunk, a finish chunk.
if (SSE_EVENTS < 3) throw new Error(`BENCH_SSE_EVENTS: at least 3, got ${SSE_EVENTS}`);
const SSE_DELAY_MS = nonNegativeInt('BENCH_SSE_DELAY_MS', 0);
const PROFILE_DIR = process.env.BENCH_PROFILE ? resolve(process.env.BENCH_PROFILE) : undefined;
const SERVER = process.env.BENCH_SERVER || 'dist/server.js';
const WARMUP_SECONDS = 2;
const CONNECTIONS = 10;
// The targets: at least 85% of the bare proxy's requests/s, under 0.2 ms added at p50.
const MIN_RATIO = 0.85;
const MAX_ADDED_P50_MS = 0.2;

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  // Past this, something hangs: stop everything rather than wait. Runs are timed; only the
  // streaming samples, read one by one, grow with the upstream's pauses.
  const perCase = (3 * ROUNDS * SECONDS + 3 * WARMUP_SECONDS + 30) * 1000;
  const budgetMs = CASES.size * perCase + 60_000 + (CASES.has('sse') ? 10 * SSE_EVENTS * SSE_DELAY_MS : 0);
  setTimeout(() => fail(new Error(`gave up after ${budgetMs / 1000} s`)), budgetMs).unref();
  try {
    const upstream = await forkServer('upstream', new URL('./bench/upstream.ts', import.meta.url), {
      SSE_EVENTS: String(SSE_EVENTS), SSE_DELAY_MS: String(SSE_DELAY_MS),
    });
    console.log(`tollgate bench: ${CONNECTIONS} connections, ${SECONDS} s per target × ${ROUNDS} round(s), ${WARMUP_SECONDS} s warm-up`);
    let ok = true;
    if (CASES.has('plain')) ok = (await plainCase(dir, upstream)) && ok;
    if (CASES.has('sse')) {
      ok = (await runSseCase({
        dir, upstreamUrl: upstream.url, upstreamPid: upstream.child.pid, entry: SERVER,
        events: SSE_EVENTS, delayMs: SSE_DELAY_MS,
        connections: CONNECTIONS, seconds: SECONDS, warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS,
        profileFlags, profileDir: PROFILE_DIR,
      })) && ok;
    }
    return ok ? 0 : 1;
  } finally {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The plain-HTTP case: GET / answered with a small JSON body; false when the run went wrong. */
async function plainCase(root: string, upstream: Awaited<ReturnType<typeof forkServer>>): Promise<boolean> {
  const dir = join(root, 'plain');
  mkdirSync(dir);
  const bare = await forkServer('bare proxy', new URL('./bench/bare-proxy.ts', import.meta.url), { UPSTREAM_URL: upstream.url }, profileFlags('bare'));
  const gateway = await startGateway({ dir, upstreamUrl: upstream.url, entry: SERVER, nodeFlags: profileFlags('gateway') });

  const targets: Target[] = [
    { name: 'upstream (direct)', url: upstream.url, headers: {}, pid: upstream.child.pid },
    { name: 'bare proxy', url: bare.url, headers: {}, pid: bare.child.pid },
    { name: 'gateway', url: gateway.url, headers: { authorization: `Bearer ${gateway.key}` }, pid: gateway.pid },
  ];
  const tallies = await measure(targets, {
    connections: CONNECTIONS, seconds: SECONDS, warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS, unit: 'req',
  });

  const exitCode = await gateway.stop();
  await stop(bare.child); // a clean exit writes its CPU profile
  if (exitCode !== 0) throw new Error(`gateway exited with ${exitCode} on SIGTERM\n${gateway.output()}`);
  const usageRows = gateway.usageRows();

  const report = targets.map((t) => summarize(t.name, tallies.get(t)!));
  printPlainTable(report);
  const [, bareRow, gatewayRow] = report;
  const ratio = gatewayRow.rps / bareRow.rps;
  const addedP50 = gatewayRow.p50 - bareRow.p50;
  console.log();
  console.log(`gateway / bare proxy requests/s: ${ratio.toFixed(3)} (${(ratio * 100).toFixed(1)}%; target ≥ ${MIN_RATIO * 100}%)${ratio >= MIN_RATIO ? '' : '  BELOW TARGET'}`);
  console.log(`gateway CPU per request: ${gatewayRow.cpuUs.toFixed(1)} µs vs bare ${bareRow.cpuUs.toFixed(1)} µs ` +
    `(+${(gatewayRow.cpuUs - bareRow.cpuUs).toFixed(1)} µs; each server process alone, upstream excluded)`);
  console.log(`added p50 latency: ${addedP50 >= 0 ? '+' : ''}${addedP50.toFixed(3)} ms (target < ${MAX_ADDED_P50_MS} ms)${addedP50 < MAX_ADDED_P50_MS ? '' : '  ABOVE TARGET'}`);

  // Every gateway response (warm-up included) leaves a usage row. A run ends by dropping its
  // connections: up to one request per connection was in flight, reached the gateway (and its
  // usage table) but was never counted by autocannon.
  const { handled: gatewayResponses, runs: gatewayRuns } = tallies.get(targets[2])!;
  const inFlight = CONNECTIONS * gatewayRuns;
  const extra = usageRows - gatewayResponses;
  const usageOk = extra >= 0 && extra <= inFlight;
  console.log(`usage rows: ${usageRows}; gateway responses counted: ${gatewayResponses} (warm-up included); ` +
    `difference ${extra} (expected 0…${inFlight})${usageOk ? '' : '  MISMATCH'}`);

  if (PROFILE_DIR) {
    console.log(profileReport(PROFILE_DIR, 'request', { dir: 'bare', handled: tallies.get(targets[1])!.handled },
      { dir: 'gateway', handled: gatewayResponses }));
  }

  const failed = report.filter((r) => r.errors > 0 || r.non2xx > 0);
  for (const r of failed) console.error(`bench: ${r.name} saw ${r.errors} errors and ${r.non2xx} non-2xx responses`);
  if (!usageOk) console.error('bench: usage rows do not match the responses the gateway gave');
  return failed.length === 0 && usageOk;
}

function printPlainTable(rows: Row[]): void {
  printTable(
    ['target', 'req/s (mean)', 'p50 ms', 'p99 ms', 'CPU µs/req', '2xx', 'errors', 'non-2xx'],
    rows.map((r) => [
      r.name, r.rps.toFixed(0), r.p50.toFixed(3), r.p99.toFixed(3), r.cpuUs.toFixed(1), String(r.ok), String(r.errors), String(r.non2xx),
    ]),
  );
}

function profileFlags(name: string): string[] {
  return PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE_DIR, name)}`] : [];
}

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`${name}: expected a positive integer, got "${raw}"`);
  return Number(raw);
}

function nonNegativeInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`${name}: expected a whole number, got "${raw}"`);
  return Number(raw);
}

function cases(raw: string | undefined): Set<'plain' | 'sse'> {
  const names = (raw || 'plain,sse').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => n !== 'plain' && n !== 'sse');
  if (bad.length > 0 || names.length === 0) throw new Error(`BENCH_CASES: expected plain, sse or both, got "${raw}"`);
  return new Set(names as ('plain' | 'sse')[]);
}

function fail(err: Error): never {
  console.error(`bench: ${err.message}`);
  killAll();
  process.exit(2);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => fail(new Error(`stopped by ${signal}`)));
main().then((code) => process.exit(code), fail);
