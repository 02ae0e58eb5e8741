// Usage and requests through the admin API: period totals, a per-day series, an account's latest
// requests (from memory, and from the file after a restart), and one request by the id its
// response carried (X-Request-Id), also when it is older than the latest rows searched. The API's
// tests run on the SQLite file and on PostgreSQL. The API's
// tests run on the SQLite file and on PostgreSQL.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecentRequestsDoc, UsageDaysDoc } from '../src/admin/operations.ts';
import type { AccountDoc, NewKeyDoc, RequestDoc, UsageDoc } from '../src/admin/shapes.ts';
import { openDb } from '../src/db/open.ts';
import { findRequest } from '../src/db/request-lookup.ts';
import { problem, startAdminBackend } from './admin-client.ts';
import { BACKENDS } from './backend-gateway.ts';
import { bearer, fakeClock, fetchText, startUpstream, tempDir, type Upstream } from './helpers.ts';

describe.each(BACKENDS)('admin API: usage and requests on $backend', ({ backend }) => {
  const clock = fakeClock('2026-11-10T09:00:00.000Z');
  let up: Upstream;
  let gw: Awaited<ReturnType<typeof startAdminBackend>>;
  let account: AccountDoc;
  let key: NewKeyDoc;
  const ids: string[] = [];
  const file = () => ({
    routes: [{ path: '/api/', upstream: up.url, priceMicros: 100 }],
    plans: { metered: { monthlyQuota: 2, overage: 'credits' } },
  });

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      res.writeHead(req.url!.includes('missing') ? 404 : 200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    gw = await startAdminBackend(backend, { now: clock.now, env: {}, file: file() });
    account = (await gw.api.post<AccountDoc>('/admin/v1/accounts', { email: 'usage@example.com' })).body;
    key = (await gw.api.post<NewKeyDoc>('/admin/v1/keys', { accountId: account.id })).body;
    await gw.api.post(`/admin/v1/accounts/${account.id}/credits/grant`, { amountMicros: 10_000, reason: 'test' });
    for (const [day, path] of [['2026-11-08', '/api/a'], ['2026-11-10', '/api/b'], ['2026-11-10', '/api/missing']]) {
      clock.set(`${day}T09:00:00.000Z`);
      const res = await fetchText(`${gw.url}${path}`, { headers: bearer(key.key) });
      ids.push(res.headers.get('x-request-id')!);
    }
    // Written: these tests read what the database has (the next-but-last test, what is not written yet).
    await gw.usageRow(ids[2]);
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  it('usage: the current period\'s quota and totals, by status', async () => {
    const usage = (await gw.api.get<UsageDoc>(`/admin/v1/accounts/${account.id}/usage`)).body;
    expect(usage).toEqual({
      id: account.id, period: '2026-11', periodStart: '2026-11-01T00:00:00.000Z', periodEnd: '2026-12-01T00:00:00.000Z', plan: 'metered',
      monthlyQuota: 2, quotaUsed: 2, requests: 3, billable: 3, chargedMicros: 100, charged: '0.0001', byStatus: { 200: 2, 404: 1 },
    });
    expect((await gw.api.get<UsageDoc>(`/admin/v1/accounts/${account.id}/usage?month=2026-10`)).body).toMatchObject({ period: '2026-10', requests: 0 });
    problem(await gw.api.get(`/admin/v1/accounts/${account.id}/usage?month=2026-13`), 422, 'invalid-input');
    problem(await gw.api.get('/admin/v1/accounts/acct_nope/usage'), 404, 'not-found');
  });

  it('usage/daily: every day of the range, zeros included; the last 30 days by default', async () => {
    const days = (await gw.api.get<UsageDaysDoc>(`/admin/v1/accounts/${account.id}/usage/daily?from=2026-11-07&to=2026-11-10`)).body;
    expect(days).toMatchObject({ id: account.id, from: '2026-11-07', to: '2026-11-10' });
    expect(days.days.map((d) => [d.day, d.requests, d.chargedMicros])).toEqual([
      ['2026-11-07', 0, 0], ['2026-11-08', 1, 0], ['2026-11-09', 0, 0], ['2026-11-10', 2, 100],
    ]);
    const recent = (await gw.api.get<UsageDaysDoc>(`/admin/v1/accounts/${account.id}/usage/daily`)).body;
    expect(recent.days).toHaveLength(30);
    expect(recent).toMatchObject({ from: '2026-10-12', to: '2026-11-10' });
    expect(recent.days.reduce((n, d) => n + d.requests, 0)).toBe(3);
    problem(await gw.api.get(`/admin/v1/accounts/${account.id}/usage/daily?from=2024-01-01&to=2026-01-01`), 422, 'invalid-input');
    problem(await gw.api.get(`/admin/v1/accounts/${account.id}/usage/daily?from=2026-11-10&to=2026-11-01`), 422, 'invalid-input');
  });

  it('requests: the account\'s latest, newest first', async () => {
    const recent = (await gw.api.get<RecentRequestsDoc>(`/admin/v1/accounts/${account.id}/requests`)).body;
    expect(recent.requests.map((r) => r.requestId)).toEqual([...ids].reverse());
    expect(recent.requests[0]).toMatchObject({ path: '/api/missing', status: 404, priceMicros: 100, cost: '0.0001' });
    expect((await gw.api.get<RecentRequestsDoc>(`/admin/v1/accounts/${account.id}/requests?limit=1`)).body.requests).toHaveLength(1);
  });

  it('one request by its X-Request-Id, with its account, key, route, status and cost; an unknown id is 404 saying where it looked', async () => {
    const r = (await gw.api.get<RequestDoc>(`/admin/v1/requests/${ids[1]}`)).body;
    expect(r).toMatchObject({
      requestId: ids[1], time: '2026-11-10T09:00:00.000Z', accountId: account.id, keyId: key.id, route: '/api/', method: 'GET', path: '/api/b',
      status: 200, billable: true, quotaPeriod: '2026-11', model: null,
    });
    const around = (await gw.api.get<RequestDoc>(`/admin/v1/requests/${ids[0]}?around=2026-11-08T09:05:00Z`)).body;
    expect(around.path).toBe('/api/a');
    const missing = problem(await gw.api.get('/admin/v1/requests/no-such-id'), 404, 'not-found');
    expect(missing.detail).toBe('request no-such-id not found: it looked from 2026-11-08T09:00:00.000Z to 2026-11-10T09:00:00.000Z; '
      + 'give the time of the request (around) to look elsewhere');
    // Within 15 minutes of `around` only.
    problem(await gw.api.get(`/admin/v1/requests/${ids[0]}?around=2026-11-10T09:00:00Z`), 404, 'not-found');
    problem(await gw.api.get(`/admin/v1/requests/${ids[0]}?around=yesterday`), 422, 'invalid-input');
  });

  it('a request just answered counts at once, before its row is written: in the usage, the days and the latest requests', async () => {
    const other = (await gw.api.post<AccountDoc>('/admin/v1/accounts', { email: 'queued@example.com' })).body;
    const otherKey = (await gw.api.post<NewKeyDoc>('/admin/v1/keys', { accountId: other.id })).body;
    await gw.api.post(`/admin/v1/accounts/${other.id}/credits/grant`, { amountMicros: 1000, reason: 'test' });
    const id = (await fetchText(`${gw.url}/api/now`, { headers: bearer(otherKey.key) })).headers.get('x-request-id')!;
    expect((await gw.api.get<UsageDoc>(`/admin/v1/accounts/${other.id}/usage`)).body).toMatchObject({ requests: 1, byStatus: { 200: 1 } });
    const today = (await gw.api.get<UsageDaysDoc>(`/admin/v1/accounts/${other.id}/usage/daily?from=2026-11-10&to=2026-11-10`)).body;
    expect(today.days.map((d) => d.requests)).toEqual([1]);
    expect((await gw.api.get<RecentRequestsDoc>(`/admin/v1/accounts/${other.id}/requests`)).body.requests.map((r) => r.requestId)).toEqual([id]);
    expect((await gw.api.get<RequestDoc>(`/admin/v1/requests/${id}`)).body.accountId).toBe(other.id);
  });

  it('after a restart (the account no longer in memory) the requests come from the database', async () => {
    const before = (await gw.api.get<RecentRequestsDoc>(`/admin/v1/accounts/${account.id}/requests`)).body;
    await gw.close();
    gw = await startAdminBackend(backend, { now: clock.now, env: {}, file: file(), database: gw.database });
    expect(gw.app.state.accounts.state(account.id)).toBeUndefined();
    expect((await gw.api.get<RecentRequestsDoc>(`/admin/v1/accounts/${account.id}/requests`)).body).toEqual(before);
  });
});

describe('request lookup (a bounded scan of the usage rows)', () => {
  const db = openDb(join(tempDir(), 'lookup.db'));
  const insert = db.prepare(`INSERT INTO usage (ts, request_id, route, method, path, status, request_bytes, response_bytes,
    latency_us, price_micros, billable) VALUES (?, ?, '/', 'GET', '/', 200, 0, 0, 0, 0, 1)`);
  const T = Date.parse('2026-11-10T00:00:00.000Z');
  for (let i = 0; i < 1000; i++) insert.run(T + i * 60_000, `r${i}`);

  it('finds a request among the latest rows it scans, not an older one; with the time, it finds that one', () => {
    expect(findRequest(db, 'r990', undefined, 100).found?.requestId).toBe('r990');
    expect(findRequest(db, 'r10', undefined, 100)).toEqual({ found: undefined, from: T + 900 * 60_000, to: T + 999 * 60_000 });
    expect(findRequest(db, 'r10', T + 12 * 60_000, 100).found?.requestId).toBe('r10');
    // 15 minutes either side of the hint, at most the scan's size around it.
    expect(findRequest(db, 'r10', T + 26 * 60_000, 100).found).toBeUndefined();
    expect(findRequest(db, 'r500', T + 500 * 60_000, 10).found?.requestId).toBe('r500');
    expect(findRequest(db, 'r494', T + 500 * 60_000, 10).found).toBeUndefined();
  });
});
