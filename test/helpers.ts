// Real pieces for end-to-end tests: a temp SQLite file, a gateway on 127.0.0.1:0 and upstreams
// that are real node:http servers recording what reached them.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { createApp, type App, type AppOverrides } from '../src/app.ts';
import type { Billing } from '../src/billing/billing.ts';
import type { BillingStore } from '../src/billing/billing-store.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { Admin } from '../src/db/admin.ts';
import { openDb, type Db } from '../src/db/open.ts';
import { createSqliteStorage, type SqliteStorage } from '../src/db/sqlite-storage.ts';
import type { Logger } from '../src/log.ts';
import type { Gateway } from '../src/server.ts';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tollgate-test-'));
}

export interface Received { method: string; url: string; headers: IncomingHttpHeaders; body: string }

export interface Upstream {
  url: string;
  server: Server;
  received: Received[];
  close(): Promise<void>;
}

/** A real HTTP server; the default handler answers 200 with a small JSON body after reading the request. */
export async function startUpstream(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  },
): Promise<Upstream> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    received,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export interface TestGateway {
  url: string;
  app: App;
  billing: Billing | undefined;
  billingStore: BillingStore;
  config: Config;
  db: Db;
  storage: SqliteStorage;
  admin: Admin;
  gateway: Gateway;
  dbPath: string;
  /** What the customer has: the durable balance and what the gateway's lease holds unreserved. */
  balance(accountId: string): number;
  /** Quota units counted in memory for the account's period (the file's count otherwise). */
  quotaUsed(accountId: string, period: string): number;
  /** Writes every queued usage row and counter now. */
  flush(): void;
  /** Writes everything and ends the leases not in use: their remainder is back in the balance. */
  returnLeases(): Promise<void>;
  /** What the account's usage rows charged, in order. */
  charges(accountId: string): number[];
  close(): Promise<void>;
}

export interface GatewayOptions {
  /** The config file's contents (routes, plans, defaultPlan). */
  file?: unknown;
  env?: Record<string, string>;
  now?: () => number;
  /** An existing database file (default: a new one). */
  dbPath?: string;
  /** The gateway's logger (default: one for LOG_LEVEL, silent unless `env` says otherwise). */
  log?: Logger;
  /** How the notifications' deliverer keeps time. */
  notify?: AppOverrides['notify'];
}

export async function startGateway({ file, env = {}, now = Date.now, dbPath = join(tempDir(), 'tollgate.db'), log, notify }: GatewayOptions = {}): Promise<TestGateway> {
  const dir = dirname(dbPath);
  const fullEnv: Record<string, string> = { DATABASE_PATH: dbPath, LOG_LEVEL: 'silent', ...env };
  if (file !== undefined) {
    fullEnv.TOLLGATE_CONFIG = join(dir, 'tollgate.config.json');
    writeFileSync(fullEnv.TOLLGATE_CONFIG, JSON.stringify(file));
  }
  const config = loadConfig(fullEnv);
  const app = await createApp(config, { now, log, notify });
  const port = await app.listen(0, '127.0.0.1');
  const storage = app.storage as SqliteStorage;
  const { state } = app;
  const quotaUsed = (accountId: string, period: string): number => {
    const live = state.live.quotaUsed(accountId, period);
    if (live !== undefined) return live;
    state.recorder.flush(); // counters wait in memory (COUNTER_DELAY_MS) before they are written
    return storage.keys.quotaUsed(accountId, period) as number;
  };
  const balance = (accountId: string) => state.balance(accountId) as number;
  return {
    url: `http://127.0.0.1:${port}`,
    app, config, storage, db: storage.db, gateway: app.gateway, dbPath, billing: app.billing, billingStore: storage.billing,
    admin: new Admin(storage, now, state.live),
    balance,
    quotaUsed,
    flush: () => {
      if (!state.recorder.flush()) throw new Error('the database would not take the queued rows');
    },
    // Every row and counter written, then every lease not in use ended, while the gateway serves.
    async returnLeases() {
      if (!state.recorder.flush()) throw new Error('the database would not take the queued rows');
      for (const s of state.accounts.all()) if (s.wallet && s.wallet.reserved === 0) await state.wallets.close(s.wallet);
    },
    charges(accountId) {
      if (!state.recorder.flush()) throw new Error('the database would not take the queued rows');
      return storage.db.prepare('SELECT price_micros FROM usage WHERE account_id = ? AND price_micros > 0 ORDER BY id').pluck().all(accountId) as number[];
    },
    close: () => app.close(),
  };
}

