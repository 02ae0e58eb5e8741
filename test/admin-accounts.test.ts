// /admin/v1/accounts on a running gateway: create, get, list in pages (cursor stable while
// accounts are created between pages, filters), change name, email, plan and standing — a
// suspension by hand is seen by the request path at once, with the reason 'operator'. Every
// test runs on the SQLite file and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountDoc, NewKeyDoc, Page } from '../src/admin/shapes.ts';
import { problem, startAdminBackend } from './admin-client.ts';
import { BACKENDS } from './backend-gateway.ts';
import { bearer, checkProblem, fetchText, startUpstream, type Upstream } from './helpers.ts';

const FILE = (upstream: string) => ({
  routes: [{ path: '/api/', upstream }],
  plans: { free: { limits: { perSecond: 100 }, monthlyQuota: 100 }, pro: { limits: { perSecond: 100 }, monthlyQuota: 1000 } },
  defaultPlan: 'free',
});

describe.each(BACKENDS)('admin API: accounts on $backend', ({ backend }) => {
  let up: Upstream;
  let gw: Awaited<ReturnType<typeof startAdminBackend>>;
  beforeAll(async () => {
    up = await startUpstream();
    gw = await startAdminBackend(backend, { file: FILE(up.url), env: {} });
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  const create = async (email: string, extra: Record<string, unknown> = {}) => {
    const res = await gw.api.post<AccountDoc>('/admin/v1/accounts', { email, ...extra });
    expect(res.status).toBe(201);
    return res.body;
  };

  it('creates an account on the default plan, or the one named, and gets it by id', async () => {
    const ann = await create('ann@example.com', { name: 'Ann Ltd' });
    expect(ann).toEqual({
      id: expect.stringMatching(/^acct_/), email: 'ann@example.com', name: 'Ann Ltd', plan: 'free', status: 'active', statusReason: null,
      balanceMicros: 0, balance: '0.00', createdAt: expect.any(String),
    });
    expect((await gw.api.get(`/admin/v1/accounts/${ann.id}`)).body).toEqual(ann);
    expect((await create('bob@example.com', { plan: 'pro' })).plan).toBe('pro');
  });

  it('refuses what it cannot take: a taken email (409, naming the holder), an unknown plan or field (422), bad JSON (400), an unknown id (404)', async () => {
    const holder = (await gw.api.get<Page<AccountDoc>>('/admin/v1/accounts?email=ANN@example.com')).body.data[0];
    const taken = await gw.api.post('/admin/v1/accounts', { email: 'Ann@Example.com' });
    expect(problem(taken, 409, 'conflict').detail).toContain(holder.id);
    expect(problem(await gw.api.post('/admin/v1/accounts', { email: 'c@example.com', plan: 'gold' }), 422, 'invalid-input').detail)
      .toBe('unknown plan "gold" (plans: free, pro)');
    expect(problem(await gw.api.post('/admin/v1/accounts', { email: 'c@example.com', emial: 'x' }), 422, 'invalid-input').detail).toMatch(/unknown field "emial"/);
    problem(await gw.api.post('/admin/v1/accounts', { email: 'not-an-email' }), 422, 'invalid-input');
    problem(await gw.api.post('/admin/v1/accounts', '{"email": '), 400, 'bad-request');
    expect(problem(await gw.api.get('/admin/v1/accounts/acct_nope'), 404, 'not-found').detail).toBe('account acct_nope not found');
    problem(await gw.api.get('/admin/v1/accounts?limit=0'), 422, 'invalid-input');
    problem(await gw.api.get('/admin/v1/accounts?limt=5'), 422, 'invalid-input');
    problem(await gw.api.call('DELETE', '/admin/v1/accounts'), 405, 'method-not-allowed');
    expect((await gw.api.get<Page<AccountDoc>>('/admin/v1/accounts?email=c@example.com')).body.data).toEqual([]);
  });

  it('lists oldest first in pages; accounts created between pages neither shift nor repeat what is listed', async () => {
    for (let i = 0; i < 5; i++) await create(`page${i}@example.com`);
    const all = (await gw.api.get<Page<AccountDoc>>('/admin/v1/accounts?limit=500')).body;
    expect(all.next).toBeNull();
    const first = (await gw.api.get<Page<AccountDoc>>('/admin/v1/accounts?limit=3')).body;
    expect(first.data).toEqual(all.data.slice(0, 3));
    expect(first.next).toBe(first.data[2].id);
    // New accounts arrive while the operator reads page one.
    const late = [await create('late1@example.com'), await create('late2@example.com')];
    const seen: AccountDoc[] = [...first.data];
    for (let next = first.next; next !== null;) {
      const page = (await gw.api.get<Page<AccountDoc>>(`/admin/v1/accounts?limit=3&after=${next}`)).body;
      seen.push(...page.data);
      next = page.next;
    }
    expect(seen.map((a) => a.id)).toEqual([...all.data, ...late].map((a) => a.id));
    expect(problem(await gw.api.get('/admin/v1/accounts?after=acct_nope'), 422, 'invalid-input').detail).toMatch(/after: no account acct_nope/);
  });

  it('filters by plan, status and email (exact, ignoring case), each page of the filtered list', async () => {
    const pro = (await gw.api.get<Page<AccountDoc>>('/admin/v1/accounts?plan=pro')).body.data;
    expect(pro.map((a) => a.email)).toEqual(['bob@example.com']);
    expect((await gw.api.get<Page<AccountDoc>>('/admin/v1/accounts?email=BOB@EXAMPLE.COM')).body.data).toEqual(pro);
    expect((await gw.api.get<Page<AccountDoc>>('/admin/v1/accounts?status=suspended')).body).toEqual({ data: [], next: null });
    const free = (await gw.api.get<Page<AccountDoc>>('/admin/v1/accounts?plan=free&status=active&limit=2')).body;
    expect(free.data.every((a) => a.plan === 'free')).toBe(true);
    expect(free.next).toBe(free.data[1].id);
    problem(await gw.api.get('/admin/v1/accounts?status=gone'), 422, 'invalid-input');
  });

  it('PATCH changes name, email and plan; a suspension by hand is "operator" and the next request gets 402; reactivating lets it in', async () => {
    const a = await create('patch@example.com');
    const key = (await gw.api.post<NewKeyDoc>('/admin/v1/keys', { accountId: a.id })).body.key;
    expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);

    const renamed = (await gw.api.patch<AccountDoc>(`/admin/v1/accounts/${a.id}`, { name: 'Patched', email: 'patched@example.com', plan: 'pro' })).body;
    expect(renamed).toMatchObject({ id: a.id, name: 'Patched', email: 'patched@example.com', plan: 'pro', status: 'active' });
    const usage = JSON.parse((await fetchText(`${gw.url}/_tollgate/usage`, { headers: bearer(key) })).body) as { plan: string };
    expect(usage.plan).toBe('pro');

    const suspended = (await gw.api.patch<AccountDoc>(`/admin/v1/accounts/${a.id}`, { status: 'suspended' })).body;
    expect(suspended).toMatchObject({ status: 'suspended', statusReason: 'operator' });
    checkProblem(await fetchText(`${gw.url}/api/x`, { headers: bearer(key) }), 402, 'account-suspended');

    const back = (await gw.api.patch<AccountDoc>(`/admin/v1/accounts/${a.id}`, { status: 'active', name: null })).body;
    expect(back).toMatchObject({ status: 'active', statusReason: null, name: null });
    expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);

    problem(await gw.api.patch(`/admin/v1/accounts/${a.id}`, { email: 'bob@example.com' }), 409, 'conflict');
    problem(await gw.api.patch(`/admin/v1/accounts/${a.id}`, { status: 'closed' }), 422, 'invalid-input');
    problem(await gw.api.patch(`/admin/v1/accounts/${a.id}`, { plan: 'gold' }), 422, 'invalid-input');
    problem(await gw.api.patch('/admin/v1/accounts/acct_nope', { name: 'x' }), 404, 'not-found');
  });
});
