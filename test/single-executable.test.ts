// `npm run package` builds one executable that is the whole of Tollgate: run from an empty
// directory with no node_modules anywhere near it, it migrates, runs CLI commands and serves.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.ts';
import { freePort } from './server-process.ts';
import { until } from './until.ts';

const run = promisify(execFile);
const PACKAGE = fileURLToPath(new URL('../scripts/package.mjs', import.meta.url));
const MIGRATIONS = readdirSync(fileURLToPath(new URL('../migrations/', import.meta.url))).filter((f) => f.endsWith('.sql'));

describe('the single executable', () => {
  let binary: string;
  let cwd: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    const out = tempDir();
    binary = join(out, 'tollgate');
    await run(process.execPath, [PACKAGE, binary]);
    cwd = tempDir();
    env = { PATH: '/usr/bin:/bin', XDG_CACHE_HOME: join(tempDir(), 'cache'), DATABASE_PATH: join(cwd, 'tollgate.db'), LOG_LEVEL: 'warn' };
  }, 60_000);

  const tollgate = async (...args: string[]) => JSON.parse((await run(binary, [...args, '--json'], { cwd, env })).stdout) as Record<string, unknown>;

  it('migrates, creates an account and a key, serves the demo route with it and stops on SIGTERM with 0', { timeout: 30_000 }, async () => {
    expect(readdirSync(cwd)).toEqual([]);
    const migrated = await tollgate('migrate');
    expect(migrated.applied).toHaveLength(MIGRATIONS.length);
    const account = await tollgate('accounts', 'create', '--email', 'sea@example.com');
    const { key } = await tollgate('keys', 'create', '--account', String(account.id)) as { key: string };

    // The addon was unpacked where only this user can reach it.
    const cache = join(env.XDG_CACHE_HOME, 'tollgate');
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    expect(readdirSync(cache)).toEqual([expect.stringMatching(/^better_sqlite3-[0-9a-f]{16}\.node$/)]);

    const port = await freePort();
    const child = spawn(binary, [], { cwd, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const url = `http://127.0.0.1:${port}`;
      await until(() => fetch(`${url}/_tollgate/ready`).then((r) => r.status === 200, () => false), 10_000, `the executable to serve:\n${out}`);
      const res = await fetch(`${url}/demo/hello`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      const echoed = await res.json() as { path: string; headers: Record<string, string> };
      expect(echoed.path).toBe('/hello');
      expect(echoed.headers['x-tollgate-account']).toBe(account.id);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('refuses to load its SQLite addon from a directory other users can write to', async () => {
    const shared = join(tempDir(), 'tollgate');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const failed = await run(binary, ['accounts', 'list'], { cwd, env: { ...env, XDG_CACHE_HOME: join(shared, '..') } }).then(
      () => undefined, (err: { code: number; stderr: string }) => err);
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toBe(`tollgate: ${shared} must be a directory owned by this user and writable by no one else (to unpack the SQLite addon); remove it or set XDG_CACHE_HOME\n`);
  });
});
