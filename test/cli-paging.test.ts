// The CLI's listings page like the admin API's: on a file with 100 000 accounts `accounts list`
// prints 50 of them and the command for the next page, filters by plan, status and email, and
// `keys list` pages the same way.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AccountDoc, KeyDoc, Page } from '../src/admin/shapes.ts';
import { expectFailure, parsed, runCli } from './cli-run.ts';
import { openAdmin, tempDir } from './helpers.ts';

const ACCOUNTS = 100_000;

describe('tollgate accounts list and keys list, in pages', () => {
  const dir = tempDir();
  const db = join(dir, 'tollgate.db');
  const env = { TOLLGATE_CONFIG: join(dir, 'tollgate.config.json') };
  const run = (...args: string[]) => runCli([...args, '--db', db], env);
  let keyAccount = '';

  beforeAll(async () => {
    writeFileSync(env.TOLLGATE_CONFIG, JSON.stringify({ plans: { free: { monthlyQuota: 10 }, pro: { monthlyQuota: 100 } }, defaultPlan: 'free' }));
    parsed(await run('migrate', '--json'));
    const { storage, admin, close } = openAdmin(db);
    // Every tenth account on pro, every hundredth suspended; ids in creation order.
    storage.db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ACCOUNTS})
      INSERT INTO accounts (id, email, plan, status, created_at)
      SELECT printf('acct_%06d', i), printf('user%06d@example.com', i), CASE WHEN i % 10 = 0 THEN 'pro' ELSE 'free' END,
        CASE WHEN i % 100 = 0 THEN 'suspended' ELSE 'active' END, 1700000000000 + i FROM n`);
    keyAccount = 'acct_000007';
    for (let i = 0; i < 5; i++) admin.createKey({ accountId: keyAccount, name: `k${i}` });
    close();
  });

  it('prints 50 accounts by default and says how to get the next page; following it gives the next 50', async () => {
    const first = await run('accounts', 'list');
    expect(first.status).toBe(0);
    const lines = first.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+EMAIL/);
    expect(lines.slice(1, 51).map((l) => l.split(/\s+/)[0])).toEqual(Array.from({ length: 50 }, (_, i) => `acct_${String(i + 1).padStart(6, '0')}`));
    expect(lines.slice(51)).toEqual(['', 'next page: tollgate accounts list --after acct_000050']);
    const second = await run('accounts', 'list', '--after', 'acct_000050');
    expect(second.stdout.split('\n')[1]).toMatch(/^acct_000051\s/);
  });

  it('--json is the admin API\'s page: data and the next cursor', async () => {
    const page = parsed<Page<AccountDoc>>(await run('accounts', 'list', '--json', '--limit', '3', '--after', 'acct_000010'));
    expect(page.data.map((a) => a.id)).toEqual(['acct_000011', 'acct_000012', 'acct_000013']);
    expect(page.next).toBe('acct_000013');
    const last = parsed<Page<AccountDoc>>(await run('accounts', 'list', '--json', '--after', 'acct_099990'));
    expect(last.data).toHaveLength(10);
    expect(last.next).toBeNull();
  });

  it('filters by plan, status and email; the next-page line keeps the filters', async () => {
    const pro = await run('accounts', 'list', '--plan', 'pro', '--status', 'suspended', '--limit', '2');
    expect(pro.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^ID\s+EMAIL/),
      expect.stringMatching(/^acct_000100\s+user000100@example\.com\s+-\s+pro\s+suspended\s+0\.00$/),
      expect.stringMatching(/^acct_000200\s/),
      '',
      'next page: tollgate accounts list --limit 2 --plan pro --status suspended --after acct_000200',
    ]);
    const one = parsed<Page<AccountDoc>>(await run('accounts', 'list', '--json', '--email', 'USER054321@example.com'));
    expect(one).toEqual({ data: [expect.objectContaining({ id: 'acct_054321' })], next: null });
  });

  it('refuses a page size past the API\'s 500, a bad status and a cursor that names no account (exit 2)', async () => {
    expectFailure(await run('accounts', 'list', '--limit', '501'), 2, /--limit <n>.*not a whole number from 1 to 500/);
    expectFailure(await run('accounts', 'list', '--status', 'gone'), 2, /not a status: "gone"/);
    expectFailure(await run('accounts', 'list', '--after', 'acct_x'), 2, /after: no account acct_x/);
  });

  it('keys list pages the same way', async () => {
    const page = parsed<Page<KeyDoc>>(await run('keys', 'list', '--json', '--account', keyAccount, '--limit', '2'));
    expect(page.data.map((k) => k.name)).toEqual(['k0', 'k1']);
    const text = await run('keys', 'list', '--account', keyAccount, '--limit', '2', '--after', page.next!);
    expect(text.stdout).toMatch(/k2[^\n]*\n[^\n]*k3/);
    expect(text.stdout.trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^next page: tollgate keys list --account ${keyAccount} --limit 2 --after key_`));
  });
});
