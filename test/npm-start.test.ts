// `npm start` stops with its gateway: SIGTERM to npm reaches node (no gateway left running
// orphaned, holding the port and the database lock) and the stop is clean.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { tempDir } from './helpers.ts';
import { freePort } from './server-process.ts';
import { until } from './until.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every process below `pid`, with its command line (Linux /proc). */
function descendants(pid: number): { pid: number; cmd: string }[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name in parentheses may hold spaces: the fields after its ")" are fixed.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const found: { pid: number; cmd: string }[] = [];
  const below = (p: number) => {
    for (const [child, parent] of parentOf) {
      if (parent !== p) continue;
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').join(' ').trim();
      } catch {
        // gone meanwhile
      }
      found.push({ pid: child, cmd });
      below(child);
    }
  };
  below(pid);
  return found;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it('SIGTERM to `npm start` stops the gateway it started, and npm exits 0', { timeout: 20_000 }, async () => {
  const port = await freePort();
  const dir = tempDir();
  // --ignore-scripts skips prestart (the build; npm test has built dist/ already).
  const npm = spawn('npm', ['start', '--ignore-scripts', '--silent'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: dir, PORT: String(port), DATABASE_PATH: join(dir, 'tollgate.db'), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  npm.stdout.on('data', (c: Buffer) => (out += c));
  npm.stderr.on('data', (c: Buffer) => (out += c));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', resolve));

  await until(() => fetch(`http://127.0.0.1:${port}/_tollgate/ready`).then((r) => r.status === 200, () => false), 10_000, `npm start to serve:\n${out}`);
  const below = descendants(npm.pid!);
  expect(below.map((p) => p.cmd)).toContainEqual(expect.stringMatching(/node dist\/server\.js$/));

  npm.kill('SIGTERM');
  try {
    expect(await exited).toBe(0);
    await until(() => below.every((p) => !alive(p.pid)), 5_000, `the processes npm started to end: ${JSON.stringify(below)}`);
  } finally {
    for (const p of below) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL'); // an orphan, when this fails
  }
  const refused = await fetch(`http://127.0.0.1:${port}/_tollgate/health`).then(() => false, () => true);
  expect(refused).toBe(true);
});
