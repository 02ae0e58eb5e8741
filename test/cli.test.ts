// The built CLI (dist/cli.js) run as a real child process against a temp SQLite file, and against
// the same file a running gateway is serving.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, fakeClock, startGateway, startUpstream, tempDir, type TestGateway, type Upstream } from './helpers.ts';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const DAY_MS = 86_400_000;
// Every test here starts node child processes (~0.2 s each, more on a loaded machine).
const SLOW = { timeout: 30_000 };
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface Run { status: number; stdout: string; stderr: string }
interface RunOptions { cwd?: string; env?: Record<string, string> }

/** The parent's environment without anything that would point the CLI elsewhere. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['DATABASE_PATH', 'TOLLGATE_CONFIG', 'UPSTREAM_URL', 'PORT', 'HOST', 'LOG_LEVEL']) delete env[name];
  return { ...env, ...extra };
}

/** Runs the CLI and waits (blocking): for tests with no server in this process. */
function cli(args: string[], { cwd = tempDir(), env = {} }: RunOptions = {}): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: childEnv(env), encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI without blocking this process's event loop, so an in-process gateway keeps serving. */
function cliAsync(args: string[], { cwd = tempDir(), env = {} }: RunOptions = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, env: childEnv(env), encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A successful --json run: exit 0, nothing on stderr, exactly one JSON document on stdout. */
function parsed<T>(r: Run): T {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** A failure: the exit code, nothing on stdout, exactly one line on stderr. */
function expectFailure(r: Run, status: number, message?: RegExp): void {
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^tollgate: [^\n]+\n$/);
  if (message) expect(r.stderr).toMatch(message);
  expect(r.status).toBe(status);
}

const isoNear = (value: unknown, from: number, to: number) => {
  expect(value).toMatch(ISO);
  const t = Date.parse(value as string);
  expect(t).toBeGreaterThanOrEqual(from);
  expect(t).toBeLessThanOrEqual(to);
};

interface AccountJson { id: string; email: string; name: string | null; plan: string; status: string; balanceMicros: number; balance: string; createdAt: string }
interface KeyJson {
  id: string; accountId: string; name: string | null; prefix: string; state: string;
  createdAt: string; expiresAt: string | null; revokedAt: string | null; replacedBy: string | null; key?: string;
}
interface LedgerJson { id: number; kind: string; reference: string | null; amountMicros: number; amount: string; balanceAfterMicros: number; balanceAfter: string; createdAt: string }

const PLANS = {
  plans: {
    free: { limits: { perSecond: 5 }, monthlyQuota: 100, overage: 'block' },
    pro: { limits: { perSecond: 50 }, monthlyQuota: 1000, overage: 'credits' },
  },
  defaultPlan: 'free',
};

describe('tollgate CLI: every command with --json', SLOW, () => {
  const dir = tempDir();
  const db = join(dir, 'tollgate.db');
  const configPath = join(dir, 'tollgate.config.json');
  writeFileSync(configPath, JSON.stringify(PLANS));
  const run = (...args: string[]) => cli([...args, '--db', db, '--json'], { cwd: dir, env: { TOLLGATE_CONFIG: configPath } });

  let account: AccountJson;
  let key: KeyJson;

  it('migrate applies the migrations once and records them', () => {
    const first = parsed<{ database: string; applied: string[] }>(run('migrate'));
    expect(first.database).toBe(db);
    expect(first.applied[0]).toBe('0001_init');
    expect(first.applied).toEqual([...first.applied].sort());
    expect(parsed<{ applied: string[] }>(run('migrate')).applied).toEqual([]);
  });

  it('accounts create returns the account with its id, on the default plan unless told', () => {
    const before = Date.now();
    account = parsed<AccountJson>(run('accounts', 'create', '--email', 'ann@example.com', '--name', 'Ann Ltd'));
    expect(account).toEqual({
      id: expect.stringMatching(/^acct_[0-9a-f]{20}$/), email: 'ann@example.com', name: 'Ann Ltd', plan: 'free',
      status: 'active', balanceMicros: 0, balance: '0.00', createdAt: expect.stringMatching(ISO),
    });
    isoNear(account.createdAt, before, Date.now());
    const pro = parsed<AccountJson>(run('accounts', 'create', '--email', 'bob@example.com', '--plan', 'pro'));
    expect(pro.plan).toBe('pro');
    expect(pro.name).toBeNull();
    expect(pro.id).not.toBe(account.id);
  });

  it('accounts create refuses a second account with the same email (exit 1)', () => {
    expectFailure(run('accounts', 'create', '--email', 'ann@example.com'), 1, /already exists/);
  });

  it('accounts list returns every account with its id', () => {
    const list = parsed<AccountJson[]>(run('accounts', 'list'));
    expect(list.map((a) => a.email)).toEqual(['ann@example.com', 'bob@example.com']);
    expect(list[0]).toEqual(account);
    for (const a of list) expect(a.id).toMatch(/^acct_/);
  });

  it('keys create prints the key once, with its id, and never stores it', () => {
    const before = Date.now();
    key = parsed<KeyJson>(run('keys', 'create', '--account', account.id, '--name', 'ci'));
    expect(key).toEqual({
      id: expect.stringMatching(/^key_[0-9a-f]{20}$/), accountId: account.id, name: 'ci', prefix: key.key!.slice(0, 9),
      state: 'active', createdAt: expect.stringMatching(ISO), expiresAt: null, revokedAt: null, replacedBy: null,
      key: expect.stringMatching(/^tg_[0-9A-Za-z]{38}$/),
    });
    isoNear(key.createdAt, before, Date.now());
    const listing = run('keys', 'list');
    expect(listing.stdout).not.toContain(key.key);
    expect(parsed<KeyJson[]>(listing)[0]).not.toHaveProperty('key');
  });

  it('keys create --expires 30d sets the expiry 30 days from now', () => {
    const before = Date.now();
    const k = parsed<KeyJson>(run('keys', 'create', '--account', account.id, '--expires', '30d'));
    isoNear(k.expiresAt, before + 30 * DAY_MS, Date.now() + 30 * DAY_MS);
    expect(k.state).toBe('active');
  });

  it('keys create without --json says the key will not be shown again', () => {
    const r = cli(['keys', 'create', '--account', account.id, '--db', db], { cwd: dir, env: { TOLLGATE_CONFIG: configPath } });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const keys = r.stdout.match(/tg_[0-9A-Za-z]{38}/g);
    expect(keys).toHaveLength(1);
    expect(r.stdout).toMatch(/will not be shown again/);
  });

  it('keys list returns the keys with their ids, all or one account\'s', () => {
    const other = parsed<AccountJson[]>(run('accounts', 'list'))[1];
    const otherKey = parsed<KeyJson>(run('keys', 'create', '--account', other.id));
    const all = parsed<KeyJson[]>(run('keys', 'list'));
    expect(all).toHaveLength(4);
    expect(all.map((k) => k.id)).toContain(key.id);
    expect(all.map((k) => k.id)).toContain(otherKey.id);
    const mine = parsed<KeyJson[]>(run('keys', 'list', '--account', account.id));
    expect(mine).toHaveLength(3);
    for (const k of mine) expect(k).toMatchObject({ id: expect.stringMatching(/^key_/), accountId: account.id });
    expect(parsed<KeyJson[]>(run('keys', 'list', '--account', other.id)).map((k) => k.id)).toEqual([otherKey.id]);
  });

  it('accounts show returns the account and its keys, each with its id', () => {
    const shown = parsed<AccountJson & { keys: KeyJson[] }>(run('accounts', 'show', account.id));
    expect(shown).toMatchObject({ ...account });
    expect(shown.keys).toHaveLength(3);
    expect(shown.keys[0]).toMatchObject({ id: key.id, accountId: account.id, prefix: key.prefix, state: 'active' });
  });

  it('accounts set-plan moves the account to a plan from the config', () => {
    const moved = parsed<AccountJson>(run('accounts', 'set-plan', account.id, 'pro'));
    expect(moved).toEqual({ ...account, plan: 'pro' });
    expect(parsed<AccountJson>(run('accounts', 'show', account.id)).plan).toBe('pro');
  });

  it('keys rotate issues a new key and keeps the old one for 24 h by default', () => {
    const before = Date.now();
    const rotated = parsed<{ old: KeyJson; new: KeyJson }>(run('keys', 'rotate', key.id));
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

  it('keys rotate --grace 15m ends the old key\'s grace 15 minutes from now', () => {
    const k = parsed<KeyJson>(run('keys', 'create', '--account', account.id));
    const before = Date.now();
    const rotated = parsed<{ old: KeyJson; new: KeyJson }>(run('keys', 'rotate', k.id, '--grace', '15m'));
    isoNear(rotated.old.expiresAt, before + 900_000, Date.now() + 900_000);
  });

  it('keys revoke returns the key, revoked now', () => {
    const before = Date.now();
    const revoked = parsed<KeyJson>(run('keys', 'revoke', key.id));
    expect(revoked).toMatchObject({ id: key.id, accountId: account.id, state: 'revoked' });
    isoNear(revoked.revokedAt, before, Date.now());
    // Revoking twice keeps the first time.
    expect(parsed<KeyJson>(run('keys', 'revoke', key.id)).revokedAt).toBe(revoked.revokedAt);
  });

  it('keys rotate refuses a revoked key (exit 1)', () => {
    expectFailure(run('keys', 'rotate', key.id), 1, /revoked/);
  });

  it('credits grant adds exact micro-dollars and returns the account with its new balance', () => {
    const granted = parsed<AccountJson & { grantedMicros: number; granted: string; reason: string }>(
      run('credits', 'grant', account.id, '12.50', '--reason', 'welcome'));
    expect(granted).toMatchObject({ id: account.id, balanceMicros: 12_500_000, balance: '12.50', grantedMicros: 12_500_000, granted: '12.50', reason: 'welcome' });
    const tiny = parsed<AccountJson & { grantedMicros: number }>(run('credits', 'grant', account.id, '0.000001'));
    expect(tiny).toMatchObject({ balanceMicros: 12_500_001, balance: '12.500001', grantedMicros: 1 });
    // 0.1 + 0.2: a float would make this 300000.00000000006 micros or a balance off by one.
    parsed(run('credits', 'grant', account.id, '0.1'));
    const last = parsed<AccountJson>(run('credits', 'grant', account.id, '0.2'));
    expect(last.balanceMicros).toBe(12_800_001);
    expect(last.balance).toBe('12.800001');
  });

  it('credits show returns the balance and every ledger row with its id', () => {
    const shown = parsed<{ id: string; balanceMicros: number; balance: string; ledger: LedgerJson[] }>(run('credits', 'show', account.id));
    expect(shown).toMatchObject({ id: account.id, balanceMicros: 12_800_001, balance: '12.800001' });
    expect(shown.ledger.map((e) => e.amountMicros)).toEqual([12_500_000, 1, 100_000, 200_000]);
    expect(shown.ledger[0]).toEqual({
      id: expect.any(Number), kind: 'grant', reference: 'welcome', amountMicros: 12_500_000, amount: '12.50',
      balanceAfterMicros: 12_500_000, balanceAfter: '12.50', createdAt: expect.stringMatching(ISO),
    });
    expect(shown.ledger.at(-1)!.balanceAfterMicros).toBe(shown.balanceMicros);
    expect(new Set(shown.ledger.map((e) => e.id)).size).toBe(4);
    expect(shown.ledger.reduce((sum, e) => sum + e.amountMicros, 0)).toBe(shown.balanceMicros);
  });

  it('usage reports the current UTC month by default, or the month asked for', () => {
    const usage = parsed<Record<string, unknown>>(run('usage', account.id));
    expect(usage).toEqual({
      id: account.id, period: new Date().toISOString().slice(0, 7), plan: 'pro', monthlyQuota: 1000, quotaUsed: 0,
      requests: 0, billable: 0, chargedMicros: 0, charged: '0.00', byStatus: {},
    });
    expect(parsed<{ period: string }>(run('usage', account.id, '--month', '2026-02')).period).toBe('2026-02');
  });

  it('human output is short aligned text, not JSON', () => {
    const r = cli(['accounts', 'list', '--db', db], { cwd: dir, env: { TOLLGATE_CONFIG: configPath } });
    expect(r.status).toBe(0);
    const [header, first] = r.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ID\s+EMAIL\s+NAME\s+PLAN\s+STATUS\s+BALANCE$/);
    expect(first.indexOf('ann@example.com')).toBe(header.indexOf('EMAIL'));
    expect(first.indexOf('12.800001')).toBe(header.indexOf('BALANCE'));
    expect(() => JSON.parse(r.stdout)).toThrow();
  });
});

describe('tollgate CLI: where the database is', SLOW, () => {
  it('defaults to ./data/tollgate.db, or DATABASE_PATH when set', () => {
    const dir = tempDir();
    const made = parsed<AccountJson>(cli(['accounts', 'create', '--email', 'd@example.com', '--json'], { cwd: dir }));
    expect(existsSync(join(dir, 'data', 'tollgate.db'))).toBe(true);
    expect(parsed<AccountJson[]>(cli(['accounts', 'list', '--json'], { cwd: dir })).map((a) => a.id)).toEqual([made.id]);

    const elsewhere = join(tempDir(), 'other.db');
    parsed(cli(['accounts', 'create', '--email', 'e@example.com', '--json'], { cwd: dir, env: { DATABASE_PATH: elsewhere } }));
    expect(parsed<AccountJson[]>(cli(['accounts', 'list', '--json', '--db', elsewhere])).map((a) => a.email)).toEqual(['e@example.com']);
  });

  it('an invalid configuration is one line and exit 78, as for the server', () => {
    const r = cli(['accounts', 'list', '--json'], { env: { TOLLGATE_CONFIG: '/nonexistent/tollgate.config.json' } });
    expectFailure(r, 78, /invalid configuration: TOLLGATE_CONFIG: file not found/);
  });
});

describe('tollgate CLI: bad arguments are one line on stderr and exit 2', SLOW, () => {
  const dir = tempDir();
  const db = join(dir, 'tollgate.db');
  const configPath = join(dir, 'tollgate.config.json');
  writeFileSync(configPath, JSON.stringify(PLANS));
  const opts = { cwd: dir, env: { TOLLGATE_CONFIG: configPath } };
  let accountId: string;
  let keyId: string;

  beforeAll(() => {
    accountId = parsed<AccountJson>(cli(['accounts', 'create', '--email', 'c@example.com', '--db', db, '--json'], opts)).id;
    keyId = parsed<KeyJson>(cli(['keys', 'create', '--account', accountId, '--db', db, '--json'], opts)).id;
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
    ['a month out of range', ({ acct }) => ['usage', acct, '--month', '2026-13'], /not a month: "2026-13" \(expected YYYY-MM\)/],
    ['a month without its leading zero', ({ acct }) => ['usage', acct, '--month', '2026-1'], /not a month/],
  ];

  it.each(cases)('%s', (_name, args, message) => {
    expectFailure(cli([...args({ acct: accountId, key: keyId }), '--db', db, '--json'], opts), 2, message);
  });

  it.each([
    ['no command', [], /missing command: tollgate <migrate\|serve\|accounts\|keys\|credits\|usage\|billing\|webhooks>/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['a group without its command', ['accounts'], /missing command: tollgate accounts <create\|list\|show\|set-plan>/],
    ['an unknown command in a group', ['keys', 'delete'], /unknown command 'delete'/],
    ['an option before the command', ['--db', db, 'accounts', 'list'], /unknown option '--db'/],
  ])('%s', (_name, args, message) => {
    expectFailure(cli(args, opts), 2, message);
  });

  it('a grant that would take the balance past 2^53 micros is refused and nothing moves', () => {
    parsed(cli(['credits', 'grant', accountId, '9007199254.740991', '--db', db, '--json'], opts));
    expectFailure(cli(['credits', 'grant', accountId, '0.000001', '--db', db, '--json'], opts), 2, /past 9007199254\.740991/);
    const shown = parsed<{ balanceMicros: number; ledger: LedgerJson[] }>(cli(['credits', 'show', accountId, '--db', db, '--json'], opts));
    expect(shown.balanceMicros).toBe(Number.MAX_SAFE_INTEGER);
    expect(shown.ledger).toHaveLength(1);
  });

  it('--help is not an error: exit 0, usage on stdout', () => {
    const r = cli(['keys', 'rotate', '--help'], opts);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: tollgate keys rotate \[options\] <id>/);
    expect(r.stdout).toMatch(/--grace <duration>.*\n?.*\(default: 24h\)/);
  });
});

describe('tollgate CLI: what does not exist is one line on stderr and exit 1', SLOW, () => {
  const dir = tempDir();
  const db = join(dir, 'tollgate.db');
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
  it.each(cases)('%s', (_name, args) => {
    expectFailure(cli([...args, '--db', db, '--json'], { cwd: dir }), 1, /(account acct_missing|key key_missing) not found/);
  });
});

describe('tollgate CLI against a running gateway (another process, the same database file)', SLOW, () => {
  let up: Upstream;
  let gw: TestGateway;
  const clock = fakeClock(Date.now());
  let fake: TestGateway;

  beforeAll(async () => {
    up = await startUpstream();
    const file = { routes: [{ path: '/api/', upstream: up.url }] };
    gw = await startGateway({ file });
    fake = await startGateway({ file, now: clock.now });
  });
  afterAll(async () => {
    await gw.close();
    await fake.close();
    await up.close();
  });

  async function cliJson<T>(g: TestGateway, ...args: string[]): Promise<T> {
    return parsed<T>(await cliAsync([...args, '--db', g.dbPath, '--json']));
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

  it('a key revoked with the CLI is refused (401) within one second', async () => {
    const { account, key } = await accountWithKey(gw);
    expect(await status(gw, key.key)).toBe(200);

    // The usage the gateway recorded is what the CLI reports.
    const usage = await cliJson<{ id: string; requests: number; quotaUsed: number; byStatus: Record<string, number> }>(gw, 'usage', account.id);
    expect(usage).toMatchObject({ id: account.id, requests: 1, quotaUsed: 1, byStatus: { 200: 1 } });

    // Poll while the CLI runs: whenever its write lands, the gateway has one second to notice.
    const revoking = cliAsync(['keys', 'revoke', key.id, '--db', gw.dbPath, '--json']);
    const refusedAt = await pollUntilRefused(gw, key.key);
    const revoked = parsed<KeyJson>(await revoking);
    expect(revoked).toMatchObject({ id: key.id, state: 'revoked' });
    const revokedAt = Date.parse(revoked.revokedAt!);
    expect(refusedAt).toBeGreaterThanOrEqual(revokedAt);
    expect(refusedAt - revokedAt).toBeLessThan(1000);
    expect(await status(gw, key.key)).toBe(401);
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
  it('runs the gateway on the --db file and stops cleanly on SIGTERM', async () => {
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
