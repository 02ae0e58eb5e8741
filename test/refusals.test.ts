// Every refusal of the request path, through real sockets: status, headers and an RFC 9457 body
// that carries the request id and never a stack trace or the key. Every test runs on the SQLite
// file and on PostgreSQL.
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateKey } from '../src/keys.ts';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, checkProblem, closedPort, fakeClock, fetchText, rawRequest, startUpstream, type Upstream } from './helpers.ts';
import { until } from './until.ts';

const T0 = '2026-03-10T12:00:00.000Z';
const PERIOD = '2026-03';

/** An account on `plan` with one key. */
async function customer(gw: BackendGateway, plan = 'default') {
  const { id, key, keyId } = await gw.seed(plan);
  return { account: { id }, key, keyId };
}

describe.each(BACKENDS)('refusals on $backend', ({ backend }) => {
  const clock = fakeClock(T0);
  let up: Upstream;
  let hang: Server;
  let gw: BackendGateway;

  beforeAll(async () => {
    up = await startUpstream();
    // Accepts requests and never answers: the gateway's timeout has to fire.
    hang = createServer(() => {});
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const hangUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`;
    gw = await startBackendGateway(backend, {
      now: clock.now,
      env: { MAX_BODY_BYTES: '1024', SHUTDOWN_TIMEOUT_MS: '500' },
      file: {
        routes: [
          { path: '/api/', upstream: up.url, priceMicros: 1000 },
          { path: '/free/', upstream: up.url, metered: false },
          { path: '/dead/', upstream: `http://127.0.0.1:${await closedPort()}` },
          { path: '/slow/', upstream: hangUrl, timeoutMs: 150 },
        ],
        plans: {
          default: { limits: { perSecond: 1000 }, burst: 1000, monthlyQuota: null, overage: 'block' },
          tight: { limits: { perSecond: 2 }, burst: 2, monthlyQuota: null, overage: 'block' },
          twoWindows: { limits: { perSecond: 1, perMinute: 3 }, burst: 1, monthlyQuota: null, overage: 'block' },
          quota3: { limits: { perMinute: 1000 }, monthlyQuota: 3, overage: 'block' },
          quota2: { monthlyQuota: 2, overage: 'block' },
        },
        defaultPlan: 'default',
      },
    });
  });
  beforeEach(() => clock.set(T0));
  afterAll(async () => {
    await gw.close();
    hang.closeAllConnections();
    await new Promise<void>((r) => hang.close(() => r()));
    await up.close();
  });

  describe('authentication', () => {
    it('a request without a key gets 401 with WWW-Authenticate: Bearer and a problem body', async () => {
      const before = up.received.length;
      const res = await fetchText(`${gw.url}/api/x`);
      const p = checkProblem(res, 401, 'missing-key');
      expect(p.title).toBe('Missing API key');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
      expect(up.received.length).toBe(before);
    });

    it('a refused request leaves its keep-alive connection usable: the next request on it is answered', async () => {
      const { key } = await customer(gw);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const { hostname, port } = new URL(gw.url);
      const send = (o: { method?: string; headers?: Record<string, string>; body?: string }) => new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const req = httpRequest({ hostname, port, path: '/free/x', agent, method: o.method ?? 'GET', headers: o.headers }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
        }).on('error', reject);
        req.end(o.body);
      });
      try {
        expect(await send({ headers: bearer(key) })).toEqual({ status: 200, reused: false });
        // Refused before anything was read: a GET, and a POST whose body the gateway never read.
        expect(await send({ headers: bearer(generateKey()) })).toEqual({ status: 401, reused: true });
        expect(await send({ headers: bearer(key) })).toEqual({ status: 200, reused: true });
        expect(await send({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })).toEqual({ status: 401, reused: true });
        expect(await send({ headers: bearer(key) })).toEqual({ status: 200, reused: true });
      } finally {
        agent.destroy();
      }
    });

    it('a key with one character changed fails its checksum: 401 malformed, neither key echoed', async () => {
      const { key } = await customer(gw);
      const i = 10;
      const flipped = key.slice(0, i) + (key[i] === 'a' ? 'b' : 'a') + key.slice(i + 1);
      expect(flipped).not.toBe(key);
      const res = await fetchText(`${gw.url}/api/x`, { headers: bearer(flipped) });
      const p = checkProblem(res, 401, 'malformed-key', [key, flipped, key.slice(3, 20)]);
      expect(p.title).toBe('Malformed API key');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    });

    it('an Authorization header that is not Bearer is a malformed key', async () => {
      const res = await fetchText(`${gw.url}/api/x`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
      checkProblem(res, 401, 'malformed-key', ['dXNlcjpwYXNz']);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    });

    it('a well-formed key that was never issued gets 401 invalid', async () => {
      const unknown = generateKey();
      const res = await fetchText(`${gw.url}/api/x`, { headers: bearer(unknown) });
      const p = checkProblem(res, 401, 'invalid-key', [unknown]);
      expect(p.title).toBe('Invalid API key');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    });

    it('a revoked key gets 401 invalid', async () => {
      const { key, keyId } = await customer(gw);
      await gw.operations().revokeKey(keyId);
      const res = await fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      checkProblem(res, 401, 'invalid-key', [key]);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    });

    it('a key revoked by another process (as the CLI does) is refused within one second', async () => {
      const { key, keyId } = await customer(gw);
      expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
      const cli = await gw.remote();
      try {
        await cli.ops.revokeKey(keyId);
      } finally {
        await cli.close();
      }
      const revokedAt = performance.now();
      let res = await fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      while (res.status === 200 && performance.now() - revokedAt < 1500) {
        await new Promise((r) => setTimeout(r, 50));
        res = await fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      }
      expect(performance.now() - revokedAt).toBeLessThan(1000);
      checkProblem(res, 401, 'invalid-key', [key]);
    });

    it('a key first used after its expiry time gets 401 invalid', async () => {
      const { account } = await customer(gw);
      const { key } = await gw.operations().createKey({ accountId: account.id, expiresAt: new Date(clock.now() + 1000).toISOString() });
      clock.advance(1000);
      const res = await fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      checkProblem(res, 401, 'invalid-key', [key]);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    });

    it('a key works until its expiry time and is refused from then on', async () => {
      const { account } = await customer(gw);
      const { key } = await gw.operations().createKey({ accountId: account.id, expiresAt: new Date(clock.now() + 60_000).toISOString() });
      expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
      clock.advance(60_000);
      checkProblem(await fetchText(`${gw.url}/api/x`, { headers: bearer(key) }), 401, 'invalid-key', [key]);
    });

    it('the key is accepted in X-API-Key', async () => {
      const { key, account } = await customer(gw);
      const res = await fetchText(`${gw.url}/api/x`, { headers: { 'x-api-key': key } });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ ok: true });
      expect(up.received.at(-1)!.headers['x-tollgate-account']).toBe(account.id);
    });

    it('a suspended account gets 402 and nothing reaches the upstream', async () => {
      const { key, account } = await customer(gw);
      await gw.operations().updateAccount(account.id, { status: 'suspended' });
      const before = up.received.length;
      const res = await fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      const p = checkProblem(res, 402, 'account-suspended', [key]);
      expect(p.title).toBe('Account suspended');
      expect(up.received.length).toBe(before);
      expect(await gw.quotaUsed(account.id, PERIOD)).toBe(0);
    });
  });

  describe('rate limits', () => {
    it('the third request inside a second of a 2/s plan gets 429 with Retry-After and RateLimit headers', async () => {
      const { key } = await customer(gw, 'tight');
      const r1 = await fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      expect(r1.status).toBe(200);
      expect(r1.headers.get('ratelimit-policy')).toBe('"second";q=2;w=1');
      expect(r1.headers.get('ratelimit')).toBe('"second";r=1;t=1');
      const r2 = await fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      expect(r2.status).toBe(200);
      expect(r2.headers.get('ratelimit')).toBe('"second";r=0;t=1');

      const r3 = await fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      const p = checkProblem(r3, 429, 'rate-limited', [key]);
      expect(p.title).toBe('Rate limit exceeded');
      const retryAfter = r3.headers.get('retry-after')!;
      expect(retryAfter).toMatch(/^\d+$/);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      expect(r3.headers.get('ratelimit-policy')).toBe('"second";q=2;w=1');
      expect(r3.headers.get('ratelimit')).toBe(`"second";r=0;t=${retryAfter}`);

      // Half a second refills one token of a 2/s bucket.
      clock.advance(500);
      await gw.rateClock(500);
      expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
    });

    it('all-or-nothing: requests refused by the second window take nothing from the minute window', async () => {
      // 1/s and 3/min. At t=0 one request passes (minute: 2 left) and nine are refused by the
      // second window. Had they taken from the minute window, it would be empty for 20 s.
      const { key, account } = await customer(gw, 'twoWindows');
      const call = () => fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      expect((await call()).status).toBe(200);
      for (let i = 0; i < 9; i++) {
        const res = await call();
        checkProblem(res, 429, 'rate-limited');
        expect(res.headers.get('retry-after')).toBe('1');
      }
      const second = async () => {
        clock.advance(1000);
        await gw.rateClock(1000);
      };
      await second();
      expect((await call()).status).toBe(200);
      await second();
      expect((await call()).status).toBe(200);
      // Now the minute window is empty: ~0.1 token, refilling at one per 20 s.
      await second();
      const refused = await call();
      checkProblem(refused, 429, 'rate-limited');
      expect(Number(refused.headers.get('retry-after'))).toBe(17);
      expect(refused.headers.get('ratelimit')).toBe('"minute";r=0;t=17');
      // Refusals count against no quota either: three requests reached the upstream.
      expect(await gw.quotaUsed(account.id, PERIOD)).toBe(3);
    });
  });

  describe('monthly quota', () => {
    it('with overage "block" the 4th metered request of a 3-request quota gets 402; unmetered routes are never counted', async () => {
      const { key, account } = await customer(gw, 'quota3');
      const call = (path: string) => fetchText(`${gw.url}${path}`, { headers: bearer(key) });
      for (let i = 0; i < 2; i++) expect((await call('/free/x')).status).toBe(200);
      expect(await gw.quotaUsed(account.id, PERIOD)).toBe(0);
      for (let i = 0; i < 3; i++) expect((await call('/api/x')).status).toBe(200);
      expect(await gw.quotaUsed(account.id, PERIOD)).toBe(3);

      const before = up.received.length;
      const res = await call('/api/x');
      const p = checkProblem(res, 402, 'quota-exceeded', [key]);
      expect(p.title).toBe('Monthly quota exhausted');
      // Every response on an authenticated route carries the rate-limit headers, refusals too.
      expect(res.headers.get('ratelimit-policy')).toBe('"minute";q=1000;w=60');
      expect(res.headers.get('ratelimit')).toMatch(/^"minute";r=\d+;t=\d+$/);
      expect(up.received.length).toBe(before);

      for (let i = 0; i < 3; i++) expect((await call('/free/x')).status).toBe(200);
      expect(await gw.quotaUsed(account.id, PERIOD)).toBe(3);
      expect((await gw.usage(account.id, PERIOD)).quotaUsed).toBe(3);
    });

    it('the quota is per calendar month in UTC: used up at 23:59:59 on Jan 31, available again at 00:00 on Feb 1', async () => {
      clock.set('2026-01-31T23:59:59.000Z');
      const { key, account } = await customer(gw, 'quota2');
      const call = () => fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      expect((await call()).status).toBe(200);
      expect((await call()).status).toBe(200);
      checkProblem(await call(), 402, 'quota-exceeded');
      clock.set('2026-02-01T00:00:00.000Z');
      expect((await call()).status).toBe(200);
      expect(await gw.quotaUsed(account.id, '2026-01')).toBe(2);
      expect(await gw.quotaUsed(account.id, '2026-02')).toBe(1);
    });
  });

  describe('routing', () => {
    it('a path no route matches gets a 404 problem', async () => {
      const res = await fetchText(`${gw.url}/nowhere/x`);
      const p = checkProblem(res, 404, 'not-found');
      expect(p.title).toBe('Not found');
    });

    it('a prefix matches only at a segment boundary: /apix is not /api/', async () => {
      const { key } = await customer(gw);
      checkProblem(await fetchText(`${gw.url}/apix`, { headers: bearer(key) }), 404, 'not-found', [key]);
    });
  });

  describe('request bodies over the limit', () => {
    it('a body whose Content-Length exceeds MAX_BODY_BYTES gets 413 and is never forwarded', async () => {
      const { key, account } = await customer(gw);
      const before = up.received.length;
      const res = await rawRequest(`${gw.url}/api/upload`, {
        method: 'POST',
        headers: { ...bearer(key), 'content-type': 'application/octet-stream' },
        body: Buffer.alloc(2000, 'x'),
      });
      const p = checkProblem(res, 413, 'payload-too-large', [key]);
      expect(p.title).toBe('Payload too large');
      expect(up.received.length).toBe(before);
      expect(await gw.quotaUsed(account.id, PERIOD)).toBe(0);
    });

    it('a chunked body that grows past the limit gets 413 while still uploading; the upstream never gets all of it', async () => {
      // Its own upstream: records how much of the body arrived and whether it was complete.
      const seen: { bytes: number; complete: boolean; aborted: boolean; closed: boolean }[] = [];
      const upload = createServer((req, res) => {
        const s = { bytes: 0, complete: false, aborted: false, closed: false };
        seen.push(s);
        req.on('data', (c: Buffer) => (s.bytes += c.length));
        req.on('end', () => {
          s.complete = true;
          res.end('got it');
        });
        req.on('aborted', () => (s.aborted = true));
        req.on('close', () => (s.closed = true));
      });
      await new Promise<void>((r) => upload.listen(0, '127.0.0.1', r));
      const g2 = await startBackendGateway(backend, {
        env: { MAX_BODY_BYTES: '4096', SHUTDOWN_TIMEOUT_MS: '500' },
        file: { routes: [{ path: '/up/', upstream: `http://127.0.0.1:${(upload.address() as AddressInfo).port}` }] },
      });
      try {
        const { key, account } = await customer(g2);
        const chunk = Buffer.alloc(512, 'y');
        let written = 0;
        const res = await new Promise<{ status: number; headers: IncomingMessage['headers']; body: string }>((resolve, reject) => {
          const req = httpRequest(`${g2.url}/up/file`, { method: 'POST', headers: bearer(key), agent: false }, (r) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () => {
              clearInterval(timer);
              req.destroy();
              resolve({ status: r.statusCode!, headers: r.headers, body: Buffer.concat(chunks).toString() });
            });
          });
          req.on('error', (err) => {
            clearInterval(timer);
            reject(err);
          });
          req.flushHeaders();
          // Never ends: the gateway must answer without waiting for the end of the upload.
          const timer = setInterval(() => {
            if (written >= 200 * chunk.length) return;
            req.write(chunk);
            written += chunk.length;
          }, 5);
        });
        expect(res.headers['content-length']).toBeDefined();
        checkProblem(res, 413, 'payload-too-large', [key]);
        expect(written).toBeLessThan(200 * chunk.length);
        // What reached the upstream is final once its request is over (aborted by the gateway).
        await until(() => seen.every((s) => s.closed), 2_000, 'the upstream request to end');
        expect(seen.every((s) => !s.complete && s.bytes <= 4096)).toBe(true);
        // Not billable: the quota taken for it was given back.
        expect(await g2.quotaUsed(account.id, new Date().toISOString().slice(0, 7))).toBe(0);
      } finally {
        await g2.close();
        upload.closeAllConnections();
        await new Promise<void>((r) => upload.close(() => r()));
      }
    });
  });

  describe('upstream failures', () => {
    it('an upstream that refuses connections gives 502', async () => {
      const { key, account } = await customer(gw);
      const res = await fetchText(`${gw.url}/dead/x`, { headers: bearer(key) });
      const p = checkProblem(res, 502, 'upstream-unreachable', [key]);
      expect(p.title).toBe('Bad gateway');
      expect(res.body).not.toContain('ECONNREFUSED');
      expect(await gw.quotaUsed(account.id, PERIOD)).toBe(0);
    });

    it('an upstream slower than the route timeout gives 504, soon after the timeout', async () => {
      const { key } = await customer(gw);
      const started = performance.now();
      const res = await fetchText(`${gw.url}/slow/x`, { headers: bearer(key) });
      const took = performance.now() - started;
      const p = checkProblem(res, 504, 'upstream-timeout', [key]);
      expect(p.title).toBe('Gateway timeout');
      expect(took).toBeGreaterThanOrEqual(140);
      // undici arms its headers timeout on a coarse (~0.5 s tick) timer.
      expect(took).toBeLessThan(2000);
    });

    it('UPSTREAM_TIMEOUT_MS is the timeout of routes that set none', async () => {
      const stall = createServer(() => {});
      await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
      const g2 = await startBackendGateway(backend, {
        env: { UPSTREAM_TIMEOUT_MS: '100', SHUTDOWN_TIMEOUT_MS: '500' },
        file: { routes: [{ path: '/', upstream: `http://127.0.0.1:${(stall.address() as AddressInfo).port}` }] },
      });
      try {
        const { key } = await customer(g2);
        checkProblem(await fetchText(`${g2.url}/x`, { headers: bearer(key) }), 504, 'upstream-timeout', [key]);
      } finally {
        await g2.close();
        stall.closeAllConnections();
        await new Promise<void>((r) => stall.close(() => r()));
      }
    });
  });
});

