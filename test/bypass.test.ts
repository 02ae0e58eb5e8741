// An auth-free route and a paid route on the same upstream: nothing sent to the free one reaches
// the upstream as a paid path, nothing the client sends poses as the gateway's own headers, and
// no copy of a key reaches a public route's upstream. On the SQLite file and on PostgreSQL.
import { Agent, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, rawRequest, startUpstream, type Upstream } from './helpers.ts';

/** Sends the target exactly as given (fetch and URL would resolve dot segments and fragments). */
function exact(gw: BackendGateway, target: string, headers: Record<string, string | string[]> = {}): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    httpRequest({ hostname, port, path: target, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject).end();
  });
}

describe.each(BACKENDS)('an auth-free "/" beside a paid "/api/" on $backend', ({ backend }) => {
  let up: Upstream;
  let gw: BackendGateway;
  let key: string;
  let accountId: string;

  beforeAll(async () => {
    up = await startUpstream();
    gw = await startBackendGateway(backend, {
      env: {},
      file: {
        routes: [
          { path: '/', upstream: up.url, auth: false },
          { path: '/api/', upstream: up.url, priceMicros: 1000, headers: { 'x-upstream-token': 'operator-secret' } },
        ],
        plans: { paid: { limits: { perSecond: 1000 }, monthlyQuota: 0, overage: 'credits' } },
      },
    });
    ({ key, id: accountId } = await gw.seed('paid', 1_000_000));
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  // Each of these is /api/secret to some upstream: nginx, Apache and Spring merge slashes; a URL
  // parser ends the path at "#"; Tomcat drops ";params", also from dot segments; IIS and Windows
  // match case-insensitively and read "\" as "/"; a second decoding turns "%252e" into ".".
  const TRICKS = [
    '//api/secret', '///api/secret', '/x//../api/secret',
    '/api/public/..#x', '/public/..#/api/secret', '/x#/../api/secret',
    '/public/..;/api/secret', '/public/.;/../api/secret', '/public/%2e%2e;/api/secret', '/api;x/secret', '/API;x/secret',
    '/public/%252e%252e/api/secret', '/public/..%00/api', '/public\\..\\api\\secret',
    'http://127.0.0.1/api/secret',
  ];

  it('every non-canonical form of a paid path is refused with 400 before any upstream', async () => {
    const seen = up.received.length;
    for (const target of TRICKS) {
      const res = await exact(gw, target);
      expect(res.status, target).toBe(400);
      expect(JSON.parse(res.body).type, target).toBe('urn:tollgate:error:bad-request');
    }
    expect(up.received.map((r) => r.url).slice(seen)).toEqual([]);
  });

  it('routes match case-insensitively: /API/secret is the paid route, not the free one', async () => {
    const res = await exact(gw, '/API/secret');
    expect(res.status).toBe(401);
    const paid = await exact(gw, '/Api/secret', bearer(key));
    expect(paid.status).toBe(200);
    expect(up.received.at(-1)!.headers['x-upstream-token']).toBe('operator-secret');
    expect(await gw.balance(accountId)).toBe(999_000);
  });

  it('paths that are canonical still reach the free route', async () => {
    for (const target of ['/public/page', '/public/a%20b', '/public/x?next=//api/secret', '/public/v1.2/file.txt', '/public/;jsessionid=1']) {
      const res = await exact(gw, target);
      expect(res.status, target).toBe(200);
      expect(up.received.at(-1)!.url).toBe(target);
    }
  });

  it('a live key written in any case of "Bearer", or sent twice, never reaches the free route\'s upstream', async () => {
    for (const headers of <Record<string, string | string[]>[]>[
      { authorization: `bearer ${key}` },
      { authorization: `BEARER ${key}` },
      { authorization: `Bearer  ${key} ` },
      { 'x-api-key': [key, key] },
      { 'x-api-key': ['other', key] },
      { authorization: key },
    ]) {
      const res = await exact(gw, '/public/with-key', headers);
      expect(res.status).toBe(200);
      const got = up.received.at(-1)!;
      expect(JSON.stringify(got.headers), JSON.stringify(headers)).not.toContain(key);
    }
  });

  it('one connection carrying several clients\' keys (as a reverse proxy does) authenticates each request as its own key', async () => {
    const other = await gw.seed('paid', 1_000_000);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const { hostname, port } = new URL(gw.url);
    const send = (k: string) => new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
      const req = httpRequest({ hostname, port, path: '/api/shared', agent, headers: { authorization: `Bearer ${k}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
      }).on('error', reject);
      req.end();
    });
    try {
      const seen: (string | undefined)[] = [];
      for (const k of [key, other.key, key, other.key]) {
        expect((await send(k)).status).toBe(200);
        seen.push(up.received.at(-1)!.headers['x-tollgate-account'] as string | undefined);
      }
      expect(seen).toEqual([accountId, other.id, accountId, other.id]);
      // A key just accepted on this connection is refused on it once revoked.
      await gw.operations().revokeKey(other.keyId);
      const refused = await send(other.key);
      expect(refused).toEqual({ status: 401, reused: true });
      expect((await send(key)).status).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  it('"bearer" in lower case authenticates on the paid route too', async () => {
    expect((await exact(gw, '/api/lower', { authorization: `bearer ${key}` })).status).toBe(200);
  });

  it('with the key in X-API-Key, the client\'s own Authorization reaches the upstream; the key does not', async () => {
    const res = await exact(gw, '/api/own-auth', { 'x-api-key': key, authorization: 'Basic dXNlcjpwYXNz' });
    expect(res.status).toBe(200);
    const got = up.received.at(-1)!;
    expect(got.headers.authorization).toBe('Basic dXNlcjpwYXNz');
    expect(got.headers['x-api-key']).toBeUndefined();
  });

  it('client headers that fold into the gateway\'s own (_ for -) are dropped, on both routes', async () => {
    const spoof = {
      'X-Tollgate_Account': 'acct_victim', 'x_tollgate_plan': 'enterprise', 'X-Forwarded_For': '10.6.6.6',
      'x-request_id': 'forged', 'Forwarded': 'for=10.6.6.6', 'X-Real-IP': '10.6.6.6',
    };
    // On the paid route the operator's own upstream credential cannot be shadowed either.
    for (const [target, headers] of [['/public/spoof', spoof], ['/api/spoof', { ...spoof, x_upstream_token: 'forged', ...bearer(key) }]] as const) {
      const res = await rawRequest(`${gw.url}${target}`, { headers });
      expect(res.status, target).toBe(200);
      const got = up.received.at(-1)!;
      const names = Object.keys(got.headers);
      expect(names.filter((n) => n.includes('_')), target).toEqual([]);
      expect(JSON.stringify(got.headers), target).not.toMatch(/acct_victim|enterprise|10\.6\.6\.6|forged/);
      expect(names).not.toContain('forwarded');
      expect(names).not.toContain('x-real-ip');
    }
    expect(up.received.at(-1)!.headers['x-tollgate-account']).toBe(accountId);
  });

  it('a client header named like another of the client\'s with _ for - is kept when the gateway owns neither', async () => {
    await rawRequest(`${gw.url}/public/own`, { headers: { 'x_custom_thing': 'kept' } });
    expect(up.received.at(-1)!.headers['x_custom_thing']).toBe('kept');
  });
});
