// A plain HTTP route proxied, on the SQLite file and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, startUpstream, type Upstream } from './helpers.ts';

describe.each(BACKENDS)('proxying a plain HTTP route on $backend', ({ backend }) => {
  let up: Upstream;
  let gw: BackendGateway;
  let key: string;
  let accountId: string;
  let keyId: string;

  beforeAll(async () => {
    up = await startUpstream();
    gw = await startBackendGateway(backend, {
      env: {},
      file: {
        routes: [
          { path: '/api/', upstream: `${up.url}/base`, priceMicros: 1000, headers: { 'x-upstream-secret': 's3cret' } },
          { path: '/public/', upstream: up.url, auth: false, stripPrefix: true },
        ],
      },
    });
    ({ key, keyId, id: accountId } = await gw.seed('default'));
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  it('forwards to the upstream and returns its answer with the gateway headers', async () => {
    const res = await fetch(`${gw.url}/api/items?x=1`, { headers: bearer(key) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('ratelimit-policy')).toBe('"second";q=100;w=1, "minute";q=3000;w=60, "day";q=100000;w=86400');
    // The tightest window is the one with the fewest requests left: the second, whose burst
    // bucket still holds 199 but reports no more than its policy's q=100 (and so no wait).
    expect(res.headers.get('ratelimit')).toBe('"second";r=100');
    const got = up.received.at(-1)!;
    expect(got.url).toBe('/base/api/items?x=1');
    expect(got.headers['x-tollgate-account']).toBe(accountId);
    expect(got.headers['x-tollgate-key-id']).toBe(keyId);
    expect(got.headers['x-tollgate-plan']).toBe('default');
    expect(got.headers['x-upstream-secret']).toBe('s3cret');
    expect(got.headers.authorization).toBeUndefined();
    expect(got.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('serves public routes without a key and strips the prefix', async () => {
    const res = await fetch(`${gw.url}/public/hello`);
    expect(res.status).toBe(200);
    expect(up.received.at(-1)!.url).toBe('/hello');
  });
});
