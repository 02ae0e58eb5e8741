// The bench's child processes: started here, tracked, and all stopped at the end or on error.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ReadyMessage } from './child.ts';

const START_TIMEOUT_MS = 15_000;
const children = new Set<ChildProcess>();

/** Forks one of the bench's own servers (upstream.ts, bare-proxy.ts) and waits for its port. */
export async function forkServer(
  name: string, file: URL, env: Record<string, string> = {}, nodeFlags: string[] = [],
): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(file, [], {
    execArgv: ['--import', 'tsx', ...nodeFlags],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const ready = await withTimeout(name, new Promise<ReadyMessage>((resolve, reject) => {
    child.once('message', (m) => resolve(m as ReadyMessage));
    child.once('exit', (code, signal) => reject(new Error(`${name} exited before listening (${signal ?? code})`)));
    child.once('error', reject);
  }));
  return { child, url: `http://127.0.0.1:${ready.port}` };
}

/** Spawns a process the bench does not own the code of (the gateway, wrk), output kept for errors. */
export function spawnTracked(command: string, args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  // The last few KB of its output: enough to explain a failure, bounded under a flood of warnings.
  let tail = '';
  const keep = (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-8192));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => tail };
}

/** Sends `signal` and waits for the exit; SIGKILL after `graceMs`. Resolves with the exit code. */
export async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const [code] = (await exited) as [number | null];
  clearTimeout(timer);
  return code;
}

/** The last resort, on every way out: nothing the bench started outlives it. */
export function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

// USER_HZ: the unit of utime and stime in /proc/<pid>/stat, 100 on every Linux that matters.
const CLOCK_TICKS_PER_S = 100;

/**
 * CPU time (user + system) the process has used so far, in ms; undefined without /proc. Under a
 * noisy machine, CPU per request moves far less than requests/s does.
 */
export function cpuTimeMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // proc(5): the fields after "(comm)" start at field 3; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/**
 * Resident memory of the process in MB: now (VmRSS in /proc/<pid>/status), or its peak so far
 * (VmHWM); undefined without /proc. Now moves by tens of MB with when the last full collection
 * of the heap ran; the peak does not.
 */
export function rssMb(pid: number | undefined, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return kb ? Number(kb[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A port that was free a moment ago (the gateway takes PORT from its environment). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

export function withTimeout<T>(what: string, promise: Promise<T>, ms = START_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
