// /admin/v1/keys on a running gateway: the key appears once and is never stored, listings show
// when each key last authenticated a request (from memory: the request path writes nothing for
// it), a revocation is refused by the very next proxied request, a rotation keeps the old key
// for its grace period. Every test runs on the SQLite file and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountDoc, KeyDoc, NewKeyDoc, Page } from '../src/admin/shapes.ts';
import { problem, startAdminBackend } from './admin-client.ts';
import { BACKENDS } from './backend-gateway.ts';
import { bearer, checkProblem, fakeClock, fetchText, startUpstream, type Upstream } from './helpers.ts';

describe.each(BACKENDS)('admin API: keys on $backend', ({ backend }) => {
  const clock = fakeClock('2026-11-10T09:00:00.000Z');
  let up: Upstream;
  let gw: Awaited<ReturnType<typeof startAdminBackend>>;
  let account: AccountDoc;
  beforeAll(async () => {
    up = await startUpstream();
    gw = await startAdminBackend(backend, { now: clock.now, file: { routes: [{ path: '/api/', upstream: up.url }] }, env: {} });
    account = (await gw.api.post<AccountDoc>('/admin/v1/accounts', { email: 'keys@example.com' })).body;
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  const call = (key: string) => fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
  const newKey = async (body: Record<string, unknown> = {}) => {
    const res = await gw.api.post<NewKeyDoc>('/admin/v1/keys', { accountId: account.id, ...body });
    expect(res.status).toBe(201);
    return res.body;
  };

  it('creates a key that works at once; the key is in that answer only, and nowhere in the database', async () => {
    const k = await newKey({ name: 'ci', expiresAt: '2026-12-10T09:00:00.000Z' });
    expect(k).toMatchObject({ accountId: account.id, name: 'ci', state: 'active', expiresAt: '2026-12-10T09:00:00.000Z', lastUsedAt: null });
    expect(k.key).toMatch(/^tg_[0-9A-Za-z]{38}$/);
    expect((await call(k.key)).status).toBe(200);
    const got = await gw.api.get<KeyDoc>(`/admin/v1/keys/${k.id}`);
    expect(got.text).not.toContain(k.key);
    const listed = await gw.api.get<Page<KeyDoc>>(`/admin/v1/keys?account=${account.id}`);
    expect(listed.text).not.toContain(k.key);
    const dump = JSON.stringify(await gw.select('SELECT * FROM api_keys'));
    expect(dump).not.toContain(k.key);
    problem(await gw.api.post('/admin/v1/keys', { accountId: 'acct_nope' }), 404, 'not-found');
    problem(await gw.api.post('/admin/v1/keys', { accountId: account.id, expiresAt: '2020-01-01T00:00:00Z' }), 422, 'invalid-input');
    problem(await gw.api.post('/admin/v1/keys', { accountId: account.id, expiresAt: 'tomorrow' }), 422, 'invalid-input');
  });

  it('lists an account\'s keys with the time each last authenticated a request, in pages', async () => {
    const used = await newKey({ name: 'used' });
    const idle = await newKey({ name: 'idle' });
    clock.set('2026-11-10T09:30:00.000Z');
    expect((await call(used.key)).status).toBe(200);
    clock.set('2026-11-10T09:31:00.000Z');
    const keys = (await gw.api.get<Page<KeyDoc>>(`/admin/v1/keys?account=${account.id}&limit=500`)).body.data;
    expect(keys.find((k) => k.id === used.id)!.lastUsedAt).toBe('2026-11-10T09:30:00.000Z');
    expect(keys.find((k) => k.id === idle.id)!.lastUsedAt).toBeNull();
    // Nothing was written for it: last use is memory only.
    expect(Object.keys((await gw.select<Record<string, unknown>>('SELECT * FROM api_keys'))[0]).filter((c) => c.includes('used'))).toEqual([]);

    const first = (await gw.api.get<Page<KeyDoc>>(`/admin/v1/keys?account=${account.id}&limit=2`)).body;
    const rest = (await gw.api.get<Page<KeyDoc>>(`/admin/v1/keys?account=${account.id}&limit=2&after=${first.next}`)).body;
    expect([...first.data, ...rest.data].map((k) => k.id)).toEqual(keys.slice(0, 4).map((k) => k.id));
    problem(await gw.api.get('/admin/v1/keys?account=acct_nope'), 404, 'not-found');
  });

  it('a key revoked through the API gets 401 on the very next proxied request', async () => {
    const k = await newKey();
    expect((await call(k.key)).status).toBe(200); // in the gateway's memory now
    const revoked = await gw.api.post<KeyDoc>(`/admin/v1/keys/${k.id}/revoke`);
    expect(revoked.body).toMatchObject({ id: k.id, state: 'revoked', revokedAt: '2026-11-10T09:31:00.000Z' });
    checkProblem(await call(k.key), 401, 'invalid-key');
    // Revoking twice keeps the first time.
    clock.advance(60_000);
    expect((await gw.api.post<KeyDoc>(`/admin/v1/keys/${k.id}/revoke`)).body.revokedAt).toBe('2026-11-10T09:31:00.000Z');
    problem(await gw.api.post(`/admin/v1/keys/${k.id}/rotate`), 409, 'conflict');
    problem(await gw.api.post('/admin/v1/keys/key_nope/revoke'), 404, 'not-found');
  });

  it('rotate issues a new key; the old one works for graceSeconds, then stops', async () => {
    const k = await newKey({ name: 'rotating' });
    const rotated = (await gw.api.post<{ old: KeyDoc; new: NewKeyDoc }>(`/admin/v1/keys/${k.id}/rotate`, { graceSeconds: 60 })).body;
    expect(rotated.new).toMatchObject({ accountId: account.id, name: 'rotating', state: 'active' });
    expect(rotated.old).toMatchObject({ id: k.id, replacedBy: rotated.new.id, expiresAt: new Date(clock.now() + 60_000).toISOString() });
    expect((await call(rotated.new.key)).status).toBe(200);
    expect((await call(k.key)).status).toBe(200);
    clock.advance(60_000);
    checkProblem(await call(k.key), 401, 'invalid-key');
    expect((await call(rotated.new.key)).status).toBe(200);
    problem(await gw.api.post(`/admin/v1/keys/${rotated.new.id}/rotate`, { graceSeconds: -1 }), 422, 'invalid-input');
  });
});
