// The access log and request ids: one JSON line per request with who, what and what it cost,
// never a key; ACCESS_LOG=errors and off; LOG_LEVEL=debug for a maintainer; and a client's own
// X-Request-Id kept beside the gateway's when it is a sane token.
// The gateways in this process run on the SQLite file and on PostgreSQL.
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessJson, createLogger, type AccessLine } from '../src/log.ts';
import { BACKENDS, startBackendGateway, type Backend, type BackendGateway } from './backend-gateway.ts';
import { bearer, rawRequest, startUpstream, tempDir, type Upstream } from './helpers.ts';
import { spawnServer } from './server-process.ts';
import { until } from './until.ts';

const PRICE = 1000;
const FILE = (upstream: string) => ({
  routes: [{ path: '/api/', upstream, priceMicros: PRICE }, { path: '/open/', upstream, auth: false }],
  plans: { paid: { limits: { perSecond: 1000 }, burst: 1000, monthlyQuota: 0, overage: 'credits' } },
  defaultPlan: 'paid',
});

interface Line { level: string; time: string; msg: string; [field: string]: unknown }

/** A gateway whose log lines are kept in `lines` (parsed) and `raw`. */
async function loggedGateway(backend: Backend, up: Upstream, env: Record<string, string> = {}) {
  const raw: string[] = [];
  const log = createLogger((env.LOG_LEVEL as 'info' | undefined) ?? 'info', (line) => raw.push(line));
  const gw = await startBackendGateway(backend, { file: FILE(up.url), env, log });
  const lines = () => raw.map((l) => JSON.parse(l) as Line);
  const requests = () => lines().filter((l) => l.msg === 'request');
  return { gw, raw, lines, requests };
}

