// Load generation and its arithmetic, shared by the bench's cases: autocannon runs against each
// target in turn, tallied per target, summarized into percentiles, printed as a table.
import autocannon from 'autocannon';
import { cpuTimeMs } from './processes.ts';

export interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  /** The server process behind the URL, whose CPU time is measured. */
  pid: number | undefined;
  /** A POST with this body; with `expectBody`, a response whose body differs counts as a mismatch. */
  post?: { body: string; expectBody?: string };
}

export interface LoadOptions {
  connections: number;
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  /** What a response is called in the progress lines: "req", "streams". */
  unit: string;
}

/** What all of a target's measured runs add up to. */
export interface Tally {
  /** Complete responses per second (those with the expected body, when one is expected). */
  rps: number[];
  /** Latency of every 2xx response, in ms, at microsecond resolution. */
  latenciesMs: number[];
  ok: number;
  non2xx: number;
  errors: number;
  /** Responses whose body was not the expected one (a stream cut short or altered). */
  mismatches: number;
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
  mismatches: number;
}

/**
 * Every target for `seconds`, `rounds` times (the first run of each preceded by a warm-up), the
 * order of the last two alternated across rounds so that neither proxy always runs on a hotter
 * or cooler machine.
 */
export async function measure(targets: Target[], o: LoadOptions): Promise<Map<Target, Tally>> {
  const tallies = new Map<Target, Tally>(targets.map((t) => [t, {
    rps: [], latenciesMs: [], ok: 0, non2xx: 0, errors: 0, mismatches: 0, handled: 0, runs: 0, cpuMs: 0,
  }]));
  for (let round = 0; round < o.rounds; round++) {
    const order = round % 2 === 0 || targets.length !== 3 ? targets : [targets[0], targets[2], targets[1]];
    for (const target of order) {
      const tally = tallies.get(target)!;
      if (round === 0) count(tally, await load(target, o.warmupSeconds, o.connections));
      const measured = await load(target, o.seconds, o.connections);
      count(tally, measured);
      add(tally, measured);
      console.log(`  ${target.name}: ${measured.rps.toFixed(0)} ${o.unit}/s`);
    }
  }
  return tallies;
}

/** One autocannon run; latencies are taken from each response rather than autocannon's whole-ms histogram. */
async function load(target: Target, seconds: number, connections: number): Promise<Run> {
  const latenciesMs: number[] = [];
  const cpuBefore = cpuTimeMs(target.pid) ?? NaN;
  const post = target.post
    ? { method: 'POST' as const, body: target.post.body, expectBody: target.post.expectBody }
    : {};
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url: target.url, headers: target.headers, connections, pipelining: 1, duration: seconds, ...post },
      (err: Error | null, res: autocannon.Result) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latenciesMs.push(ms);
    });
  });
  const cpuMs = (cpuTimeMs(target.pid) ?? NaN) - cpuBefore;
  const responses = result['2xx'] + result.non2xx;
  // Only whole, expected responses count towards the rate.
  const complete = responses === 0 ? 0 : Math.max(0, result['2xx'] - result.mismatches) / responses;
  return {
    rps: result.requests.mean * complete, cpuMs, latenciesMs,
    ok: result['2xx'], non2xx: result.non2xx, errors: result.errors, mismatches: result.mismatches,
  };
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
  tally.mismatches += run.mismatches;
}

export interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  /** CPU time of the target's process per response, in µs. */
  cpuUs: number;
  ok: number;
  non2xx: number;
  errors: number;
  mismatches: number;
}

export function summarize(name: string, t: Tally): Row {
  const sorted = Float64Array.from(t.latenciesMs).sort();
  const at = (p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]);
  const rps = t.rps.reduce((a, b) => a + b, 0) / t.rps.length;
  const cpuUs = (t.cpuMs * 1000) / (t.ok + t.non2xx);
  return { name, rps, p50: at(0.5), p99: at(0.99), cpuUs, ok: t.ok, non2xx: t.non2xx, errors: t.errors, mismatches: t.mismatches };
}

/** First column left-aligned, the others right-aligned. */
export function printTable(header: string[], cells: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  console.log();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}
