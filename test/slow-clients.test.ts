// Slow and greedy clients cannot starve the others: uploads that stop, clients that stop reading,
// headers that never end and floods of requests from one client are each bounded, and requests
// queued behind a full upstream pool time out like any other.
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, seedAccount, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.ts';

/** Polls `check` until it holds or `ms` pass. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A raw connection that writes `head` and then whatever the test sends; collects what comes back. */
function open(url: string, head: string): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = connect(Number(port), hostname, () => {
      socket.write(head);
      resolve({ socket, received: () => received, closed });
    });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

const upload = (path: string, headers = '') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n${headers}\r\nfirst bytes`;

describe('slow and greedy clients', () => {
  let up: Upstream;
  let gw: TestGateway;
  const sockets: Socket[] = [];
  // The upstream's view of its open requests: a slow upload holds one until it ends or is cut.
  let openUpstream = 0;
  let firehoseClosed = 0;
  // Requests for /up/small… the upstream was sent.
  let smallSent = 0;

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      if (req.url!.startsWith('/hang')) return; // never answers
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
    // Reads bodies as they come (startUpstream waits for the end) and streams without end.
    up.server.removeAllListeners('request');
    up.server.on('request', (req, res) => {
      if (req.url!.includes('/firehose')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 1);
        const pump = () => {
          while (res.write(chunk));
        };
        res.on('drain', pump);
        res.on('close', () => firehoseClosed++);
        pump();
        return;
      }
      if (req.url!.includes('/small')) smallSent++;
      openUpstream++;
      req.on('close', () => openUpstream--);
      req.resume();
      req.on('end', () => {
        if (req.url!.includes('hang')) return;
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      });
    });
    gw = await startGateway({
      env: {
        MAX_CONCURRENT_PER_CLIENT: '4', UPSTREAM_CONNECTIONS: '6', UPSTREAM_TIMEOUT_MS: '1000',
        CLIENT_BODY_TIMEOUT_MS: '60000', CLIENT_WRITE_TIMEOUT_MS: '500', CLIENT_HEADERS_TIMEOUT_MS: '300',
      },
      file: {
        routes: [
          { path: '/up/', upstream: up.url, auth: false },
          { path: '/api/', upstream: up.url },
        ],
        plans: { p: { limits: { perSecond: 1000 }, monthlyQuota: null } },
      },
    });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await gw.close();
    await up.close();
  });

  it('one client address holds at most MAX_CONCURRENT_PER_CLIENT upstream requests; the rest get 429 at once', async () => {
    const before = openUpstream;
    const conns = await Promise.all(Array.from({ length: 12 }, () => open(gw.url, upload('/up/slow'))));
    sockets.push(...conns.map((c) => c.socket));
    await until(() => conns.filter((c) => c.received().startsWith('HTTP/1.1 429')).length === 8, 5_000, '8 refusals');
    await until(() => openUpstream - before === 4, 5_000, '4 uploads upstream');
    const refused = conns.find((c) => c.received().startsWith('HTTP/1.1 429'))!.received();
    expect(refused).toMatch(/retry-after: 1/i);
    expect(refused).toContain('urn:tollgate:error:too-many-concurrent');

    // A paying customer is another client: its requests go through while those uploads hang.
    const { key } = seedAccount(gw.admin, 'p');
    const t0 = Date.now();
    const res = await fetch(`${gw.url}/api/paid`, { headers: bearer(key) });
    expect(res.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(1_000);
    for (const c of conns) c.socket.destroy();
    await until(() => openUpstream <= before, 5_000, 'the uploads to end upstream');
  });

  it('a request queued behind a full upstream pool gets 504 within the upstream timeout', async () => {
    // Six accounts, one slow upload each, hold all six connections (undici has no timeout while
    // a request body is still being written); a seventh account's request waits in the queue.
    const before = openUpstream;
    const holders = await Promise.all(Array.from({ length: 6 }, () => {
      const { key } = seedAccount(gw.admin, 'p');
      return open(gw.url, upload('/api/hold', `Authorization: Bearer ${key}\r\n`));
    }));
    sockets.push(...holders.map((c) => c.socket));
    await until(() => openUpstream - before === 6, 5_000, 'six uploads upstream');
    const { key } = seedAccount(gw.admin, 'p');
    const t0 = Date.now();
    const res = await fetch(`${gw.url}/api/queued`, { headers: bearer(key) });
    expect(res.status, await res.clone().text()).toBe(504);
    expect(Date.now() - t0).toBeLessThan(3_000);
    for (const c of holders) c.socket.destroy();
  });

  it('an upload that stops is answered 408 after CLIENT_BODY_TIMEOUT_MS and its upstream request is cut', async () => {
    const quick = await startGateway({
      env: { CLIENT_BODY_TIMEOUT_MS: '300' },
      file: { routes: [{ path: '/up/', upstream: up.url, auth: false }] },
    });
    try {
      const before = openUpstream;
      const c = await open(quick.url, upload('/up/stalls'));
      sockets.push(c.socket);
      await until(() => c.received().startsWith('HTTP/1.1 408'), 5_000, 'a 408');
      expect(c.received()).toContain('urn:tollgate:error:request-timeout');
      await until(() => openUpstream <= before, 5_000, 'the upstream request to be cut');
    } finally {
      await quick.close();
    }
  });

  it('a small body (16 KB at most) is read whole before the upstream is asked: one that stops gets 408 and never reaches it', async () => {
    const quick = await startGateway({
      env: { CLIENT_BODY_TIMEOUT_MS: '300' },
      file: { routes: [{ path: '/up/', upstream: up.url, auth: false }] },
    });
    try {
      const c = await open(quick.url, 'POST /up/small-stalls HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nten bytes.');
      sockets.push(c.socket);
      await until(() => c.received().startsWith('HTTP/1.1 408'), 5_000, 'a 408');
      expect(c.received()).toContain('urn:tollgate:error:request-timeout');
      expect(smallSent).toBe(0);
      // Whole, it goes through as it came.
      const res = await fetch(`${quick.url}/up/small-whole`, { method: 'POST', body: 'x'.repeat(16 * 1024) });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
      expect(smallSent).toBe(1);
    } finally {
      await quick.close();
    }
  });

  it('a client that stops reading is cut after CLIENT_WRITE_TIMEOUT_MS and the upstream connection is freed', async () => {
    const before = firehoseClosed;
    const c = await open(gw.url, 'GET /up/firehose HTTP/1.1\r\nHost: x\r\n\r\n');
    sockets.push(c.socket);
    c.socket.pause(); // reads nothing: the gateway's writes back up
    await until(() => firehoseClosed > before, 5_000, 'the upstream response to be aborted');
    c.socket.resume(); // what was sent before the cut arrives, then the end
    await c.closed;
  });

  it('headers that never end get 408 after CLIENT_HEADERS_TIMEOUT_MS', async () => {
    const c = await open(gw.url, 'GET /up/x HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    sockets.push(c.socket);
    await until(() => c.received().startsWith('HTTP/1.1 408'), 5_000, 'a 408');
    await c.closed;
  });

  it('headers over the parser limit get 431', async () => {
    const c = await open(gw.url, `GET /up/x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    sockets.push(c.socket);
    await until(() => c.received().length > 0, 5_000, 'an answer');
    expect(c.received()).toMatch(/^HTTP\/1\.1 431 /);
    expect(c.received()).toContain('application/problem+json');
  });
});

describe('a body over MAX_BODY_BYTES', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream();
    gw = await startGateway({ file: { routes: [{ path: '/up/', upstream: up.url, auth: false }] } });
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  it('an upload still streaming when its 413 comes gets the 413, not a broken pipe', async () => {
    // The client keeps writing after the answer: closed at once, the connection would reset under it.
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const body = Readable.from((async function* () {
        for (let k = 0; k < 11; k++) {
          yield Buffer.alloc(1024 * 1024, 97);
          await new Promise((r) => setImmediate(r));
        }
      })());
      try {
        const res = await request(`${gw.url}/up/big`, { method: 'POST', body, headers: { 'content-length': String(11 * 1024 * 1024) } });
        await res.body.text();
        outcomes.push(String(res.statusCode));
      } catch (err) {
        outcomes.push((err as Error).message);
      }
    }
    expect(outcomes).toEqual(Array(10).fill('413'));
  });

  it('a chunked upload over the limit gets its 413 too', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 97);
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 11; i++) controller.enqueue(chunk);
        controller.close();
      },
    });
    const res = await fetch(`${gw.url}/up/chunked`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
  });
});
