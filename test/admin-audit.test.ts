// The audit log: every administrative change, through the admin API (by the calling token's
// fingerprint, with the request's X-Request-Id) or the CLI on the database (by 'cli'), written in
// the change's own transaction; listed newest first by GET /admin/v1/audit and `tollgate audit`.
// Every test runs on the SQLite file and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../src/admin/auth.ts';
import type { AccountDoc, AuditDoc, KeyDoc, NewKeyDoc, Page } from '../src/admin/shapes.ts';
import { ADMIN_TOKEN, adminApi, OTHER_TOKEN, problem, startAdminBackend } from './admin-client.ts';
import { BACKENDS } from './backend-gateway.ts';
import { parsed, runCli } from './cli-run.ts';

describe.each(BACKENDS)('the audit log on $backend', ({ backend }) => {
  let gw: Awaited<ReturnType<typeof startAdminBackend>>;
  let account: AccountDoc;
  const requestIds: string[] = [];
  beforeAll(async () => {
    gw = await startAdminBackend(backend, { env: {}, file: { plans: { free: { monthlyQuota: 10 }, pro: { monthlyQuota: 100 } }, defaultPlan: 'free' } });
  });
  afterAll(() => gw.close());

  /** The API call, remembering the request id its answer carried. */
  async function did<T>(res: Promise<{ status: number; headers: Headers; body: T }>): Promise<T> {
    const r = await res;
    expect(r.status).toBeLessThan(300);
    requestIds.push(r.headers.get('x-request-id')!);
    return r.body;
  }
  const log = async (query = '') => (await gw.api.get<Page<AuditDoc>>(`/admin/v1/audit${query}`)).body;

  it('records each kind of change made through the API: what, on what, by which token, in which request', async () => {
    const api = gw.api;
    account = await did(api.post<AccountDoc>('/admin/v1/accounts', { email: 'audit@example.com', name: 'A' }));
    await did(api.patch(`/admin/v1/accounts/${account.id}`, { plan: 'pro' }));
    await did(api.patch(`/admin/v1/accounts/${account.id}`, { status: 'suspended' }));
    const key = await did(api.post<NewKeyDoc>('/admin/v1/keys', { accountId: account.id, name: 'k' }));
    const rotated = await did(adminApi(gw.adminUrl, OTHER_TOKEN).post<{ new: KeyDoc }>(`/admin/v1/keys/${key.id}/rotate`, { graceSeconds: 0 }));
    await did(api.post(`/admin/v1/keys/${rotated.new.id}/revoke`));
    await did(api.post(`/admin/v1/accounts/${account.id}/credits/grant`, { amountMicros: 5000, reason: 'welcome' }));
    await did(api.post(`/admin/v1/accounts/${account.id}/credits/deduct`, { amountMicros: 2000, reason: 'refund reversed' }));

    const entries = (await log()).data.reverse();
    const me = fingerprint(ADMIN_TOKEN);
    expect(entries.map((e) => [e.action, e.target, e.accountId, e.actor, e.requestId])).toEqual([
      ['account.create', account.id, account.id, me, requestIds[0]],
      ['account.update', account.id, account.id, me, requestIds[1]],
      ['account.update', account.id, account.id, me, requestIds[2]],
      ['key.create', key.id, account.id, me, requestIds[3]],
      ['key.rotate', key.id, account.id, fingerprint(OTHER_TOKEN), requestIds[4]],
      ['key.revoke', rotated.new.id, account.id, me, requestIds[5]],
      ['credits.grant', account.id, account.id, me, requestIds[6]],
      ['credits.deduct', account.id, account.id, me, requestIds[7]],
    ]);
    expect(entries.map((e) => e.change)).toEqual([
      { email: 'audit@example.com', name: 'A', plan: 'free' },
      { plan: { from: 'free', to: 'pro' } },
      { status: { from: 'active', to: 'suspended' }, statusReason: { from: null, to: 'operator' } },
      { name: 'k', expiresAt: null },
      { newKeyId: rotated.new.id, expiresAt: { from: null, to: expect.any(Number) } },
      {},
      { amountMicros: 5000, reason: 'welcome', balanceMicros: { from: 0, to: 5000 } },
      { amountMicros: 2000, reason: 'refund reversed', balanceMicros: { from: 5000, to: 3000 } },
    ]);
    expect(me).toMatch(/^token:[0-9a-f]{12}$/);
    expect(JSON.stringify(entries)).not.toContain(ADMIN_TOKEN);
    expect(JSON.stringify(entries)).not.toContain(key.key);
  });

  it('records nothing for what changed nothing or was refused', async () => {
    const count = async () => (await gw.select<{ n: number }>('SELECT count(*) AS n FROM audit_log'))[0].n;
    const before = await count();
    await gw.api.patch(`/admin/v1/accounts/${account.id}`, { plan: 'pro' });
    problem(await gw.api.post(`/admin/v1/accounts/${account.id}/credits/deduct`, { amountMicros: 10 ** 9, reason: 'too much' }), 409, 'insufficient-balance');
    problem(await gw.api.post('/admin/v1/accounts', { email: 'audit@example.com' }), 409, 'conflict');
    expect(await count()).toBe(before);
    // Append-only, like the ledger.
    await expect(gw.run('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
    await expect(gw.run("UPDATE audit_log SET actor = 'someone else'")).rejects.toThrow(/append-only/);
  });

  it('records the CLI\'s own changes on the database as by "cli", and lists them with tollgate audit, paged and by account', async () => {
    const env = { TOLLGATE_CONFIG: gw.config.source, ...gw.cli.env };
    const cli = (...args: string[]) => runCli([...args, ...gw.cli.args, '--json'], env);
    const other = parsed<AccountDoc>(await cli('accounts', 'create', '--email', 'cli@example.com'));
    parsed(await cli('credits', 'grant', other.id, '1.00', '--reason', 'from a shell'));
    const elsewhere = await gw.remote();
    try {
      const newest = (await elsewhere.ops.audit({ limit: 2 })).data;
      expect(newest.map((e) => [e.action, e.actor, e.requestId])).toEqual([['credits.grant', 'cli', null], ['account.create', 'cli', null]]);
    } finally {
      await elsewhere.close();
    }
    const page = parsed<Page<AuditDoc>>(await cli('audit', '--limit', '3'));
    expect(page.data.map((e) => e.action)).toEqual(['credits.grant', 'account.create', 'credits.deduct']);
    const rest = parsed<Page<AuditDoc>>(await cli('audit', '--limit', '3', '--after', page.next!));
    expect(rest.data[0].id).toBe(page.data[2].id - 1);
    expect(parsed<Page<AuditDoc>>(await cli('audit', '--account', other.id)).data.map((e) => e.action)).toEqual(['credits.grant', 'account.create']);
    expect((await log(`?account=${account.id}`)).data.every((e) => e.accountId === account.id)).toBe(true);
    const human = await runCli(['audit', '--limit', '1', ...gw.cli.args], env);
    expect(human.stdout).toMatch(/^ID\s+TIME\s+BY\s+ACTION\s+TARGET\s+CHANGE\n\d+\s+\S+\s+cli\s+credits\.grant\s+acct_/);
    expect(human.stdout.trimEnd().split('\n').at(-1)).toMatch(/^next page: tollgate audit --limit 1 --after \d+$/);
    problem(await gw.api.get('/admin/v1/audit?after=abc'), 422, 'invalid-input');
  });
});
