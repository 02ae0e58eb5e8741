// The admin listener answers only a valid admin token: any request without one — on any
// endpoint, on a path that does not exist, with any method — gets the same 401 and nothing else.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRoutes } from '../src/admin/server.ts';
import { loadConfig } from '../src/config.ts';
import { ADMIN_TOKEN, adminApi, OTHER_TOKEN, startAdminGateway, type AdminGateway } from './admin-client.ts';
import { checkProblem, rawRequest, seedAccount, startGateway } from './helpers.ts';

const fill = (path: string) => path.replace(/\{(\w+)\}/g, (_, name: string) => `x-${name}`);

describe('admin API authentication', () => {
  let gw: AdminGateway;
  beforeAll(async () => {
    gw = await startAdminGateway();
  });
  afterAll(() => gw.close());

  /** The 401 without its request id: what tells one refusal from another. */
  async function refusal(method: string, path: string, headers: Record<string, string>, body?: string) {
    const res = await rawRequest(gw.adminUrl + path, { method, headers, body });
    const problem = checkProblem(res, 401, 'admin-unauthorized', [ADMIN_TOKEN, OTHER_TOKEN]);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="tollgate"');
    const { requestId: _, ...rest } = problem;
    return { rest, headers: Object.keys(res.headers).filter((h) => h !== 'date').sort() };
  }

  it('every endpoint refuses a request without a token, with a wrong token or a malformed header, alike', async () => {
    const routes = adminRoutes();
    expect(routes.length).toBeGreaterThan(20);
    const first = await refusal('GET', '/admin/v1/accounts', {});
    for (const r of routes) {
      const body = r.method === 'GET' ? undefined : '{"email":"a@example.com"}';
      for (const headers of <Record<string, string>[]>[{}, { authorization: 'Bearer not-the-token-at-all-x' }, { authorization: `Basic ${ADMIN_TOKEN}` },
        { authorization: `Bearer ${ADMIN_TOKEN}x` }, { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` }, { 'x-api-key': ADMIN_TOKEN }]) {
        expect(await refusal(r.method, fill(r.path), { ...headers, 'content-type': 'application/json' }, body)).toEqual(first);
      }
    }
  });

  it('a path that does not exist and a method no endpoint takes get the same 401: nothing says which endpoints exist', async () => {
    const known = await refusal('GET', '/admin/v1/accounts', {});
    expect(await refusal('GET', '/admin/v1/nothing-here', {})).toEqual(known);
    expect(await refusal('DELETE', '/admin/v1/accounts', {})).toEqual(known);
    expect(await refusal('GET', '/nothing', {})).toEqual(known);
    expect(await refusal('GET', '/metrics', {})).toEqual(known);
  });

  it('a refused request changes nothing: a POST without a token creates no account', async () => {
    await refusal('POST', '/admin/v1/accounts', { 'content-type': 'application/json' }, '{"email":"nobody@example.com"}');
    expect(gw.db.prepare('SELECT count(*) FROM accounts').pluck().get()).toBe(0);
    expect(gw.db.prepare('SELECT count(*) FROM audit_log').pluck().get()).toBe(0);
  });

  it('with either configured token every endpoint answers (no 401), in a documented status', async () => {
    const { account, keyId } = seedAccount(gw.admin);
    const ids: Record<string, string> = { id: account.id, requestId: 'no-such-request' };
    for (const r of adminRoutes()) {
      const path = r.path.replace('/keys/{id}', `/keys/${keyId}`).replace(/\{(\w+)\}/g, (_, n: string) => ids[n]);
      for (const token of [ADMIN_TOKEN, OTHER_TOKEN]) {
        const res = await adminApi(gw.adminUrl, token).call(r.method, path, { body: r.method === 'GET' ? undefined : {} });
        expect(res.status, `${r.method} ${path}`).not.toBe(401);
      }
    }
  });

  it('the user key of a customer is not an admin token', async () => {
    const { key } = seedAccount(gw.admin);
    await refusal('GET', '/admin/v1/accounts', { authorization: `Bearer ${key}` });
  });
});

describe('admin API settings', () => {
  it('is off without ADMIN_TOKEN: no listener', async () => {
    const gw = await startGateway();
    try {
      expect(gw.app.admin).toBeUndefined();
    } finally {
      await gw.close();
    }
  });

  it('listens on ADMIN_PORT at ADMIN_HOST (8081 on 127.0.0.1 by default) and refuses short tokens at start', () => {
    expect(loadConfig({ ADMIN_TOKEN: ADMIN_TOKEN }).admin).toEqual({ port: 8081, host: '127.0.0.1', tokens: [ADMIN_TOKEN] });
    expect(loadConfig({ ADMIN_TOKEN: ` ${ADMIN_TOKEN} ,${OTHER_TOKEN}`, ADMIN_PORT: '9191', ADMIN_HOST: '0.0.0.0' }).admin)
      .toEqual({ port: 9191, host: '0.0.0.0', tokens: [ADMIN_TOKEN, OTHER_TOKEN] });
    expect(() => loadConfig({ ADMIN_TOKEN: 'short' })).toThrow(/ADMIN_TOKEN: token 1 has 5 characters; at least 16/);
    expect(() => loadConfig({ ADMIN_TOKEN: ADMIN_TOKEN, ADMIN_PORT: '8080' })).toThrow(/ADMIN_PORT: 8080 is the gateway's own PORT/);
    expect(() => loadConfig({ ADMIN_TOKEN: ',' })).toThrow(/ADMIN_TOKEN: no token in it/);
  });
});
