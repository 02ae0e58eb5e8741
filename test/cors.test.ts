// Routes that opt in with "cors" answer a browser's preflight without a key and let the page read
// every answer, refusals included; routes that do not opt in are unchanged. On the SQLite
// file and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, rawRequest, startUpstream, type Upstream } from './helpers.ts';

const APP = 'https://app.example.com';

describe.each(BACKENDS)('CORS on $backend', ({ backend }) => {
  let up: Upstream;
  let gw: BackendGateway;
  let key: string;
  beforeAll(async () => {
    up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': 'https://evil.example' });
      res.end('{"ok":true}');
    });
    gw = await startBackendGateway(backend, {
      env: {},
      file: {
        routes: [
          { path: '/api/', upstream: up.url, cors: [APP] },
          { path: '/open/', upstream: up.url, cors: '*' },
          { path: '/plain/', upstream: up.url },
        ],
      },
    });
    ({ key } = await gw.seed('default'));
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  const preflight = (path: string, origin: string) => rawRequest(`${gw.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });

  it('a preflight from an allowed origin gets 204 without a key and never reaches the upstream', async () => {
    const seen = up.received.length;
    const res = await preflight('/api/items', APP);
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers['access-control-allow-methods']).toBe('POST');
    expect(res.headers['access-control-allow-headers']).toBe('authorization, content-type');
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.headers.vary).toMatch(/origin/i);
    expect(up.received.length).toBe(seen);
  });

  it('a preflight from another origin is refused with 403', async () => {
    const res = await preflight('/api/items', 'https://other.example');
    expect(res.status).toBe(403);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('an allowed origin reads the answer and the gateway\'s headers; the upstream\'s CORS headers are dropped', async () => {
    const res = await rawRequest(`${gw.url}/api/items`, { headers: { ...bearer(key), origin: APP } });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers['access-control-expose-headers']).toContain('ratelimit');
    expect(res.rawHeaders.filter((h) => h.toLowerCase() === 'access-control-allow-origin')).toHaveLength(1);
  });

  it('a refusal is readable too: the page sees its 401', async () => {
    const res = await rawRequest(`${gw.url}/api/items`, { headers: { origin: APP } });
    expect(res.status).toBe(401);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
  });

  it('"*" allows any origin', async () => {
    const res = await preflight('/open/x', 'https://anyone.example');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('a route without "cors" is unchanged: its preflight needs a key like any request', async () => {
    expect((await preflight('/plain/x', APP)).status).toBe(401);
  });
});