describe.each(BACKENDS)('the gateway\'s own endpoints on $backend', ({ backend }) => {
  let up: Upstream;
  let gw: BackendGateway;

  beforeAll(async () => {
    up = await startUpstream();
    // A catch-all route: anything under /_tollgate/ would reach the upstream if it were proxied.
    gw = await startBackendGateway(backend, { env: {}, file: { routes: [{ path: '/', upstream: up.url, auth: false }] } });
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  it('GET /_tollgate/health answers 200', async () => {
    const res = await fetch(`${gw.url}/_tollgate/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /_tollgate/ready answers 200 once the database is open and migrated', async () => {
    const res = await fetch(`${gw.url}/_tollgate/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
  });

  it('an unknown path under /_tollgate/ is a 404 problem and never proxied, even behind a catch-all route', async () => {
    for (const path of ['/_tollgate/unknown', '/_tollgate/', '/_tollgate/health/x', '/_tollgate/admin?x=1']) {
      const res = await fetchText(`${gw.url}${path}`);
      checkProblem(res, 404, 'not-found');
    }
    expect(up.received).toHaveLength(0);
    // The catch-all itself does proxy.
    expect((await fetch(`${gw.url}/anything`)).status).toBe(200);
    expect(up.received).toHaveLength(1);
  });
});
