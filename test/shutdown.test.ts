// SIGTERM: stop accepting, finish the requests in flight, flush, exit 0.
import Database from 'better-sqlite3';
import { request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAdmin, startUpstream, tempDir, type Upstream } from './helpers.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { until } from './until.ts';

const DELAY_MS = 600;
const BIG = 4 * 1024 * 1024;

/** Resolves with the status and whole body of one request on its own connection. */
function get(url: string, headers: Record<string, string>, readDelayMs = 0): Promise<{ status: number; requestId: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      // A slow reader: the gateway's writes back up while it waits.
      if (readDelayMs > 0) {
        res.pause();
        setTimeout(() => res.resume(), readDelayMs);
      }
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, requestId: String(res.headers['x-request-id']), body: Buffer.concat(chunks) }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`response aborted after ${Buffer.concat(chunks).length} bytes`)));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the error code of a fresh TCP connection to `port`, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('SIGTERM', () => {
  let up: Upstream;
  let dbPath: string;
  let configPath: string;
  let key: string;
  const children: ServerProcess[] = [];

  beforeAll(async () => {
    // A slow upstream: answers DELAY_MS after the request arrived, /big with BIG bytes.
    up = await startUpstream((req, res) => {
      setTimeout(() => {
        const body = req.url!.endsWith('/big') ? Buffer.alloc(BIG, 'x') : Buffer.from('{"slow":true}');
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
        res.end(body);
      }, DELAY_MS);
    });
    const dir = tempDir();
    dbPath = join(dir, 'tollgate.db');
    configPath = join(dir, 'tollgate.config.json');
    writeFileSync(configPath, JSON.stringify({ routes: [{ path: '/slow/', upstream: up.url, priceMicros: 1000 }] }));
    const seed = openAdmin(dbPath);
    const { admin } = seed;
    const account = admin.createAccount({ email: 'slow@example.com', plan: 'default' });
    ({ key } = admin.createKey({ accountId: account.id }));
    seed.close();
  });

  afterAll(async () => {
    for (const s of children) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await up.close();
  });

  async function inFlightThenTerm(path: string, readDelayMs = 0) {
    const server = await spawnServer({ DATABASE_PATH: dbPath, TOLLGATE_CONFIG: configPath });
    children.push(server);
    const seen = up.received.length;
    const response = get(`${server.url}${path}`, { authorization: `Bearer ${key}` }, readDelayMs);
    // Wait until the request is at the upstream: in flight, not merely sent.
    await until(() => up.received.length > seen, 2_000);
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    return { server, response, signalledAt };
  }

  function usageRow(requestId: string) {
    const db = new Database(dbPath, { readonly: true });
    try {
      return db.prepare('SELECT status, billable, response_bytes AS bytes FROM usage WHERE request_id = ?').get(requestId) as
        { status: number; billable: number; bytes: number } | undefined;
    } finally {
      db.close();
    }
  }

  it('finishes the request in flight, refuses new connections, records the usage and exits 0', async () => {
    const { server, response, signalledAt } = await inFlightThenTerm('/slow/thing');

    // While the request is still in flight, new connections are refused.
    let refused = 'connected';
    while (Date.now() - signalledAt < DELAY_MS / 2 && refused === 'connected') {
      await new Promise((r) => setTimeout(r, 20));
      refused = await tryConnect(server.port);
    }
    expect(refused).toBe('ECONNREFUSED');
    expect(server.child.exitCode).toBeNull();

    const res = await response;
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('{"slow":true}');
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(DELAY_MS / 2);

    expect(await server.exited, server.output()).toEqual({ code: 0, signal: null });
    expect(usageRow(res.requestId)).toEqual({ status: 200, billable: 1, bytes: 13 });
  }, 10_000);

  it('a large response in flight reaches a slow client whole before the process exits', async () => {
    const { server, response } = await inFlightThenTerm('/slow/big', DELAY_MS + 300);
    const res = await response;
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(BIG);
    expect(await server.exited, server.output()).toEqual({ code: 0, signal: null });
    expect(usageRow(res.requestId)).toMatchObject({ status: 200, billable: 1, bytes: BIG });
  }, 10_000);
});
