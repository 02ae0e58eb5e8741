// Another process holding the database's write lock delays what the gateway writes, never what
// it answers: requests are served from memory, rows and charges queue, and once the lock is
// released everything is in the file, the ledger balanced. Past the queue's bound readiness
// turns false and new requests are refused rather than served unrecorded.
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bearer, openAdmin, startUpstream, tempDir, type Upstream } from './helpers.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { until } from './until.ts';
import { holdWriteLock } from './write-lock.ts';

const PRICE = 1_000;
const GRANT = 10_000_000;

describe('a database another process holds locked', () => {
  let up: Upstream;
  const children: ServerProcess[] = [];
  afterAll(async () => {
    for (const s of children) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await up?.close();
  });

  async function gateway(env: Record<string, string> = {}) {
    up ??= await startUpstream();
    const dir = tempDir();
    const dbPath = join(dir, 'tollgate.db');
    const configPath = join(dir, 'tollgate.config.json');
    writeFileSync(configPath, JSON.stringify({
      routes: [
        { path: '/api/', upstream: up.url, priceMicros: PRICE },
        { path: '/free/', upstream: up.url, auth: false },
      ],
      plans: { paid: { limits: { perSecond: 100_000 }, burst: 100_000, monthlyQuota: 0, overage: 'credits' } },
    }));
    const seed = openAdmin(dbPath);
    const account = seed.admin.createAccount({ email: 'busy@example.com', plan: 'paid' });
    const { key } = seed.admin.createKey({ accountId: account.id });
    seed.admin.grantCredits(account.id, GRANT, 'test');
    seed.close();
    const server = await spawnServer({ DATABASE_PATH: dbPath, TOLLGATE_CONFIG: configPath, ...env });
    children.push(server);
    return { server, dbPath, key, accountId: account.id };
  }

  it('held for 3 s: 20 clients on a paid and a free route are each answered within 0.5 s, and nothing is lost', async () => {
    const { server, dbPath, key, accountId } = await gateway();
    // The account's first request takes its lease: from then on its money is in memory.
    expect((await fetch(`${server.url}/api/warm`, { headers: bearer(key) })).status).toBe(200);

    const lock = holdWriteLock(dbPath, 3_000);
    await lock.held;
    const lockedAt = performance.now();
    const slowest: number[] = [];
    let answered = 0;
    const client = async (paid: boolean) => {
      let worst = 0;
      while (performance.now() - lockedAt < 3_000) {
        const t0 = performance.now();
        const res = await fetch(`${server.url}${paid ? '/api/x' : '/free/x'}`, paid ? { headers: bearer(key) } : {});
        await res.arrayBuffer();
        expect(res.status).toBe(200);
        worst = Math.max(worst, performance.now() - t0);
        answered++;
        // Steady traffic (about 400 requests/s in all), not a flood: what is timed is the gateway.
        await new Promise((r) => setTimeout(r, 50));
      }
      slowest.push(worst);
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => client(i % 2 === 0)));
    expect(Math.max(...slowest)).toBeLessThan(500);
    expect((await fetch(`${server.url}/_tollgate/health`)).status).toBe(200);
    await lock.released;

    // Everything queued during the lock reaches the file; the shutdown returns the lease.
    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    const db = new Database(dbPath, { readonly: true });
    try {
      const rows = db.prepare('SELECT count(*) AS n, sum(price_micros) AS charged FROM usage').get() as { n: number; charged: number };
      expect(rows.n).toBe(answered + 1);
      const paidRows = db.prepare("SELECT count(*) FROM usage WHERE route = '/api/'").pluck().get() as number;
      expect(rows.charged).toBe(paidRows * PRICE);
      const { balance, ledgerSum } = db.prepare(`SELECT balance_micros AS balance, (SELECT sum(amount_micros) FROM ledger) AS ledgerSum
        FROM accounts WHERE id = ?`).get(accountId) as { balance: number; ledgerSum: number };
      expect(balance).toBe(ledgerSum);
      expect(balance).toBe(GRANT - rows.charged);
    } finally {
      db.close();
    }
  }, 20_000);

  it('past MAX_QUEUED_ROWS readiness turns false and requests get 503 until the lock is gone', async () => {
    const { server, dbPath, key } = await gateway({ MAX_QUEUED_ROWS: '5' });
    expect((await fetch(`${server.url}/api/warm`, { headers: bearer(key) })).status).toBe(200);
    const lock = holdWriteLock(dbPath, 1_500);
    await lock.held;
    for (let i = 0; i < 5; i++) expect((await fetch(`${server.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
    const refused = await fetch(`${server.url}/api/x`, { headers: bearer(key) });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { type: string }).type).toBe('urn:tollgate:error:storage-busy');
    expect((await fetch(`${server.url}/_tollgate/ready`)).status).toBe(503);
    await lock.released;
    await until(async () => (await fetch(`${server.url}/_tollgate/ready`)).status === 200, 5_000, 'readiness to come back');
    expect((await fetch(`${server.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
  }, 20_000);
});
