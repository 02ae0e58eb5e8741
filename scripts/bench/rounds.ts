// Two servers compared in one run: a warm-up each, then rounds that alternate A, B, A, B… so that
// both see the same machine (other work on a shared 2-core box comes and goes), every figure the
// median over the rounds, each round printed. CPU is each server process's own user + system
// time over the round (/proc/<pid>/stat), divided by the responses wrk counted.
import { cpuTimeMs } from './processes.ts';
import { wrk, type WrkLoad, type WrkResult } from './wrk.ts';

export interface Side {
  name: string;
  pid: number | undefined;
  load: WrkLoad;
  /** Instead of a timed warm-up, e.g. one request per key (stop after that many responses). */
  warmupResponses?: number;
}

export interface RoundOptions {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  /** What a response is: a request or a whole stream. */
  unit: 'req' | 'stream';
}

export interface Figures {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuUs: number;
}

export interface SideResult {
  side: Side;
  rounds: Figures[];
  median: Figures;
  /** Every response wrk counted, warm-up included, and how many runs: what the server handled. */
  responses: number;
  runs: number;
  /** Errors, non-2xx and mismatched bodies, warm-up included. */
  failures: string[];
}

/** Runs the rounds, prints them, and returns both sides and the median of B/A over the rounds. */
export async function alternate(a: Side, b: Side, o: RoundOptions): Promise<{ a: SideResult; b: SideResult; ratio: number }> {
  const results = [a, b].map((side) => ({ side, rounds: [] as Figures[], responses: 0, runs: 0, failures: [] as string[] }));
  const tally = (r: (typeof results)[number], run: WrkResult, what: string) => {
    r.responses += run.requests;
    r.runs++;
    if (run.errors > 0) r.failures.push(`${r.side.name}, ${what}: ${run.errorText}`);
    if (run.mismatches > 0) r.failures.push(`${r.side.name}, ${what}: ${run.mismatches} responses not the expected body`);
  };
  for (const r of results) {
    const { warmupResponses: n } = r.side;
    tally(r, await wrk(r.side.load, n ? { connections: o.connections, stopAfter: n } : { connections: o.connections, seconds: o.warmupSeconds }), 'warm-up');
  }
  const ratios: number[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const r of results) {
      const before = cpuTimeMs(r.side.pid) ?? NaN;
      const run = await wrk(r.side.load, { connections: o.connections, seconds: o.seconds });
      const cpuMs = (cpuTimeMs(r.side.pid) ?? NaN) - before;
      tally(r, run, `round ${round}`);
      r.rounds.push({ rps: run.requests / run.seconds, p50Ms: run.p50Ms, p99Ms: run.p99Ms, cpuUs: (cpuMs * 1000) / run.requests });
    }
    const [fa, fb] = results.map((r) => r.rounds[round - 1]);
    ratios.push(fb.rps / fa.rps);
    console.log(`  round ${round}: ${describe(a.name, fa, o.unit)} | ${describe(b.name, fb, o.unit)} | ${ratios[round - 1].toFixed(3)}`);
  }
  const [ra, rb] = results.map((r) => ({ ...r, median: medians(r.rounds) }));
  printMedians([ra, rb], o.unit);
  return { a: ra, b: rb, ratio: median(ratios) };
}

const rate = (unit: RoundOptions['unit']) => (unit === 'req' ? 'req/s' : 'streams/s');

function describe(name: string, f: Figures, unit: RoundOptions['unit']): string {
  return `${name} ${f.rps.toFixed(0)} ${rate(unit)}, p50 ${f.p50Ms.toFixed(2)} ms, p99 ${f.p99Ms.toFixed(2)} ms, ${f.cpuUs.toFixed(1)} µs CPU`;
}

function printMedians(sides: SideResult[], unit: RoundOptions['unit']): void {
  const rows = [
    [`median of ${sides[0].rounds.length} round${sides[0].rounds.length === 1 ? '' : 's'}`, rate(unit), 'p50 ms', 'p99 ms', `CPU µs/${unit}`],
    ...sides.map(({ side, median: m }) => [side.name, m.rps.toFixed(0), m.p50Ms.toFixed(2), m.p99Ms.toFixed(2), m.cpuUs.toFixed(1)]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(`  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`);
}

function medians(rounds: Figures[]): Figures {
  const of = (k: keyof Figures) => median(rounds.map((f) => f[k]));
  return { rps: of('rps'), p50Ms: of('p50Ms'), p99Ms: of('p99Ms'), cpuUs: of('cpuUs') };
}

export function median(values: number[]): number {
  const s = [...values].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** "… 0.812 (target ≥ 0.85)  BELOW TARGET": a missed target is said, never an exit code. */
export function verdict(what: string, value: string, target: string, met: boolean, missed = 'BELOW TARGET'): void {
  console.log(`  ${what}: ${value} (target ${target})${met ? '' : `  ${missed}`}`);
}
