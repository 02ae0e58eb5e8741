// The tollgate CLI. Most cases run the program in-process (test/cli-run.ts) against a temp SQLite
// file or the file a running gateway serves (another connection, as another process would be);
// a few run the built bin (dist/cli.js) as a child process, where the working directory, the exit
// status of a real process and a second process on the file are what is being proved.
import Database from 'better-sqlite3';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { expectFailure, parsed, runCli, type CliRun } from './cli-run.ts';
import { bearer, fakeClock, fetchText, seedAccount, startGateway, startUpstream, tempDir, type TestGateway, type Upstream } from './helpers.ts';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const DAY_MS = 86_400_000;
// Tests that start node child processes (~0.2 s each, more on a loaded machine).
const SLOW = { timeout: 30_000 };
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const month = (t: number) => new Date(t).toISOString().slice(0, 7);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface ProcessOptions { cwd?: string; env?: Record<string, string> }

/** The parent's environment without anything that would point the CLI elsewhere. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['DATABASE_PATH', 'TOLLGATE_CONFIG', 'UPSTREAM_URL', 'PORT', 'HOST', 'LOG_LEVEL']) delete env[name];
  return { ...env, ...extra };
}

/** Runs dist/cli.js and waits (blocking): for tests with no server in this process. */
function cliProcess(args: string[], { cwd = tempDir(), env = {} }: ProcessOptions = {}): CliRun {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: childEnv(env), encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs dist/cli.js without blocking this process's event loop, so an in-process gateway keeps serving. */
function cliProcessAsync(args: string[], { cwd = tempDir(), env = {} }: ProcessOptions = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, env: childEnv(env), encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const isoNear = (value: unknown, from: number, to: number) => {
  expect(value).toMatch(ISO);
  const t = Date.parse(value as string);
  expect(t).toBeGreaterThanOrEqual(from);
  expect(t).toBeLessThanOrEqual(to);
};

interface AccountJson {
  id: string; email: string; name: string | null; plan: string; status: string; statusReason: string | null; balanceMicros: number; balance: string; createdAt: string;
}
interface KeyJson {
  id: string; accountId: string; name: string | null; prefix: string; state: string;
  createdAt: string; expiresAt: string | null; revokedAt: string | null; replacedBy: string | null; lastUsedAt: string | null; key?: string;
}
/** A listing's page: `next` is what --after takes for the next one (null: this was the last). */
interface Page<T> { data: T[]; next: string | null }
interface LedgerJson { id: number; kind: string; reference: string | null; amountMicros: number; amount: string; balanceAfterMicros: number; balanceAfter: string; createdAt: string }
interface CreditsJson { id: string; balanceMicros: number; balance: string; ledger: LedgerJson[]; nextBefore: number | null }

const PLANS = {
  plans: {
    free: { limits: { perSecond: 5 }, monthlyQuota: 100, overage: 'block' },
    pro: { limits: { perSecond: 50 }, monthlyQuota: 1000, overage: 'credits' },
  },
  defaultPlan: 'free',
};

/** A new database file, migrated, and the environment pointing at a config with PLANS. */
async function migratedDb(): Promise<{ db: string; env: Record<string, string> }> {
  const dir = tempDir();
  const db = join(dir, 'tollgate.db');
  const configPath = join(dir, 'tollgate.config.json');
  writeFileSync(configPath, JSON.stringify(PLANS));
  const env = { TOLLGATE_CONFIG: configPath };
  parsed(await runCli(['migrate', '--db', db, '--json'], env));
  return { db, env };
}

describe('tollgate CLI: every command with --json', () => {
  const dir = tempDir();
  const db = join(dir, 'tollgate.db');
  const configPath = join(dir, 'tollgate.config.json');
  writeFileSync(configPath, JSON.stringify(PLANS));
  const env = { TOLLGATE_CONFIG: configPath };
  const run = (...args: string[]) => runCli([...args, '--db', db, '--json'], env);

  let account: AccountJson;
  let key: KeyJson;

  it('migrate creates the database, applies the migrations once and records them', async () => {
    expect(existsSync(db)).toBe(false);
    const first = parsed<{ database: string; applied: string[] }>(await run('migrate'));
    expect(first.database).toBe(db);
    expect(first.applied[0]).toBe('0001_init');
    expect(first.applied).toContain('0005_email_nocase');
    expect(first.applied).toEqual([...first.applied].sort());
    expect(parsed<{ applied: string[] }>(await run('migrate')).applied).toEqual([]);
  });

  it('accounts create returns the account with its id, on the default plan unless told', async () => {
    const before = Date.now();
    account = parsed<AccountJson>(await run('accounts', 'create', '--email', 'ann@example.com', '--name', 'Ann Ltd'));
    expect(account).toEqual({
      id: expect.stringMatching(/^acct_[0-9a-f]{20}$/), email: 'ann@example.com', name: 'Ann Ltd', plan: 'free',
      status: 'active', statusReason: null, balanceMicros: 0, balance: '0.00', createdAt: expect.stringMatching(ISO),
    });
    isoNear(account.createdAt, before, Date.now());
    const pro = parsed<AccountJson>(await run('accounts', 'create', '--email', 'bob@example.com', '--plan', 'pro'));
    expect(pro.plan).toBe('pro');
    expect(pro.name).toBeNull();
    expect(pro.id).not.toBe(account.id);
  });

  it('accounts create refuses an email another account has, in any case (exit 1), naming that account', async () => {
    const taken = new RegExp(`an account with the email ann@example\\.com already exists: ${account.id} \\(emails are compared ignoring case\\)`);
    expectFailure(await run('accounts', 'create', '--email', 'ann@example.com'), 1, taken);
    expectFailure(await run('accounts', 'create', '--email', 'ANN@Example.COM'), 1, taken);
    expect(parsed<Page<AccountJson>>(await run('accounts', 'list')).data).toHaveLength(2);
  });

  it('accounts list returns every account with its id', async () => {
    const list = parsed<Page<AccountJson>>(await run('accounts', 'list')).data;
    expect(list.map((a) => a.email)).toEqual(['ann@example.com', 'bob@example.com']);
    expect(list[0]).toEqual(account);
    for (const a of list) expect(a.id).toMatch(/^acct_/);
  });

  it('keys create prints the key once, with its id, and never stores it', async () => {
    const before = Date.now();
    key = parsed<KeyJson>(await run('keys', 'create', '--account', account.id, '--name', 'ci'));
    expect(key).toEqual({
      id: expect.stringMatching(/^key_[0-9a-f]{20}$/), accountId: account.id, name: 'ci', prefix: key.key!.slice(0, 9),
      state: 'active', createdAt: expect.stringMatching(ISO), expiresAt: null, revokedAt: null, replacedBy: null, lastUsedAt: null,
      key: expect.stringMatching(/^tg_[0-9A-Za-z]{38}$/),
    });
    isoNear(key.createdAt, before, Date.now());
    const listing = await run('keys', 'list');
    expect(listing.stdout).not.toContain(key.key);
    expect(parsed<Page<KeyJson>>(listing).data[0]).not.toHaveProperty('key');
  });

  it('keys create --expires 30d sets the expiry 30 days from now', async () => {
    const before = Date.now();
    const k = parsed<KeyJson>(await run('keys', 'create', '--account', account.id, '--expires', '30d'));
    isoNear(k.expiresAt, before + 30 * DAY_MS, Date.now() + 30 * DAY_MS);
    expect(k.state).toBe('active');
  });

  it('keys create without --json says the key will not be shown again', async () => {
    const r = await runCli(['keys', 'create', '--account', account.id, '--db', db], env);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const keys = r.stdout.match(/tg_[0-9A-Za-z]{38}/g);
    expect(keys).toHaveLength(1);
    expect(r.stdout).toMatch(/will not be shown again/);
  });

  it('keys list returns the keys with their ids, all or one account\'s', async () => {
    const other = parsed<Page<AccountJson>>(await run('accounts', 'list')).data[1];
    const otherKey = parsed<KeyJson>(await run('keys', 'create', '--account', other.id));
    const all = parsed<Page<KeyJson>>(await run('keys', 'list')).data;
    expect(all).toHaveLength(4);
    expect(all.map((k) => k.id)).toContain(key.id);
    expect(all.map((k) => k.id)).toContain(otherKey.id);
    const mine = parsed<Page<KeyJson>>(await run('keys', 'list', '--account', account.id)).data;
    expect(mine).toHaveLength(3);
    for (const k of mine) expect(k).toMatchObject({ id: expect.stringMatching(/^key_/), accountId: account.id });
    expect(parsed<Page<KeyJson>>(await run('keys', 'list', '--account', other.id)).data.map((k) => k.id)).toEqual([otherKey.id]);
  });

  it('accounts show returns the account and its keys, each with its id', async () => {
    const shown = parsed<AccountJson & { keys: KeyJson[] }>(await run('accounts', 'show', account.id));
    expect(shown).toMatchObject({ ...account });
    expect(shown.keys).toHaveLength(3);
    expect(shown.keys[0]).toMatchObject({ id: key.id, accountId: account.id, prefix: key.prefix, state: 'active' });
  });

  it('accounts set-plan moves the account to a plan from the config', async () => {
    const moved = parsed<AccountJson>(await run('accounts', 'set-plan', account.id, 'pro'));
    expect(moved).toEqual({ ...account, plan: 'pro' });
    expect(parsed<AccountJson>(await run('accounts', 'show', account.id)).plan).toBe('pro');
  });

  it('keys rotate issues a new key and keeps the old one for 24 h by default', async () => {
    const before = Date.now();
    const rotated = parsed<{ old: KeyJson; new: KeyJson }>(await run('keys', 'rotate', key.id));
    const after = Date.now();
    expect(rotated.new).toMatchObject({
      id: expect.stringMatching(/^key_/), accountId: account.id, name: 'ci', state: 'active',
      key: expect.stringMatching(/^tg_[0-9A-Za-z]{38}$/), replacedBy: null, expiresAt: null,
    });
    expect(rotated.new.key).not.toBe(key.key);
    expect(rotated.old).toMatchObject({ id: key.id, replacedBy: rotated.new.id, state: 'active', revokedAt: null });
    expect(rotated.old).not.toHaveProperty('key');
    isoNear(rotated.old.expiresAt, before + DAY_MS, after + DAY_MS);
  });

  it('keys rotate --grace 15m ends the old key\'s grace 15 minutes from now', async () => {
    const k = parsed<KeyJson>(await run('keys', 'create', '--account', account.id));
    const before = Date.now();
    const rotated = parsed<{ old: KeyJson; new: KeyJson }>(await run('keys', 'rotate', k.id, '--grace', '15m'));
    isoNear(rotated.old.expiresAt, before + 900_000, Date.now() + 900_000);
  });

  it('keys revoke returns the key, revoked now', async () => {
    const before = Date.now();
    const revoked = parsed<KeyJson>(await run('keys', 'revoke', key.id));
    expect(revoked).toMatchObject({ id: key.id, accountId: account.id, state: 'revoked' });
    isoNear(revoked.revokedAt, before, Date.now());
    // Revoking twice keeps the first time.
    expect(parsed<KeyJson>(await run('keys', 'revoke', key.id)).revokedAt).toBe(revoked.revokedAt);
  });

  it('keys rotate refuses a revoked key (exit 1)', async () => {
    expectFailure(await run('keys', 'rotate', key.id), 1, /revoked/);
  });

  it('credits grant adds exact micro-dollars and returns the account with its new balance', async () => {
    const granted = parsed<AccountJson & { grantedMicros: number; granted: string; reason: string }>(
      await run('credits', 'grant', account.id, '12.50', '--reason', 'welcome'));
    expect(granted).toMatchObject({ id: account.id, balanceMicros: 12_500_000, balance: '12.50', grantedMicros: 12_500_000, granted: '12.50', reason: 'welcome' });
    const tiny = parsed<AccountJson & { grantedMicros: number }>(await run('credits', 'grant', account.id, '0.000001'));
    expect(tiny).toMatchObject({ balanceMicros: 12_500_001, balance: '12.500001', grantedMicros: 1 });
    // 0.1 + 0.2: a float would make this 300000.00000000006 micros or a balance off by one.
    parsed(await run('credits', 'grant', account.id, '0.1'));
    const last = parsed<AccountJson>(await run('credits', 'grant', account.id, '0.2'));
    expect(last.balanceMicros).toBe(12_800_001);
    expect(last.balance).toBe('12.800001');
  });

  it('credits show returns the balance and the ledger newest first, each row with its id', async () => {
    const shown = parsed<CreditsJson>(await run('credits', 'show', account.id));
    expect(shown).toMatchObject({ id: account.id, balanceMicros: 12_800_001, balance: '12.800001', nextBefore: null });
    expect(shown.ledger.map((e) => e.amountMicros)).toEqual([200_000, 100_000, 1, 12_500_000]);
    expect(shown.ledger.at(-1)).toEqual({
      id: expect.any(Number), kind: 'grant', reference: 'welcome', amountMicros: 12_500_000, amount: '12.50',
      balanceAfterMicros: 12_500_000, balanceAfter: '12.50', createdAt: expect.stringMatching(ISO),
    });
    expect(shown.ledger[0].balanceAfterMicros).toBe(shown.balanceMicros);
    const ids = shown.ledger.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(shown.ledger.reduce((sum, e) => sum + e.amountMicros, 0)).toBe(shown.balanceMicros);
  });

  it('credits show prints the latest 20 entries by default (--limit), and --before pages to older ones', async () => {
    const other = parsed<Page<AccountJson>>(await run('accounts', 'list')).data[1];
    for (let i = 1; i <= 25; i++) parsed(await run('credits', 'grant', other.id, `0.0${String(i).padStart(2, '0')}`));
    const latest = parsed<CreditsJson>(await run('credits', 'show', other.id));
    // Grants of 0.001 .. 0.025: the newest is the 25th.
    expect(latest.ledger.map((e) => e.amountMicros)).toEqual(Array.from({ length: 20 }, (_, i) => (25 - i) * 1000));
    expect(latest.nextBefore).toBe(latest.ledger.at(-1)!.id);
    const older = parsed<CreditsJson>(await run('credits', 'show', other.id, '--before', String(latest.nextBefore)));
    expect(older.ledger.map((e) => e.amountMicros)).toEqual([5000, 4000, 3000, 2000, 1000]);
    expect(older.nextBefore).toBeNull();
    const three = parsed<CreditsJson>(await run('credits', 'show', other.id, '--limit', '3'));
    expect(three.ledger.map((e) => e.id)).toEqual(latest.ledger.slice(0, 3).map((e) => e.id));
    expect(three.nextBefore).toBe(three.ledger[2].id);

    const human = await runCli(['credits', 'show', other.id, '--limit', '3', '--db', db], env);
    expect(human.status).toBe(0);
    expect(human.stdout.trimEnd().split('\n').at(-1)).toBe(`older entries: tollgate credits show ${other.id} --before ${three.nextBefore}`);
  });

  it('usage reports the current quota period (here the calendar month, UTC) by default, or the month asked for', async () => {
    const now = new Date();
    const usage = parsed<Record<string, unknown>>(await run('usage', account.id));
    expect(usage).toEqual({
      id: account.id, period: month(now.getTime()),
      periodStart: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString(),
      periodEnd: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString(),
      plan: 'pro', monthlyQuota: 1000, quotaUsed: 0,
      requests: 0, billable: 0, chargedMicros: 0, charged: '0.00', byStatus: {},
    });
    expect(parsed<{ period: string; periodStart: string; periodEnd: string }>(await run('usage', account.id, '--month', '2026-02')))
      .toMatchObject({ period: '2026-02', periodStart: '2026-02-01T00:00:00.000Z', periodEnd: '2026-03-01T00:00:00.000Z' });
  });

  it('human output is short aligned text, not JSON', async () => {
    const r = await runCli(['accounts', 'list', '--db', db], env);
    expect(r.status).toBe(0);
    const [header, first] = r.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ID\s+EMAIL\s+NAME\s+PLAN\s+STATUS\s+BALANCE$/);
    expect(first.indexOf('ann@example.com')).toBe(header.indexOf('EMAIL'));
    expect(first.indexOf('12.800001')).toBe(header.indexOf('BALANCE'));
    expect(() => JSON.parse(r.stdout)).toThrow();
  });
});

describe('tollgate CLI: --db and --json before or after the command', () => {
  it('gives the same answer wherever they stand on the line', async () => {
    const { db, env } = await migratedDb();
    const made = parsed<AccountJson>(await runCli(['--db', db, '--json', 'accounts', 'create', '--email', 'p@example.com'], env));
    const after = await runCli(['accounts', 'list', '--db', db, '--json'], env);
    expect(parsed<Page<AccountJson>>(after)).toEqual({ data: [made], next: null });
    expect(await runCli(['--db', db, '--json', 'accounts', 'list'], env)).toEqual(after);
    expect(await runCli(['--json', 'accounts', '--db', db, 'list'], env)).toEqual(after);
    expect(parsed<AccountJson>(await runCli(['--db', db, 'credits', 'grant', made.id, '1.00', '--json', '--reason', 'r'], env)).balanceMicros).toBe(1_000_000);
  });

  it('--help lists them as global options', async () => {
    const r = await runCli(['keys', 'rotate', '--help']);
    expect(r.stdout).toMatch(/Global Options:\n\s+--db <path>[^]*\n\s+--json\s/);
  });
});

describe('tollgate CLI: the database file', () => {
  const missing = [
    ['accounts', 'list'], ['accounts', 'create', '--email', 'n@example.com'], ['keys', 'list'], ['credits', 'show', 'acct_x'],
    ['usage', 'acct_x'], ['billing', 'status', 'acct_x'], ['webhooks', 'list'],
  ];

  it('every command but migrate and serve refuses a file that does not exist, naming it and how to create it', async () => {
    const dir = join(tempDir(), 'not', 'yet');
    const db = join(dir, 'tollgate.db');
    for (const args of missing) {
      expectFailure(await runCli([...args, '--db', db, '--json']), 1,
        new RegExp(`^tollgate: no database at ${escape(db)} \\(create it with: tollgate migrate --db ${escape(db)}\\)\n$`));
    }
    // Nothing was left behind: not the file, not its folder.
    expect(existsSync(dirname(dir))).toBe(false);
    parsed(await runCli(['migrate', '--db', db, '--json']));
    expect(parsed<Page<AccountJson>>(await runCli(['accounts', 'list', '--db', db, '--json']))).toEqual({ data: [], next: null });
  });

  it('an absolute --db or DATABASE_PATH is used as given, with nothing said about it', async () => {
    const { db } = await migratedDb();
    const viaEnv = await runCli(['accounts', 'create', '--email', 'e@example.com', '--json'], { DATABASE_PATH: db });
    expect(parsed<AccountJson>(viaEnv).email).toBe('e@example.com');
    expect(parsed<Page<AccountJson>>(await runCli(['accounts', 'list', '--json', '--db', db])).data.map((a) => a.email)).toEqual(['e@example.com']);
  });

  it('run from a directory, the bin says which file the relative default is and creates it only with migrate', SLOW, () => {
    const dir = realpathSync(tempDir());
    const file = join(dir, 'data', 'tollgate.db');
    expectFailure(cliProcess(['accounts', 'create', '--email', 'd@example.com', '--json'], { cwd: dir }), 1,
      new RegExp(`no database at ${escape(file)} \\(create it with: tollgate migrate --db ${escape(file)}\\)`));
    expect(existsSync(join(dir, 'data'))).toBe(false);

    const migrated = cliProcess(['migrate', '--json'], { cwd: dir });
    expect(migrated.stderr).toBe(`tollgate: using ${file}\n`);
    expect(migrated.status).toBe(0);
    expect((JSON.parse(migrated.stdout) as { database: string }).database).toBe(file);

    const made = cliProcess(['accounts', 'create', '--email', 'd@example.com', '--json'], { cwd: dir });
    expect(made.stderr).toBe(`tollgate: using ${file}\n`);
    expect(made.status).toBe(0);
    // Only the JSON document is on stdout.
    expect((JSON.parse(made.stdout) as AccountJson).email).toBe('d@example.com');
  });
});

describe('tollgate CLI: the configuration', () => {
  // Sells "pro" through Stripe and resells OpenAI: the gateway needs their keys, the CLI does not.
  const FILE = {
    routes: [{ path: '/v1/chat/completions', upstream: 'http://127.0.0.1:9/v1/chat/completions', meter: 'openai' }],
    plans: {
      free: { limits: { perMinute: 60 }, monthlyQuota: 1000 },
      pro: { limits: { perMinute: 600 }, monthlyQuota: 100000, overage: 'stripe', stripePrice: 'price_123', stripeMeter: 'api_requests' },
    },
    defaultPlan: 'free',
  };

  it('a config that sells through Stripe and resells OpenAI works in a shell without their keys; only billing sync needs Stripe', async () => {
    const dir = tempDir();
    const db = join(dir, 'tollgate.db');
    const env = { TOLLGATE_CONFIG: join(dir, 'tollgate.config.json') };
    writeFileSync(env.TOLLGATE_CONFIG, JSON.stringify(FILE));
    // The gateway itself still refuses to start without them.
    expect(() => loadConfig(env)).toThrow(ConfigError);

    const run = (...args: string[]) => runCli([...args, '--db', db, '--json'], env);
    parsed(await run('migrate'));
    const a = parsed<AccountJson>(await run('accounts', 'create', '--email', 's@example.com', '--plan', 'pro'));
    parsed(await run('keys', 'create', '--account', a.id));
    parsed(await run('credits', 'grant', a.id, '5'));
    parsed(await run('credits', 'show', a.id));
    parsed(await run('usage', a.id));
    parsed(await run('accounts', 'set-plan', a.id, 'free'));
    parsed(await run('billing', 'status', a.id));
    parsed(await run('webhooks', 'list'));
    expectFailure(await run('billing', 'sync'), 1, /^tollgate: Stripe is not configured: set STRIPE_SECRET_KEY\n$/);
    // With the secret key alone (no Checkout or portal URLs, which only the gateway uses) it runs.
    expect(parsed<{ reported: unknown[] }>(await runCli(['billing', 'sync', '--db', db, '--json'], { ...env, STRIPE_SECRET_KEY: 'sk_test_x' })).reported).toEqual([]);
  });

  it('an invalid configuration is one line and exit 78, as for the server', async () => {
    const r = await runCli(['accounts', 'list', '--json'], { TOLLGATE_CONFIG: '/nonexistent/tollgate.config.json' });
    expectFailure(r, 78, /invalid configuration: TOLLGATE_CONFIG: file not found/);
  });
});

describe('tollgate migrate: emails unique ignoring case (migration 0005)', () => {
  it('stops on a database holding emails that differ only in case, naming the accounts, with nothing changed', async () => {
    const { db } = await migratedDb();
    // Back to the schema before 0005, with the accounts it would have let in.
    const raw = new Database(db);
    raw.exec(`DROP INDEX accounts_email_nocase; DELETE FROM schema_migrations WHERE version = 5;
      INSERT INTO accounts (id, email, plan, created_at) VALUES ('acct_a1', 'Ann@Example.com', 'free', 1),
        ('acct_a2', 'ann@example.com', 'free', 2), ('acct_b1', 'bob@example.com', 'free', 3),
        ('acct_c1', 'Cy@x.io', 'free', 4), ('acct_c2', 'cy@X.IO', 'free', 5), ('acct_c3', 'CY@x.io', 'free', 6)`);
    try {
      const r = await runCli(['migrate', '--db', db, '--json']);
      expectFailure(r, 1, new RegExp('^tollgate: migration 0005 stopped, nothing changed: emails must be unique ignoring case, '
        + 'and these accounts share one: acct_a1 Ann@Example\\.com, acct_a2 ann@example\\.com; '
        + 'acct_c1 Cy@x\\.io, acct_c2 cy@X\\.IO, acct_c3 CY@x\\.io\\. Give all but one of each group another email'));
      expect(raw.prepare('SELECT count(*) FROM schema_migrations WHERE version = 5').pluck().get()).toBe(0);
      expect(raw.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'accounts_email_nocase'").pluck().get()).toBe(0);
      expect(raw.prepare('SELECT count(*) FROM accounts').pluck().get()).toBe(6);
      // Every command opens the database the same way, so each says the same until it is fixed.
      expectFailure(await runCli(['accounts', 'list', '--db', db]), 1, /migration 0005 stopped/);

      raw.exec(`UPDATE accounts SET email = 'ann+old@example.com' WHERE id = 'acct_a2';
        UPDATE accounts SET email = 'cy+' || id || '@x.io' WHERE id IN ('acct_c2', 'acct_c3')`);
      expect(parsed<{ applied: string[] }>(await runCli(['migrate', '--db', db, '--json'])).applied).toEqual(['0005_email_nocase']);
      expect(() => raw.prepare("INSERT INTO accounts (id, email, plan, created_at) VALUES ('acct_d', 'BOB@example.com', 'free', 7)").run())
        .toThrow(/UNIQUE constraint failed/);
    } finally {
      raw.close();
    }
  });
});

describe('tollgate CLI: bad arguments are one line on stderr and exit 2', () => {
  let db: string;
  let env: Record<string, string>;
  let accountId: string;
  let keyId: string;

  beforeAll(async () => {
    ({ db, env } = await migratedDb());
    accountId = parsed<AccountJson>(await runCli(['accounts', 'create', '--email', 'c@example.com', '--db', db, '--json'], env)).id;
    keyId = parsed<KeyJson>(await runCli(['keys', 'create', '--account', accountId, '--db', db, '--json'], env)).id;
  });

  const cases: [string, (ids: { acct: string; key: string }) => string[], RegExp][] = [
    ['an unknown option', ({ acct }) => ['accounts', 'show', acct, '--colour'], /unknown option '--colour'/],
    ['a misspelt option, with a suggestion on the same line', () => ['accounts', 'list', '--jsn'], /unknown option '--jsn' \(Did you mean --json\?\)/],
    ['a missing required option', () => ['accounts', 'create'], /required option '--email <email>'/],
    ['a missing argument', () => ['accounts', 'show'], /missing required argument 'id'/],
    ['too many arguments', ({ key }) => ['keys', 'revoke', key, 'extra'], /too many arguments/],
    ['an invalid email', () => ['accounts', 'create', '--email', 'not-an-email'], /not an email address/],
    ['an email without a domain dot', () => ['accounts', 'create', '--email', 'a@localhost'], /not an email address/],
    ['an unknown plan at creation', () => ['accounts', 'create', '--email', 'x@example.com', '--plan', 'gold'], /unknown plan "gold" \(plans: free, pro\)/],
    ['an unknown plan for set-plan', ({ acct }) => ['accounts', 'set-plan', acct, 'gold'], /unknown plan "gold"/],
    ['keys create without --account', () => ['keys', 'create'], /required option '--account <id>'/],
    ['a duration without a unit', ({ acct }) => ['keys', 'create', '--account', acct, '--expires', '30'], /not a duration/],
    ['a fractional duration', ({ key }) => ['keys', 'rotate', key, '--grace', '1.5h'], /not a duration/],
    ['an expiry of zero', ({ acct }) => ['keys', 'create', '--account', acct, '--expires', '0d'], /more than zero/],
    ['an amount in exponent notation', ({ acct }) => ['credits', 'grant', acct, '1e3'], /not a dollar amount: "1e3"/],
    ['a negative amount', ({ acct }) => ['credits', 'grant', acct, '-5'], /cannot be negative/],
    ['a zero amount', ({ acct }) => ['credits', 'grant', acct, '0.00'], /more than zero/],
    ['more than 6 decimals', ({ acct }) => ['credits', 'grant', acct, '0.0000001'], /more than 6 decimals/],
    ['an amount past 2^53 micros', ({ acct }) => ['credits', 'grant', acct, '9007199254.740992'], /too large/],
    ['a garbage amount', ({ acct }) => ['credits', 'grant', acct, '12,50'], /not a dollar amount/],
    ['a missing amount', ({ acct }) => ['credits', 'grant', acct], /missing required argument 'amount'/],
    ['a ledger limit of zero', ({ acct }) => ['credits', 'show', acct, '--limit', '0'], /not a whole number from 1: "0"/],
    ['a ledger page that is not an entry id', ({ acct }) => ['credits', 'show', acct, '--before', 'latest'], /not a whole number from 1: "latest"/],
    ['a month out of range', ({ acct }) => ['usage', acct, '--month', '2026-13'], /not a month: "2026-13" \(expected YYYY-MM\)/],
    ['a month without its leading zero', ({ acct }) => ['usage', acct, '--month', '2026-1'], /not a month/],
  ];

  it.each(cases)('%s', async (_name, args, message) => {
    expectFailure(await runCli([...args({ acct: accountId, key: keyId }), '--db', db, '--json'], env), 2, message);
  });

  it.each([
    ['no command', [], /missing command: tollgate <migrate\|serve\|backup\|accounts\|keys\|credits\|usage\|requests\|audit\|billing\|webhooks\|notifications>/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['a group without its command', ['accounts'], /missing command: tollgate accounts <create\|list\|show\|set-plan\|suspend\|reactivate>/],
    ['an unknown command in a group', ['keys', 'delete'], /unknown command 'delete'/],
    ['--db without its path', ['accounts', 'list', '--db'], /option '--db <path>' argument missing/],
  ])('%s', async (_name, args, message) => {
    expectFailure(await runCli(args, env), 2, message);
  });

  it('a grant that would take the balance past 2^53 micros is refused and nothing moves', async () => {
    parsed(await runCli(['credits', 'grant', accountId, '9007199254.740991', '--db', db, '--json'], env));
    expectFailure(await runCli(['credits', 'grant', accountId, '0.000001', '--db', db, '--json'], env), 2, /past 9007199254\.740991/);
    const shown = parsed<CreditsJson>(await runCli(['credits', 'show', accountId, '--db', db, '--json'], env));
    expect(shown.balanceMicros).toBe(Number.MAX_SAFE_INTEGER);
    expect(shown.ledger).toHaveLength(1);
  });

  it('--help is not an error: exit 0, usage on stdout', async () => {
    const r = await runCli(['keys', 'rotate', '--help'], env);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/Usage: tollgate keys rotate \[options\] <id>/);
    expect(r.stdout).toMatch(/--grace <duration>.*\n?.*\(default: 24h\)/);
  });
});

describe('tollgate CLI: what does not exist is one line on stderr and exit 1', () => {
  let db: string;
  beforeAll(async () => {
    ({ db } = await migratedDb());
  });
  const cases: [string, string[]][] = [
    ['accounts show', ['accounts', 'show', 'acct_missing']],
    ['accounts set-plan', ['accounts', 'set-plan', 'acct_missing', 'default']],
    ['keys create', ['keys', 'create', '--account', 'acct_missing']],
    ['keys list --account', ['keys', 'list', '--account', 'acct_missing']],
    ['keys revoke', ['keys', 'revoke', 'key_missing']],
    ['keys rotate', ['keys', 'rotate', 'key_missing']],
    ['credits grant', ['credits', 'grant', 'acct_missing', '5']],
    ['credits show', ['credits', 'show', 'acct_missing']],
    ['usage', ['usage', 'acct_missing']],
  ];
  it.each(cases)('%s', async (_name, args) => {
    expectFailure(await runCli([...args, '--db', db, '--json']), 1, /(account acct_missing|key key_missing) not found/);
  });
});

describe('tollgate CLI against a running gateway (another connection to the same database file)', () => {
  let up: Upstream;
  let gw: TestGateway;
  const clock = fakeClock(Date.now());
  let fake: TestGateway;

  beforeAll(async () => {
    up = await startUpstream();
    const file = { routes: [{ path: '/api/', upstream: up.url }], plans: { pro: { limits: { perSecond: 50 }, monthlyQuota: 1000 } } };
    gw = await startGateway({ file });
    fake = await startGateway({ file, now: clock.now });
  });
  afterAll(async () => {
    await gw.close();
    await fake.close();
    await up.close();
  });

  const configOf = (g: TestGateway) => ({ TOLLGATE_CONFIG: join(dirname(g.dbPath), 'tollgate.config.json') });

  async function cliJson<T>(g: TestGateway, ...args: string[]): Promise<T> {
    return parsed<T>(await runCli([...args, '--db', g.dbPath, '--json'], configOf(g)));
  }

  async function accountWithKey(g: TestGateway) {
    const account = await cliJson<AccountJson>(g, 'accounts', 'create', '--email', `${Math.random().toString(36).slice(2)}@example.com`);
    const key = await cliJson<KeyJson & { key: string }>(g, 'keys', 'create', '--account', account.id);
    return { account, key };
  }

  const status = async (g: TestGateway, key: string) => (await fetch(`${g.url}/api/x`, { headers: bearer(key) })).status;

  /** Calls every 50 ms with `key` until the gateway answers 401; every answer before that must be 200. */
  async function pollUntilRefused(g: TestGateway, key: string, limitMs = 3000): Promise<number> {
    const start = Date.now();
    for (;;) {
      const res = await fetch(`${g.url}/api/x`, { headers: bearer(key) });
      const at = Date.now();
      await res.arrayBuffer();
      if (res.status === 401) {
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
        return at;
      }
      expect(res.status).toBe(200);
      if (at - start > limitMs) throw new Error(`still accepted after ${limitMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('usage reports what the gateway counted, in the period it counts against', async () => {
    const { account, key } = await accountWithKey(gw);
    expect(await status(gw, key.key)).toBe(200);
    gw.flush();
    expect(await cliJson(gw, 'usage', account.id)).toMatchObject({ id: account.id, period: month(Date.now()), requests: 1, quotaUsed: 1, byStatus: { 200: 1 } });
  });

  it('usage of an account on a subscription reads its billing period, as /_tollgate/usage does', async () => {
    const { account, key } = seedAccount(gw.admin, 'pro');
    const start = Date.now() - DAY_MS;
    const end = start + 30 * DAY_MS;
    gw.billingStore.setPeriod(account.id, start, end);
    for (let i = 0; i < 3; i++) expect(await status(gw, key)).toBe(200);
    gw.flush();
    const own = JSON.parse((await fetchText(`${gw.url}/_tollgate/usage`, { headers: bearer(key) })).body) as { quota: { period: string; used: number; limit: number } };
    expect(own.quota).toEqual({ period: `sub:${new Date(start).toISOString()}`, used: 3, limit: 1000 });

    expect(await cliJson(gw, 'usage', account.id)).toEqual({
      id: account.id, period: own.quota.period, periodStart: new Date(start).toISOString(), periodEnd: new Date(end).toISOString(),
      plan: 'pro', monthlyQuota: 1000, quotaUsed: 3, requests: 3, billable: 3, chargedMicros: 0, charged: '0.00', byStatus: { 200: 3 },
    });
    const human = await runCli(['usage', account.id, '--db', gw.dbPath], configOf(gw));
    expect(human.stdout).toMatch(new RegExp(`period:\\s+subscription period from ${escape(new Date(start).toISOString())}, renews ${escape(new Date(end).toISOString())}\n`));
    expect(human.stdout).toMatch(/quota:\s+3 of 1000\n/);
    // --month reads the calendar month's counter, which these requests did not touch.
    expect(await cliJson(gw, 'usage', account.id, '--month', month(Date.now()))).toMatchObject({ period: month(Date.now()), quotaUsed: 0, requests: 3 });
  });

  it('a key revoked with the CLI is refused (401) within one second', async () => {
    const { key } = await accountWithKey(gw);
    expect(await status(gw, key.key)).toBe(200);
    const revoked = await cliJson<KeyJson>(gw, 'keys', 'revoke', key.id);
    expect(revoked).toMatchObject({ id: key.id, state: 'revoked' });
    const revokedAt = Date.parse(revoked.revokedAt!);
    const refusedAt = await pollUntilRefused(gw, key.key);
    expect(refusedAt - revokedAt).toBeLessThan(1000);
    expect(await status(gw, key.key)).toBe(401);
  });

  it('a key revoked by the bin, another process, is refused (401) within one second', SLOW, async () => {
    const { key } = await accountWithKey(gw);
    expect(await status(gw, key.key)).toBe(200);
    // Poll while the CLI runs: whenever its write lands, the gateway has one second to notice.
    const revoking = cliProcessAsync(['keys', 'revoke', key.id, '--db', gw.dbPath, '--json']);
    const refusedAt = await pollUntilRefused(gw, key.key, 10_000);
    const revoked = parsed<KeyJson>(await revoking);
    expect(revoked).toMatchObject({ id: key.id, state: 'revoked' });
    const revokedAt = Date.parse(revoked.revokedAt!);
    expect(refusedAt).toBeGreaterThanOrEqual(revokedAt);
    expect(refusedAt - revokedAt).toBeLessThan(1000);
  });

  it('after keys rotate --grace 1s, both keys work, then only the new one', async () => {
    const { key } = await accountWithKey(gw);
    expect(await status(gw, key.key)).toBe(200); // now cached by the gateway

    const rotated = await cliJson<{ old: KeyJson; new: KeyJson & { key: string } }>(gw, 'keys', 'rotate', key.id, '--grace', '1s');
    const graceEnds = Date.parse(rotated.old.expiresAt!);
    const sentAt = Date.now();
    expect(await status(gw, rotated.new.key)).toBe(200);
    expect(await status(gw, key.key)).toBe(200);
    // Honest only if that request was inside the grace (the CLI wrote expires_at on the real clock).
    expect(sentAt).toBeLessThan(graceEnds);

    const refusedAt = await pollUntilRefused(gw, key.key);
    expect(refusedAt).toBeGreaterThanOrEqual(graceEnds);
    expect(refusedAt - graceEnds).toBeLessThan(1000);
    expect(await status(gw, rotated.new.key)).toBe(200);
  });

  it('without --grace the old key works for exactly 24 hours (gateway on a fake clock)', async () => {
    const { key } = await accountWithKey(fake);
    expect(await status(fake, key.key)).toBe(200);

    const before = Date.now();
    const rotated = await cliJson<{ old: KeyJson; new: KeyJson & { key: string } }>(fake, 'keys', 'rotate', key.id);
    const graceEnds = Date.parse(rotated.old.expiresAt!);
    expect(graceEnds).toBeGreaterThanOrEqual(before + DAY_MS);
    expect(graceEnds).toBeLessThanOrEqual(Date.now() + DAY_MS);
    expect(await status(fake, key.key)).toBe(200);
    expect(await status(fake, rotated.new.key)).toBe(200);

    // At the end of the grace the old key stops (once the gateway has seen the CLI's write)...
    clock.set(graceEnds);
    await pollUntilRefused(fake, key.key);
    // ...and not a millisecond before.
    clock.set(graceEnds - 1);
    expect(await status(fake, key.key)).toBe(200);
    clock.set(graceEnds + 3_600_000);
    expect(await status(fake, key.key)).toBe(401);
    expect(await status(fake, rotated.new.key)).toBe(200);
  });
});

describe('tollgate serve', SLOW, () => {
  it('runs the gateway on the --db file, creating it, and stops cleanly on SIGTERM', async () => {
    const dir = tempDir();
    const db = join(dir, 'served.db');
    const child = spawn(process.execPath, [CLI, 'serve', '--db', db, '--json'], {
      cwd: dir, env: childEnv({ PORT: '0', LOG_LEVEL: 'info' }), stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const listening = await new Promise<{ url: string; database: string }>((resolve, reject) => {
        const lines = createInterface({ input: child.stdout });
        lines.on('line', (line) => {
          const entry = JSON.parse(line) as { msg: string; url: string; database: string };
          if (entry.msg === 'listening') resolve(entry);
        });
        void exited.then((code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
      });
      expect(listening.database).toBe(db);
      expect(existsSync(db)).toBe(true);
      expect((await fetch(`${listening.url}/_tollgate/ready`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });
});
