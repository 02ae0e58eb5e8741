// Measures what the gateway costs: the same local upstream is loaded directly, through a bare
// node:http + undici proxy, and through the gateway (auth, three rate-limit windows, quota, usage
// rows), one after the other in one run, and prints the gateway/bare ratio (STYLE.md habit 10).
//
//   npm run bench                       build, then 10 s per target
//   BENCH_SECONDS=30 BENCH_ROUNDS=3     longer runs, targets alternated across rounds
//   BENCH_PROFILE=/tmp/prof             also CPU-profile the gateway and the bare proxy; list hot functions
//   BENCH_SERVER=/tmp/other/server.js   bench another gateway build (default dist/server.js)
//
// Every server runs in its own process on 127.0.0.1; this process only generates load.
import autocannon from 'autocannon';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatCpuSummary, summarizeCpuProfile } from './bench/cpu-profile.ts';
import { startGateway } from './bench/gateway.ts';
import { cpuTimeMs, forkServer, killAll, stop } from './bench/processes.ts';

const SECONDS = positiveInt('BENCH_SECONDS', 10);
const ROUNDS = positiveInt('BENCH_ROUNDS', 1);
const PROFILE_DIR = process.env.BENCH_PROFILE ? resolve(process.env.BENCH_PROFILE) : undefined;
const SERVER = process.env.BENCH_SERVER || 'dist/server.js';
const WARMUP_SECONDS = 2;
const CONNECTIONS = 10;
// The targets: at least 85% of the bare proxy's requests/s, under 0.2 ms added at p50.
const MIN_RATIO = 0.85;
const MAX_ADDED_P50_MS = 0.2;

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  /** The server process behind the URL, whose CPU time is measured. */
  pid: number | undefined;
}

/** What all of a target's measured runs add up to. */
interface Tally {
  rps: number[];
  /** Latency of every 2xx response, in ms, at microsecond resolution. */
  latenciesMs: number[];
  ok: number;
  non2xx: number;
  errors: number;
  /** Every response, warm-up included, and how many runs: what the server itself handled. */
  handled: number;
  runs: number;
  /** CPU time of the target's process during the measured runs (NaN without /proc). */
  cpuMs: number;
}

interface Run {
  rps: number;
  cpuMs: number;
  latenciesMs: number[];
  ok: number;
  non2xx: number;
  errors: number;
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  // Past this, something hangs: stop everything rather than wait.
  const budgetMs = (3 * ROUNDS * SECONDS + 3 * WARMUP_SECONDS + 90) * 1000;
  setTimeout(() => fail(new Error(`gave up after ${budgetMs / 1000} s`)), budgetMs).unref();
  try {
    const upstream = await forkServer('upstream', new URL('./bench/upstream.ts', import.meta.url));
    const bare = await forkServer('bare proxy', new URL('./bench/bare-proxy.ts', import.meta.url), { UPSTREAM_URL: upstream.url }, profileFlags('bare'));
    const gateway = await startGateway({ dir, upstreamUrl: upstream.url, entry: SERVER, nodeFlags: profileFlags('gateway') });

    const targets: Target[] = [
      { name: 'upstream (direct)', url: upstream.url, headers: {}, pid: upstream.child.pid },
      { name: 'bare proxy', url: bare.url, headers: {}, pid: bare.child.pid },
      { name: 'gateway', url: gateway.url, headers: { authorization: `Bearer ${gateway.key}` }, pid: gateway.pid },
    ];
    const tallies = new Map<Target, Tally>(targets.map((t) => [t, {
      rps: [], latenciesMs: [], ok: 0, non2xx: 0, errors: 0, handled: 0, runs: 0, cpuMs: 0,
    }]));

    console.log(`tollgate bench: ${CONNECTIONS} connections, ${SECONDS} s per target × ${ROUNDS} round(s), ${WARMUP_SECONDS} s warm-up`);
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order so that neither proxy always runs on a hotter or cooler machine.
      const order = round % 2 === 0 ? targets : [targets[0], targets[2], targets[1]];
      for (const target of order) {
        const tally = tallies.get(target)!;
        if (round === 0) count(tally, await load(target, WARMUP_SECONDS));
        const measured = await load(target, SECONDS);
        count(tally, measured);
        add(tally, measured);
        console.log(`  ${target.name}: ${measured.rps.toFixed(0)} req/s`);
      }
    }

    const exitCode = await gateway.stop();
    await stop(bare.child); // a clean exit writes its CPU profile
    if (exitCode !== 0) throw new Error(`gateway exited with ${exitCode} on SIGTERM\n${gateway.output()}`);
    const usageRows = gateway.usageRows();

