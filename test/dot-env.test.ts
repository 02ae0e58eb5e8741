// ./.env is loaded by the gateway and the CLI before their settings are read; the environment wins
// over the file; a line the parser would misread stops the program with one line naming it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DotEnvError, loadDotEnv } from '../src/dot-env.ts';
import { tempDir } from './helpers.ts';
import { freePort, SERVER_JS } from './server-process.ts';
import { until } from './until.ts';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const SLOW = { timeout: 30_000 };

/** A directory holding `.env` with `text`. */
function dirWithDotEnv(text: string): string {
  const dir = tempDir();
  writeFileSync(join(dir, '.env'), text);
  return dir;
}

/** Only PATH from this process: nothing of the test runner's environment reaches the child. */
const bare = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? '', ...extra });

describe('loadDotEnv', () => {
  it('adds what the environment lacks and keeps what it has, quoted and multi-line values included', () => {
    const dir = dirWithDotEnv([
      '# settings', '', 'PORT=9000', 'export LOG_LEVEL=debug', 'HOST = 0.0.0.0 ',
      'CERT="line one', 'line two"', "SINGLE='a # b'", 'EMPTY=', 'TRAILING=x # comment',
    ].join('\r\n'));
    const env: Record<string, string | undefined> = { PORT: '7000', EMPTY: 'kept' };
    loadDotEnv(env, join(dir, '.env'));
    expect(env).toEqual({
      PORT: '7000', EMPTY: 'kept', LOG_LEVEL: 'debug', HOST: '0.0.0.0', CERT: 'line one\nline two', SINGLE: 'a # b', TRAILING: 'x',
    });
  });

  it('does nothing without a file', () => {
    const env = {};
    loadDotEnv(env, join(tempDir(), '.env'));
    expect(env).toEqual({});
  });

  it('refuses a line that is not NAME=value, by its number, without echoing it', () => {
    const dir = dirWithDotEnv('PORT=9000\nsk-not-a-setting\nHOST=x\n');
    const path = join(dir, '.env');
    expect(() => loadDotEnv({}, path)).toThrow(DotEnvError);
    expect(() => loadDotEnv({}, path)).toThrow(`${path} line 2: expected NAME=value (a name of letters, digits and _)`);
    expect(() => loadDotEnv({}, path)).not.toThrow(/sk-not/);
  });
});

describe('.env in the working directory', () => {
  /** Starts dist/server.js in `cwd`; resolves with its output once `port` answers ready, after SIGTERM. */
  async function serveOnce(cwd: string, port: number, env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
    const child = spawn(process.execPath, [SERVER_JS], { cwd, env: bare(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let gone = false;
    void exited.then(() => (gone = true));
    try {
      await until(async () => {
        if (gone) throw new Error(`the server exited:\n${out}`);
        return fetch(`http://127.0.0.1:${port}/_tollgate/ready`).then((r) => r.status === 200, () => false);
      }, 10_000, `the server on port ${port}`);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    child.kill('SIGTERM');
    return { code: await exited, out };
  }

  it('gives the gateway its port, database and log level; an environment variable wins over the file', SLOW, async () => {
    const port = await freePort();
    const cwd = dirWithDotEnv(`PORT=${port}\nDATABASE_PATH=./state/from-file.db\nLOG_LEVEL=warn\n`);
    const quiet = await serveOnce(cwd, port);
    expect(quiet.code).toBe(0);
    expect(existsSync(join(cwd, 'state', 'from-file.db'))).toBe(true);
    expect(quiet.out).not.toContain('"listening"');

    const loud = await serveOnce(cwd, port, { LOG_LEVEL: 'info' });
    expect(loud.code).toBe(0);
    expect(loud.out).toContain('"msg":"listening"');
  });

  it('gives the CLI its database; an environment variable wins over the file', SLOW, () => {
    const cwd = dirWithDotEnv('DATABASE_PATH=./from-file.db\n');
    const fromFile = spawnSync(process.execPath, [CLI, 'migrate', '--json'], { cwd, env: bare(), encoding: 'utf8' });
    expect(fromFile.status).toBe(0);
    expect(JSON.parse(fromFile.stdout).database).toBe(join(cwd, 'from-file.db'));

    const fromEnv = spawnSync(process.execPath, [CLI, 'migrate', '--json'], { cwd, env: bare({ DATABASE_PATH: './from-env.db' }), encoding: 'utf8' });
    expect(fromEnv.status).toBe(0);
    expect(JSON.parse(fromEnv.stdout).database).toBe(join(cwd, 'from-env.db'));
  });

  it('a malformed .env stops the gateway and the CLI with one line and exit 78', SLOW, () => {
    const cwd = dirWithDotEnv('PORT=8080\nLOG_LEVEL\n');
    mkdirSync(join(cwd, 'data'));
    for (const program of [SERVER_JS, CLI]) {
      const r = spawnSync(process.execPath, [program, ...(program === CLI ? ['accounts', 'list'] : [])], { cwd, env: bare(), encoding: 'utf8', timeout: 10_000 });
      expect(r.stderr).toBe('tollgate: .env line 2: expected NAME=value (a name of letters, digits and _)\n');
      expect(r.stdout).toBe('');
      expect(r.status).toBe(78);
    }
  });
});
