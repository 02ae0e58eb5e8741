// The load generator: wrk, in C, on one thread. A generator written for Node (autocannon) takes a
// core of its own on a 2-core machine and competes with the servers it measures; wrk's thread
// costs a fraction of that and the same for both sides of a comparison.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { spawnTracked } from './processes.ts';

const SCRIPT = fileURLToPath(new URL('./load.lua', import.meta.url));
// A run with stopAfter ends on its count (load.lua says so, then wrk gets SIGINT); this only bounds it.
const STOP_AFTER_CAP_S = 600;

export interface WrkLoad {
  url: string;
  /** One key a line, round-robin; none: no Authorization header. */
  keysFile?: string;
  /** POSTed as application/json; none: GET. */
  bodyFile?: string;
  /** The exact body every response must have (the others count as mismatches). */
  expectFile?: string;
}

export interface WrkResult {
  /** Complete responses, of any status. */
  requests: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  /** Socket errors, timeouts and statuses above 399. */
  errors: number;
  mismatches: number;
  /** The error counts by kind, for a message. */
  errorText: string;
}

/** Exits 2 with how to install wrk when it is not on the PATH. */
export function requireWrk(): void {
  if (spawnSync('wrk', ['--version']).error === undefined) return;
  process.stderr.write('bench: wrk is not installed; it generates the load (on Debian or Ubuntu: apt-get install wrk)\n');
  process.exit(2);
}

/** One wrk run: for `seconds`, or until `stopAfter` responses arrived. */
export async function wrk(load: WrkLoad, o: { connections: number; seconds?: number; stopAfter?: number }): Promise<WrkResult> {
  const seconds = o.stopAfter ? STOP_AFTER_CAP_S : o.seconds!;
  const args = [
    '-t1', `-c${o.connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', SCRIPT, load.url, '--',
    load.keysFile ?? '-', load.bodyFile ?? '-', load.expectFile ?? '-', String(o.stopAfter ?? 0),
  ];
  const { child, output } = spawnTracked('wrk', args, {});
  if (o.stopAfter) child.stdout!.on('data', (chunk: Buffer) => chunk.includes('BENCH stop\n') && child.kill('SIGINT'));
  const [code] = (await once(child, 'exit')) as [number | null];
  const line = output().split('\n').find((l) => l.startsWith('BENCH {'));
  if (code !== 0 || !line) throw new Error(`wrk ${args.join(' ')} exited with ${code}\n${output()}`);
  const r = JSON.parse(line.slice('BENCH '.length)) as {
    requests: number; durationUs: number; p50Us: number; p99Us: number; mismatches: number; errors: Record<string, number>;
  };
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  const errorText = Object.entries(r.errors).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ');
  return {
    requests: r.requests, seconds: r.durationUs / 1e6, p50Ms: r.p50Us / 1000, p99Ms: r.p99Us / 1000,
    errors, mismatches: r.mismatches, errorText,
  };
}