describe.each(BACKENDS)('the access log on $backend', ({ backend }) => {
  let up: Upstream;
  let t: Awaited<ReturnType<typeof loggedGateway>>;
  let gw: BackendGateway;

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      res.writeHead(req.url!.includes('boom') ? 500 : 200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    t = await loggedGateway(backend, up);
    gw = t.gw;
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  it('writes one line per request: ids, account and key ids, route, method, status, duration, bytes, cost; never the key', async () => {
    const a = await gw.seed('paid', 10 * PRICE);
    const before = t.requests().length;
    const res = await fetch(`${gw.url}/api/things?q=1`, { method: 'POST', headers: { ...bearer(a.key), 'x-request-id': 'ticket-4711' }, body: 'hello' });
    expect(res.status).toBe(200);
    await res.text();
    const refused = await fetch(`${gw.url}/api/things`, { headers: bearer(`${a.key.slice(0, -1)}x`) });
    expect(refused.status).toBe(401);
    // A key put in the URL by mistake does not reach the log either.
    expect((await fetch(`${gw.url}/api/k?api_key=${a.key}`, { headers: bearer(a.key) })).status).toBe(200);
    await until(() => t.requests().length === before + 3, 2000, 'three access-log lines');

    const [ok, bad, inUrl] = t.requests().slice(before);
    expect(ok).toMatchObject({
      level: 'info', msg: 'request',
      requestId: res.headers.get('x-request-id'), clientRequestId: 'ticket-4711',
      client: '127.0.0.1', accountId: a.id, keyId: a.keyId,
      route: '/api/', method: 'POST', path: '/api/things?q=1', status: 200,
      bytesIn: 5, bytesOut: 11, costMicros: PRICE,
    });
    expect(ok.durationMs).toBeGreaterThan(0);
    expect(Date.parse(ok.time)).toBeGreaterThan(0);
    expect(bad).toMatchObject({ requestId: refused.headers.get('x-request-id'), route: '/api/', status: 401, error: 'MALFORMED_KEY', costMicros: 0 });
    expect(bad.accountId).toBeUndefined();
    expect(inUrl.path).toBe('/api/k?api_key=tg_…');
    expect(t.raw.join('')).not.toContain(a.key);
    expect(t.raw.join('')).not.toContain(a.key.slice(3, 30));
  });

  it('logs upstream failures, auth-free routes and the gateway\'s own endpoints too', async () => {
    const a = await gw.seed('paid', 10 * PRICE);
    const before = t.requests().length;
    expect((await fetch(`${gw.url}/api/boom`, { headers: bearer(a.key) })).status).toBe(500);
    expect((await fetch(`${gw.url}/open/page`)).status).toBe(200);
    expect((await fetch(`${gw.url}/_tollgate/usage`, { headers: bearer(a.key) })).status).toBe(200);
    expect((await fetch(`${gw.url}/_tollgate/nothing`)).status).toBe(404);
    await until(() => t.requests().length === before + 4, 2000, 'four access-log lines');
    const [boom, open, usage, missing] = t.requests().slice(before);
    expect(boom).toMatchObject({ route: '/api/', status: 500, costMicros: 0, accountId: a.id });
    expect(open).toMatchObject({ route: '/open/', status: 200, client: '127.0.0.1' });
    expect(open.accountId).toBeUndefined();
    expect(usage).toMatchObject({ path: '/_tollgate/usage', status: 200, accountId: a.id });
    expect(missing).toMatchObject({ path: '/_tollgate/nothing', status: 404, error: 'NOT_FOUND' });
  });
});

describe('the access log on stdout', () => {
  it('a gateway process writes every line whole and once, the last of them before a graceful exit', async () => {
    const up = await startUpstream();
    try {
      const dir = tempDir();
      const config = join(dir, 'tollgate.config.json');
      writeFileSync(config, JSON.stringify(FILE(up.url)));
      const server = await spawnServer({ TOLLGATE_CONFIG: config, DATABASE_PATH: join(dir, 'tollgate.db'), ACCESS_LOG: 'all' });
      // Many at once, so lines pile up while a write is in flight.
      const n = 400;
      const ids = new Set<string>();
      for (let round = 0; round < n / 50; round++) {
        await Promise.all(Array.from({ length: 50 }, async () => {
          const res = await fetch(`${server.url}/open/x`);
          await res.arrayBuffer();
          expect(res.status).toBe(200);
          ids.add(res.headers.get('x-request-id')!);
        }));
      }
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
      const lines = server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
      const logged = lines.filter((l) => l.msg === 'request' && l.route === '/open/').map((l) => l.requestId as string);
      expect(logged.length).toBe(n);
      expect(new Set(logged)).toEqual(ids);
    } finally {
      await up.close();
    }
  });

  it('lines wait for a 16 KB write only so long: one request\'s line is on stdout within a second, the gateway still running', async () => {
    const up = await startUpstream();
    const dir = tempDir();
    const config = join(dir, 'tollgate.config.json');
    writeFileSync(config, JSON.stringify(FILE(up.url)));
    const server = await spawnServer({ TOLLGATE_CONFIG: config, DATABASE_PATH: join(dir, 'tollgate.db'), ACCESS_LOG: 'all' });
    try {
      const res = await fetch(`${server.url}/open/one`);
      await res.arrayBuffer();
      const id = res.headers.get('x-request-id')!;
      await until(() => server.output().includes(`"requestId":"${id}"`), 1_000, 'the line of the request on stdout');
    } finally {
      server.child.kill('SIGKILL');
      await server.exited;
      await up.close();
    }
  });
});

describe.each(BACKENDS)('ACCESS_LOG and LOG_LEVEL on $backend', ({ backend }) => {
  let up: Upstream;
  beforeAll(async () => {
    up = await startUpstream();
  });
  afterAll(() => up.close());

  async function traffic(env: Record<string, string>) {
    const t = await loggedGateway(backend, up, env);
    try {
      const a = await t.gw.seed('paid', 10 * PRICE);
      expect((await fetch(`${t.gw.url}/api/ok`, { headers: bearer(a.key) })).status).toBe(200);
      expect((await fetch(`${t.gw.url}/api/no`)).status).toBe(401);
      expect((await fetch(`${t.gw.url}/open/ok`)).status).toBe(200);
      // A proxied request's line is written as its response ends, before the client has it.
      return t;
    } finally {
      await t.gw.close();
    }
  }

  it('ACCESS_LOG=errors writes only the requests answered with 400 or more; off writes none', async () => {
    const errors = await traffic({ ACCESS_LOG: 'errors' });
    expect(errors.requests().map((l) => l.status)).toEqual([401]);
    const off = await traffic({ ACCESS_LOG: 'off' });
    expect(off.requests()).toEqual([]);
    const all = await traffic({});
    expect(all.requests().map((l) => l.status)).toEqual([200, 401, 200]);
  });

  it('the access log does not depend on LOG_LEVEL (warn keeps it), but silent is silent', async () => {
    const warn = await traffic({ LOG_LEVEL: 'warn' });
    expect(warn.requests()).toHaveLength(3);
    expect(warn.lines().filter((l) => l.msg !== 'request').every((l) => l.level === 'warn' || l.level === 'error')).toBe(true);
    const silent = await traffic({ LOG_LEVEL: 'silent' });
    expect(silent.raw).toEqual([]);
  });

  it('LOG_LEVEL=debug shows the route and upstream chosen, lease calls and commits; info shows none of them', async () => {
    const debug = await traffic({ LOG_LEVEL: 'debug' });
    const msgs = debug.lines().filter((l) => l.level === 'debug');
    expect(msgs.find((l) => l.msg === 'forwarding')).toMatchObject({ route: '/api/', upstream: new URL(up.url).origin });
    expect(msgs.find((l) => l.msg === 'lease call')).toMatchObject({ call: 'take', outcome: 'ok' });
    expect(msgs.find((l) => l.msg === 'usage committed')).toMatchObject({ rows: expect.any(Number) });
    const info = await traffic({ LOG_LEVEL: 'info' });
    expect(info.lines().filter((l) => l.level === 'debug')).toEqual([]);
  });
});

describe.each(BACKENDS)('request ids on $backend', ({ backend }) => {
  let up: Upstream;
  let gw: BackendGateway;
  let key: string;
  beforeAll(async () => {
    // It echoes the ids it got, as some servers do: the client still sees each id once.
    up = await startUpstream((req, res) => {
      const echo = ['x-request-id', 'x-client-request-id'].filter((h) => req.headers[h]).map((h) => [h, req.headers[h] as string]);
      res.writeHead(200, Object.fromEntries(echo));
      res.end('ok');
    });
    gw = await startBackendGateway(backend, { env: {}, file: FILE(up.url) });
    ({ key } = await gw.seed('paid', 100 * PRICE));
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  it('a client\'s sane X-Request-Id is echoed as X-Client-Request-Id and passed upstream; the gateway\'s own id stays X-Request-Id', async () => {
    for (const sent of ['ticket-4711', 'a', 'client-req.42:abc_DEF', 'x'.repeat(128)]) {
      const res = await rawRequest(`${gw.url}/api/rid`, { headers: { ...bearer(key), 'x-request-id': sent } });
      expect(res.status).toBe(200);
      expect(res.headers['x-client-request-id']).toBe(sent);
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.rawHeaders.filter((h) => /^x-(client-)?request-id$/i.test(h))).toHaveLength(2);
      const got = up.received.at(-1)!.headers;
      expect(got['x-client-request-id']).toBe(sent);
      expect(got['x-request-id']).toBe(res.headers['x-request-id']);
    }
    // On refusals too: that is when a customer writes to support.
    const refused = await rawRequest(`${gw.url}/api/rid`, { headers: { 'x-request-id': 'ticket-4712' } });
    expect(refused.status).toBe(401);
    expect(refused.headers['x-client-request-id']).toBe('ticket-4712');
  });

  it('a hostile or malformed one is ignored: spaces, 200 characters, markup, a forged X-Client-Request-Id, two of them', async () => {
    const cases: Record<string, string | string[]>[] = [
      { 'x-request-id': 'has spaces' }, { 'x-request-id': 'y'.repeat(200) }, { 'x-request-id': '<script>' },
      { 'x-request-id': 'a;b' }, { 'x-client-request-id': 'forged' }, { 'x-request-id': ['one', 'two'] },
    ];
    for (const headers of cases) {
      const res = await rawRequest(`${gw.url}/api/bad`, { headers: { ...bearer(key), ...headers } });
      expect(res.status).toBe(200);
      expect(res.headers['x-client-request-id'], JSON.stringify(headers)).toBeUndefined();
      expect(up.received.at(-1)!.headers['x-client-request-id'], JSON.stringify(headers)).toBeUndefined();
    }
  });

  it('one carrying CR LF is refused by the HTTP parser before the gateway: nothing is echoed', async () => {
    const port = new URL(gw.url).port;
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(`GET /api/crlf HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nX-Request-Id: abc\rInjected: 1\r\n\r\n`);
      });
      let data = '';
      socket.on('data', (c: Buffer) => (data += c.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply.toLowerCase()).not.toContain('x-client-request-id');
    expect(reply.toLowerCase()).not.toContain('injected');
  });
});

describe('an access line', () => {
  const line: AccessLine = {
    requestId: 'req_1', clientRequestId: undefined, client: '127.0.0.1', accountId: 'acct_1', keyId: undefined, route: '/api/',
    method: 'GET', path: '/api/x', status: 200, durationMs: 1.25, bytesIn: 0, bytesOut: 12, costMicros: 100, error: undefined,
  };

  it('is one JSON object on one line, every field as given, the undefined ones left out', () => {
    const odd = ['quote " and \\ backslash', 'tab\tnewline\nnul\u0000', 'unicode é ✓ \u2028', '</script>', ''];
    for (const path of odd) {
      const text = accessJson({ ...line, path, error: path });
      expect(text.endsWith('\n')).toBe(true);
      expect(text.slice(0, -1)).not.toMatch(/[\n\r]/);
      const { time, ...rest } = JSON.parse(text) as Record<string, unknown>;
      expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Math.abs(Date.parse(time as string) - Date.now())).toBeLessThan(1_000);
      expect(rest).toEqual({
        level: 'info', msg: 'request', requestId: 'req_1', client: '127.0.0.1', accountId: 'acct_1', route: '/api/',
        method: 'GET', path, status: 200, durationMs: 1.25, bytesIn: 0, bytesOut: 12, costMicros: 100, error: path,
      });
    }
  });
});
