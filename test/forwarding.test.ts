// What reaches the upstream and what comes back: identity headers only the gateway sets, hop-by-hop
// fields dropped both ways, bodies streamed both ways, and a client that leaves aborts the upstream.
// On the SQLite file and on PostgreSQL.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, rawRequest, startUpstream, type Upstream } from './helpers.ts';

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms))]);
}

describe.each(BACKENDS)('forwarding on $backend', ({ backend }) => {
  let up: Upstream;
  let gw: BackendGateway;
  let key: string;
  let accountId: string;
  let keyId: string;

  // Per-path behaviours of the one upstream.
  const sse = { sent: 0 };
  const stream = { sent: 0, closedEarly: undefined as Promise<boolean> | undefined };

  // Answers as soon as the headers arrive, so the test sees when the body's first bytes get there.
  let sink: Server;
  let firstBytes: (() => void) | undefined;

  beforeAll(async () => {
    up = await startUpstream((req, res, body) => {
      const path = req.url!.replace(/^\/?/, '/');
      if (path.startsWith('/api/echo')) {
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
        res.end(body);
      } else if (path.startsWith('/api/hop')) {
        res.writeHead(200, [
          ['Content-Type', 'text/plain'],
          ['Connection', 'x-up-hop'],
          ['X-Up-Hop', 'hop-secret'],
          ['Keep-Alive', 'timeout=5, max=7'],
          ['Proxy-Authenticate', 'Basic realm="upstream"'],
          ['X-End-To-End', 'kept'],
          ['X-Request-Id', 'upstream-own-id'],
        ].flat());
        res.end('hop');
      } else if (path.startsWith('/api/sse')) {
        sse.sent = 0;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const send = () => {
          res.write(`id: ${sse.sent}\ndata: event ${sse.sent}\n\n`);
          sse.sent++;
          if (sse.sent === 5) res.end();
          else setTimeout(send, 100);
        };
        send();
      } else if (path.startsWith('/api/stream')) {
        stream.sent = 0;
        stream.closedEarly = streamUntilClosed(res);
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      }
    });

    sink = createServer((req, res) => {
      let bytes = 0;
      const hash = createHash('sha256');
      req.on('data', (c: Buffer) => {
        if (bytes === 0) firstBytes?.();
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') })));
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));

    gw = await startBackendGateway(backend, {
      env: { SHUTDOWN_TIMEOUT_MS: '500' },
      file: {
        routes: [
          { path: '/api/', upstream: up.url },
          { path: '/public/', upstream: up.url, auth: false },
          { path: '/sink/', upstream: `http://127.0.0.1:${(sink.address() as AddressInfo).port}` },
        ],
      },
    });
    ({ key, keyId, id: accountId } = await gw.seed('default'));
  });
  afterAll(async () => {
    await gw.close();
    sink.closeAllConnections();
    await new Promise<void>((r) => sink.close(() => r()));
    await up.close();
  });

  /** Writes a chunk every 50 ms for 2 s; resolves true if the connection closed before the end. */
  function streamUntilClosed(res: ServerResponse): Promise<boolean> {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return new Promise((resolve) => {
      const timer = setInterval(() => {
        res.write(`chunk ${stream.sent++}\n`);
        if (stream.sent === 40) {
          clearInterval(timer);
          res.end();
        }
      }, 50);
      res.on('close', () => {
        clearInterval(timer);
        resolve(!res.writableFinished);
      });
    });
  }

  describe('identity headers', () => {
    it('client-sent X-Tollgate-* headers never reach the upstream; the gateway\'s own values do', async () => {
      const res = await rawRequest(`${gw.url}/api/spoof`, {
        headers: {
          ...bearer(key),
          'X-Tollgate-Account': 'acct_evil',
          'X-Tollgate-Plan': 'enterprise',
          'X-Tollgate-Key-Id': 'key_evil',
          'X-Tollgate-Anything': 'evil',
          'X-TOLLGATE-PLAN': ['unlimited', 'x'],
        },
      });
      expect(res.status).toBe(200);
      expect(up.received.at(-1)!.url).toBe('/api/spoof');
      const got = up.received.at(-1)!.headers;
      expect(got['x-tollgate-account']).toBe(accountId);
      expect(got['x-tollgate-plan']).toBe('default');
      expect(got['x-tollgate-key-id']).toBe(keyId);
      expect(got['x-tollgate-anything']).toBeUndefined();
      expect(JSON.stringify(got)).not.toMatch(/evil|enterprise|unlimited/);
    });

    it('on a public route no X-Tollgate-* header reaches the upstream at all', async () => {
      const res = await rawRequest(`${gw.url}/public/spoof`, {
        headers: { 'X-Tollgate-Account': 'acct_evil', 'X-Tollgate-Plan': 'enterprise', 'X-Tollgate-Key-Id': 'key_evil' },
      });
      expect(res.status).toBe(200);
      const got = up.received.at(-1)!;
      expect(got.url).toBe('/public/spoof');
      expect(Object.keys(got.headers).filter((h) => h.startsWith('x-tollgate-'))).toEqual([]);
    });
  });

  describe('paths that could step outside their route', () => {
    /** Sends the path exactly as given (a URL would resolve its dot segments first). */
    function exactPath(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
      const { hostname, port } = new URL(gw.url);
      return new Promise((resolve, reject) => {
        httpRequest({ hostname, port, path, headers, agent: false }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        }).on('error', reject).end();
      });
    }

    it('dot segments, encoded slashes, backslashes and encoded letters are refused with 400 before any upstream', async () => {
      const seen = up.received.length;
      for (const path of ['/public/../api/secret', '/public/%2e%2e/api/secret', '/public/a%2Fb', '/public/a\\b', '/%61pi/secret', '/public/%7euser']) {
        const res = await exactPath(path, bearer(key));
        expect(res.status, path).toBe(400);
        expect(JSON.parse(res.body).title).toBe('Bad request');
      }
      expect(up.received.length).toBe(seen);
      // Encoded characters that need encoding still pass, and so does anything in the query.
      expect((await rawRequest(`${gw.url}/public/a%20b?next=%2F..%2Fx`)).status).toBe(200);
    });

    it('a Tollgate key sent to a public route does not reach its upstream', async () => {
      const res = await rawRequest(`${gw.url}/public/with-key`, { headers: { ...bearer(key), 'x-api-key': key } });
      expect(res.status).toBe(200);
      const got = up.received.at(-1)!;
      expect(got.headers.authorization).toBeUndefined();
      expect(got.headers['x-api-key']).toBeUndefined();
      // Anything else in Authorization is the upstream's business.
      await rawRequest(`${gw.url}/public/with-other`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
      expect(up.received.at(-1)!.headers.authorization).toBe('Basic dXNlcjpwYXNz');
    });
  });

  describe('request headers', () => {
    it('hop-by-hop request headers, and those named in Connection, are dropped; end-to-end ones are kept', async () => {
      const res = await rawRequest(`${gw.url}/api/hop-req`, {
        headers: {
          ...bearer(key),
          Connection: 'keep-alive, X-Custom-Hop, x-other-hop',
          'X-Custom-Hop': 'hop-secret',
          'X-Other-Hop': 'hop-secret',
          'Keep-Alive': 'timeout=99',
          TE: 'trailers',
          Upgrade: 'h2c',
          'Proxy-Authorization': 'Basic cHJveHk6c2VjcmV0',
          'Proxy-Connection': 'keep-alive',
          'X-End-To-End': 'kept',
        },
      });
      expect(res.status).toBe(200);
      expect(up.received.at(-1)!.url).toBe('/api/hop-req');
      const got = up.received.at(-1)!.headers;
      expect(got['x-end-to-end']).toBe('kept');
      for (const h of ['x-custom-hop', 'x-other-hop', 'te', 'upgrade', 'proxy-authorization', 'proxy-connection', 'authorization']) {
        expect(got[h], h).toBeUndefined();
      }
      expect(got['keep-alive']).not.toBe('timeout=99');
      expect(got.connection ?? '').not.toMatch(/hop/i);
      expect(JSON.stringify(got)).not.toContain('hop-secret');
      expect(JSON.stringify(got)).not.toContain('cHJveHk6c2VjcmV0');
    });

    it('a lone "Connection: x-custom-hop" drops X-Custom-Hop too', async () => {
      const res = await rawRequest(`${gw.url}/api/hop-req2`, {
        headers: { ...bearer(key), Connection: 'x-custom-hop', 'X-Custom-Hop': 'hop-secret', 'X-End-To-End': 'kept' },
      });
      expect(res.status).toBe(200);
      const got = up.received.at(-1)!;
      expect(got.url).toBe('/api/hop-req2');
      expect(got.headers['x-custom-hop']).toBeUndefined();
      expect(got.headers['x-end-to-end']).toBe('kept');
    });

    it('the key is removed from Authorization or X-API-Key, whichever carried it', async () => {
      expect((await rawRequest(`${gw.url}/api/k1`, { headers: bearer(key) })).status).toBe(200);
      expect(up.received.at(-1)!.url).toBe('/api/k1');
      expect(up.received.at(-1)!.headers.authorization).toBeUndefined();
      expect((await rawRequest(`${gw.url}/api/k2`, { headers: { 'X-API-Key': key } })).status).toBe(200);
      expect(up.received.at(-1)!.url).toBe('/api/k2');
      expect(up.received.at(-1)!.headers['x-api-key']).toBeUndefined();
      expect(JSON.stringify(up.received.slice(-2))).not.toContain(key);
    });

    it('the key never reaches the upstream, even when the client sends it in both headers', async () => {
      const res = await rawRequest(`${gw.url}/api/k3`, { headers: { ...bearer(key), 'X-API-Key': key } });
      expect(res.status).toBe(200);
      expect(up.received.at(-1)!.url).toBe('/api/k3');
      expect(JSON.stringify(up.received.at(-1)!.headers)).not.toContain(key);
    });

    it('without TRUST_PROXY a client\'s X-Forwarded-For, -Proto and -Host are replaced by what the gateway saw', async () => {
      const spoof = { 'x-forwarded-for': '203.0.113.7, 198.51.100.2', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' };
      expect((await fetch(`${gw.url}/api/xff`, { headers: { ...bearer(key), ...spoof } })).status).toBe(200);
      let got = up.received.at(-1)!.headers;
      expect(got['x-forwarded-for']).toBe('127.0.0.1');
      expect(got['x-forwarded-proto']).toBe('http');
      expect(got['x-forwarded-host']).toBe(new URL(gw.url).host);
      expect((await fetch(`${gw.url}/api/xff2`, { headers: bearer(key) })).status).toBe(200);
      expect(up.received.at(-1)!.url).toBe('/api/xff2');
      got = up.received.at(-1)!.headers;
      expect(got['x-forwarded-for']).toBe('127.0.0.1');
    });

    it('the gateway names every request itself: a client X-Request-Id is replaced by a fresh id, end to end', async () => {
      // The id is the reference of the request's ledger rows, so a client must not choose it.
      for (const sent of ['client-req.42:abc_DEF', 'has spaces & <html>', 'x'.repeat(129)]) {
        const res = await fetch(`${gw.url}/api/rid`, { headers: { ...bearer(key), 'x-request-id': sent } });
        expect(res.status).toBe(200);
        const id = res.headers.get('x-request-id')!;
        expect(id).toMatch(UUID);
        expect(up.received.at(-1)!.headers['x-request-id']).toBe(id);
      }
    });
  });

  describe('response headers', () => {
    it('hop-by-hop response headers from the upstream are dropped; end-to-end ones pass', async () => {
      const res = await rawRequest(`${gw.url}/api/hop`, { headers: bearer(key) });
      expect(res.status).toBe(200);
      expect(res.body).toBe('hop');
      expect(res.headers['x-end-to-end']).toBe('kept');
      expect(res.headers['content-type']).toBe('text/plain');
      expect(res.headers['x-up-hop']).toBeUndefined();
      expect(res.headers['proxy-authenticate']).toBeUndefined();
      // Node writes its own Keep-Alive for the client connection; the upstream's must not leak.
      expect(res.headers['keep-alive']).not.toBe('timeout=5, max=7');
      expect(res.headers.connection ?? '').not.toMatch(/x-up-hop/i);
      // The gateway's request id, not the upstream's, and only once.
      const ids = res.rawHeaders.filter((_, i) => i % 2 === 0 && res.rawHeaders[i].toLowerCase() === 'x-request-id');
      expect(ids).toHaveLength(1);
      expect(res.headers['x-request-id']).toMatch(UUID);
    });
  });

  describe('bodies', () => {
    it('a JSON POST body reaches the upstream intact, with its content type', async () => {
      const payload = JSON.stringify({ name: 'ünïcødé', n: [1, 2, 3], nested: { ok: true } });
      const res = await fetch(`${gw.url}/api/echo`, {
        method: 'POST', headers: { ...bearer(key), 'content-type': 'application/json' }, body: payload,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.text()).toBe(payload);
      const got = up.received.at(-1)!;
      expect(got.method).toBe('POST');
      expect(got.body).toBe(payload);
      expect(got.headers['content-type']).toBe('application/json');
      expect(got.headers['content-length']).toBe(String(Buffer.byteLength(payload)));
    });

    it('a 5 MB body arrives intact at the upstream and back', async () => {
      const big = randomBytes(3.75 * 1024 * 1024).toString('base64'); // 5 MiB of ASCII
      expect(big.length).toBe(5 * 1024 * 1024);
      const res = await fetch(`${gw.url}/api/echo`, {
        method: 'PUT', headers: { ...bearer(key), 'content-type': 'text/plain' }, body: big,
      });
      expect(res.status).toBe(200);
      const back = await res.text();
      expect(back.length).toBe(big.length);
      expect(sha256(back)).toBe(sha256(big));
      expect(sha256(up.received.at(-1)!.body)).toBe(sha256(big));
    });

    it('the request body is streamed: the upstream gets the first bytes before the client has sent the rest', async () => {
      const half = Buffer.alloc(64 * 1024, 'a');
      const arrived = new Promise<void>((r) => (firstBytes = r));
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${gw.url}/sink/upload`, {
          method: 'POST', agent: false, headers: { ...bearer(key), 'content-length': String(half.length * 2) },
        }, (r) => {
          let body = '';
          r.on('data', (c: Buffer) => (body += c));
          r.on('end', () => resolve({ status: r.statusCode!, body }));
        });
        req.on('error', reject);
        req.write(half);
        withTimeout(arrived, 1500, 'the first half at the upstream').then(() => req.end(half), (err) => {
          req.destroy();
          reject(err);
        });
      });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ bytes: half.length * 2, sha256: sha256(Buffer.concat([half, half])) });
    });

    it('a chunked request body (no Content-Length) arrives whole', async () => {
      const parts = Array.from({ length: 8 }, (_, i) => Buffer.alloc(10_000, 65 + i));
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${gw.url}/sink/chunked`, { method: 'POST', agent: false, headers: bearer(key) }, (r) => {
          let body = '';
          r.on('data', (c: Buffer) => (body += c));
          r.on('end', () => resolve({ status: r.statusCode!, body }));
        });
        req.on('error', reject);
        for (const p of parts) req.write(p);
        req.end();
      });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ bytes: 80_000, sha256: sha256(Buffer.concat(parts)) });
    });
  });

  describe('streaming responses', () => {
    it('server-sent events arrive one by one, not buffered until the upstream finishes', async () => {
      const res = await fetch(`${gw.url}/api/sse`, { headers: { ...bearer(key), accept: 'text/event-stream' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      let sentWhenFirstArrived = -1;
      const arrivals: number[] = [];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        const events = text.split('\n\n').length - 1;
        while (arrivals.length < events) arrivals.push(sse.sent);
        if (sentWhenFirstArrived < 0 && events > 0) sentWhenFirstArrived = sse.sent;
      }
      expect(sentWhenFirstArrived).toBeGreaterThanOrEqual(1);
      expect(sentWhenFirstArrived).toBeLessThan(5);
      // Each event arrives before the upstream has written the one after it.
      expect(arrivals.slice(0, 4).every((sent, i) => sent <= i + 1)).toBe(true);
      expect(text).toBe([0, 1, 2, 3, 4].map((i) => `id: ${i}\ndata: event ${i}\n\n`).join(''));
    });

    it('a client that disconnects mid-stream aborts the upstream request', async () => {
      const controller = new AbortController();
      const res = await fetch(`${gw.url}/api/stream`, { headers: bearer(key), signal: controller.signal });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toMatch(/^chunk 0/);
      controller.abort();
      await reader.read().catch(() => undefined);
      const closedEarly = await withTimeout(stream.closedEarly!, 1000, 'the upstream to see the abort');
      expect(closedEarly).toBe(true);
      expect(stream.sent).toBeLessThan(40);
      // The gateway is still fine afterwards.
      expect((await fetch(`${gw.url}/api/after`, { headers: bearer(key) })).status).toBe(200);
    });
  });
});