/** An account on `plan` with one key. */
export function seedAccount(admin: Admin, plan = 'default', email = `a${Math.random().toString(36).slice(2)}@example.com`) {
  const account = admin.createAccount({ email, plan });
  const { key, id: keyId } = admin.createKey({ accountId: account.id });
  return { account, key, keyId };
}

/** Sum of the ledger and the stored (durable) balance: equal, always. */
export function ledgerCheck(db: Db, accountId: string): { balance: number; ledgerSum: number } {
  const balance = db.prepare('SELECT balance_micros FROM accounts WHERE id = ?').pluck().get(accountId) as number;
  const ledgerSum = db.prepare('SELECT coalesce(sum(amount_micros), 0) FROM ledger WHERE account_id = ?').pluck().get(accountId) as number;
  return { balance, ledgerSum };
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

// ---- Shared by refusals, credits and forwarding tests ----

/** A clock the test moves by hand: pass `clock.now` to startGateway. */
export function fakeClock(start: number | string) {
  let t = typeof start === 'string' ? Date.parse(start) : start;
  return {
    now: () => t,
    set(at: number | string) {
      t = typeof at === 'string' ? Date.parse(at) : at;
    },
    advance(ms: number) {
      t += ms;
    },
  };
}

/** A port that was free a moment ago and has nothing listening on it now. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export interface RawResponse { status: number; headers: IncomingHttpHeaders; rawHeaders: string[]; body: string }

/** A node:http request with exactly the headers given (fetch forbids some of them), on a fresh connection. */
export function rawRequest(
  url: string,
  { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders,
        body: Buffer.concat(chunks).toString('utf8'),
      }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface Problem { type: string; title: string; status: number; detail: string; requestId: string }

/**
 * Checks an RFC 9457 problem response: status, content type, exactly the documented members,
 * the request id matching the X-Request-Id header, no stack trace and none of `secrets`.
 */
export function checkProblem(
  res: { status: number; headers: IncomingHttpHeaders | Headers; body: string },
  status: number,
  code: string,
  secrets: string[] = [],
): Problem {
  const header = (n: string) => (res.headers instanceof Headers ? res.headers.get(n) ?? undefined : res.headers[n] as string | undefined);
  expect(res.status).toBe(status);
  expect(header('content-type')).toBe('application/problem+json');
  const body = JSON.parse(res.body) as Problem;
  expect(Object.keys(body).sort()).toEqual(['detail', 'requestId', 'status', 'title', 'type']);
  expect(body.type).toBe(`urn:tollgate:error:${code}`);
  expect(body.status).toBe(status);
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.detail.length).toBeGreaterThan(0);
  expect(body.requestId).toBe(header('x-request-id'));
  expect(res.body).not.toMatch(/\n\s+at |\bat [\w.<>]+ \(|node:internal|\.ts:\d+/);
  for (const s of secrets) {
    expect(res.body).not.toContain(s);
    const all = res.headers instanceof Headers ? [...res.headers.values()].join('\n') : JSON.stringify(res.headers);
    expect(all).not.toContain(s);
  }
  return body;
}

/** fetch, then read the body as text so checkProblem can look at it. */
export async function fetchText(url: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Operator actions on a database file, as the CLI does them (no gateway in this process). */
export function openAdmin(dbPath: string, now: () => number = Date.now): { admin: Admin; storage: SqliteStorage; close(): void } {
  const storage = createSqliteStorage(openDb(dbPath), { now });
  return { admin: new Admin(storage, now), storage, close: () => storage.close() };
}