    const report = targets.map((t) => summarize(t.name, tallies.get(t)!));
    printTable(report);
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

    if (PROFILE_DIR) printProfiles(PROFILE_DIR, tallies.get(targets[1])!, tallies.get(targets[2])!);

    const failed = report.filter((r) => r.errors > 0 || r.non2xx > 0);
    for (const r of failed) console.error(`bench: ${r.name} saw ${r.errors} errors and ${r.non2xx} non-2xx responses`);
    if (!usageOk) console.error('bench: usage rows do not match the responses the gateway gave');
    return failed.length > 0 || !usageOk ? 1 : 0;
  } finally {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One autocannon run; latencies are taken from each response rather than autocannon's whole-ms histogram. */
async function load(target: Target, seconds: number): Promise<Run> {
  const latenciesMs: number[] = [];
  const cpuBefore = cpuTimeMs(target.pid) ?? NaN;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url: target.url, headers: target.headers, connections: CONNECTIONS, pipelining: 1, duration: seconds },
      (err: Error | null, res: autocannon.Result) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latenciesMs.push(ms);
    });
  });
  const cpuMs = (cpuTimeMs(target.pid) ?? NaN) - cpuBefore;
  return { rps: result.requests.mean, cpuMs, latenciesMs, ok: result['2xx'], non2xx: result.non2xx, errors: result.errors };
}

function count(tally: Tally, run: Run): void {
  tally.handled += run.ok + run.non2xx;
  tally.runs++;
}

function add(tally: Tally, run: Run): void {
  tally.rps.push(run.rps);
  tally.cpuMs += run.cpuMs;
  for (const ms of run.latenciesMs) tally.latenciesMs.push(ms);
  tally.ok += run.ok;
  tally.non2xx += run.non2xx;
  tally.errors += run.errors;
}

interface Row { name: string; rps: number; p50: number; p99: number; cpuUs: number; ok: number; non2xx: number; errors: number }

function summarize(name: string, t: Tally): Row {
  const sorted = Float64Array.from(t.latenciesMs).sort();
  const at = (p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]);
  const rps = t.rps.reduce((a, b) => a + b, 0) / t.rps.length;
  const cpuUs = (t.cpuMs * 1000) / (t.ok + t.non2xx);
  return { name, rps, p50: at(0.5), p99: at(0.99), cpuUs, ok: t.ok, non2xx: t.non2xx, errors: t.errors };
}

function printTable(rows: Row[]): void {
  const header = ['target', 'req/s (mean)', 'p50 ms', 'p99 ms', 'CPU µs/req', '2xx', 'errors', 'non-2xx'];
  const cells = rows.map((r) => [
    r.name, r.rps.toFixed(0), r.p50.toFixed(3), r.p99.toFixed(3), r.cpuUs.toFixed(1), String(r.ok), String(r.errors), String(r.non2xx),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  console.log();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

function profileFlags(name: string): string[] {
  return PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE_DIR, name)}`] : [];
}

/** CPU per request of both proxies, then where the gateway's time went. */
function printProfiles(dir: string, bare: Tally, gateway: Tally): void {
  // The main thread's profile: its name ends in ".<pid>.0.<seq>.cpuprofile" (0 is the thread id;
  // tsx's loader thread in the bare proxy writes another one).
  const latest = (name: string) => {
    const files = readdirSync(join(dir, name)).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f)).sort();
    return files.length > 0 ? join(dir, name, files[files.length - 1]) : undefined;
  };
  const bareFile = latest('bare');
  const gatewayFile = latest('gateway');
  if (!bareFile || !gatewayFile) return void console.log(`\nno .cpuprofile under ${dir}`);
  const bareCpu = summarizeCpuProfile(bareFile);
  const gatewayCpu = summarizeCpuProfile(gatewayFile);
  const perRequest = (busyMs: number, t: Tally) => `${((busyMs * 1000) / t.handled).toFixed(1)} µs`;
  console.log(`\nCPU per request (warm-up included): bare proxy ${perRequest(bareCpu.busyMs, bare)}, gateway ${perRequest(gatewayCpu.busyMs, gateway)}`);
  console.log(`gateway profile: ${gatewayFile}`);
  console.log(formatCpuSummary(gatewayCpu));
}

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`${name}: expected a positive integer, got "${raw}"`);
  return Number(raw);
}

function fail(err: Error): never {
  console.error(`bench: ${err.message}`);
  killAll();
  process.exit(2);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => fail(new Error(`stopped by ${signal}`)));
main().then((code) => process.exit(code), fail);
