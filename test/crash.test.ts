// kill -9 under load loses no more than the requests in flight: the database passes its
// integrity check, every ledger balances, and the usage rows number at least the successful
// responses the clients saw minus the connections open at the kill.
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { Admin } from '../src/db/admin.ts';
import { openDb } from '../src/db/open.ts';
import { createSqliteStore } from '../src/db/sqlite-store.ts';
import { startUpstream, tempDir, type Upstream } from './helpers.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { until } from './until.ts';

const CONNECTIONS = 10;
const PRICE = 1_000;
const QUOTA = 50;
// The kill comes once this many requests succeeded: the quota is long used up and most of them
// were paid from credits.
const LOADED = QUOTA + 1_000;
const GRANT = 100_000_000; // pays for 100 000 requests beyond the quota: far more than the test sends

describe('kill -9 under load', () => {
  let up: Upstream | undefined;
  const children: ServerProcess[] = [];
  afterAll(async () => {
    for (const s of children) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await up?.close();
  });

  it('loses at most the requests in flight, and the database comes back whole', async () => {
    up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    const dir = tempDir();
    const dbPath = join(dir, 'tollgate.db');
    const configPath = join(dir, 'tollgate.config.json');
    writeFileSync(configPath, JSON.stringify({
      routes: [{ path: '/api/', upstream: up.url, priceMicros: PRICE }],
      plans: {
        paid: {
          limits: { perSecond: 1_000_000, perMinute: 10_000_000, perDay: 100_000_000 },
          burst: 1_000_000, monthlyQuota: QUOTA, overage: 'credits',
        },
      },
      defaultPlan: 'paid',
    }));

    // Seed before the server starts: an account on the paid plan, a key and prepaid credits.
    const seedDb = openDb(dbPath);
    const seedStore = createSqliteStore(seedDb);
    const admin = new Admin(seedDb, seedStore);
    const account = admin.createAccount({ email: 'load@example.com', plan: 'paid' });
    const { key } = admin.createKey({ accountId: account.id });
    admin.grantCredits(account.id, GRANT, 'load test');
    seedStore.close();

    const env = { DATABASE_PATH: dbPath, TOLLGATE_CONFIG: configPath };
    const server = await spawnServer(env);
    children.push(server);

    const pool = new Pool(server.url, { connections: CONNECTIONS, pipelining: 1 });
    let killed = false;
    let ok = 0;
    const other: Record<number, number> = {};
    const client = async () => {
      while (!killed) {
        try {
          const res = await pool.request({ path: '/api/items', method: 'GET', headers: { authorization: `Bearer ${key}` } });
          await res.body.text();
          if (res.statusCode === 200) ok++;
          else other[res.statusCode] = (other[res.statusCode] ?? 0) + 1;
        } catch (err) {
          if (!killed) throw err;
        }
      }
    };
    const clients = Array.from({ length: CONNECTIONS }, client);
    await until(() => ok >= LOADED, 15_000, `${LOADED} successful requests`);
    killed = true;
    server.child.kill('SIGKILL');
    const exit = await server.exited;
    await Promise.all(clients);
    await pool.destroy();

    expect(exit.signal).toBe('SIGKILL');
    expect(other, server.output()).toEqual({});
    // Enough load to use up the quota and pay for many requests from credits.
    expect(ok).toBeGreaterThan(QUOTA + 100);

    const db = new Database(dbPath);
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const accounts = db.prepare(`SELECT a.id, a.balance_micros AS balance,
        (SELECT coalesce(sum(amount_micros), 0) FROM ledger l WHERE l.account_id = a.id) AS ledgerSum
        FROM accounts a`).all() as { id: string; balance: number; ledgerSum: number }[];
      expect(accounts).toHaveLength(1);
      for (const a of accounts) {
        expect(a.balance).toBe(a.ledgerSum);
        expect(a.balance).toBeGreaterThanOrEqual(0);
      }
      const usage = db.prepare('SELECT count(*) FROM usage WHERE account_id = ?').pluck().get(account.id) as number;
      expect(usage).toBeGreaterThanOrEqual(ok - CONNECTIONS);
      // …and no more than were answered (a response in flight may be recorded yet not seen).
      expect(usage).toBeLessThanOrEqual(ok + CONNECTIONS);
      // Every charge a usage row records was taken from the balance, with its ledger row.
      const charged = db.prepare('SELECT coalesce(sum(price_micros), 0) FROM usage WHERE account_id = ?').pluck().get(account.id) as number;
      const spent = GRANT - accounts[0].balance;
      expect(charged).toBeGreaterThan(0);
      expect(spent).toBeGreaterThanOrEqual(charged);
      // Spent without a usage row: per connection at most the request in flight (paid when it
      // was admitted) and the one answered request whose row was still queued.
      expect(spent - charged).toBeLessThanOrEqual(2 * CONNECTIONS * PRICE);
    } finally {
      db.close();
    }

    // The same file serves again after a restart.
    const again = await spawnServer(env);
    children.push(again);
    const ready = await fetch(`${again.url}/_tollgate/ready`);
    expect(ready.status).toBe(200);
    const res = await fetch(`${again.url}/api/after`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    again.child.kill('SIGTERM');
    expect(await again.exited).toEqual({ code: 0, signal: null });
  }, 15_000);
});
