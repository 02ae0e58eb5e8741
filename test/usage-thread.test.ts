// Group commits in the usage writer thread (db/usage-thread.ts): the gateway's connection and the
// thread's take turns at the file, so neither sees the other's write lock; a thread that stops
// hands the writes back; its commits do not look like a hand edit to the change feed; log lines
// reach a stdout that stops reading for a while, every one of them and each one whole.
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb } from '../src/db/open.ts';
import { createSqliteChanges } from '../src/db/sqlite-changes.ts';
import { createSqliteUsage } from '../src/db/sqlite-usage.ts';
import { startUsageThread, type UsageThread } from '../src/db/usage-thread.ts';
import { createLogger } from '../src/log.ts';
import type { Change } from '../src/storage/ports.ts';
import type { UsageRecord } from '../src/storage/records.ts';
import { bearer, ledgerCheck, openAdmin, seedAccount, startGateway, startUpstream, tempDir, type TestGateway, type Upstream } from './helpers.ts';
import { spawnServer } from './server-process.ts';
import { until } from './until.ts';

const PRICE = 100;
const PLANS = { paid: { limits: { perSecond: 100_000 }, burst: 100_000, monthlyQuota: 0, overage: 'credits' } };

function row(id: number): UsageRecord {
  return {
    id, prevId: 0, ts: Date.now(), requestId: `r${id}`, accountId: 'acct_t', keyId: 'key_t', route: '/api/', method: 'GET', path: '/api/x',
    status: 200, requestBytes: 0, responseBytes: 2, latencyUs: 100, priceMicros: 0, billable: true,
  };
}

/** The thread's answer to one write, as a promise. */
function written(thread: UsageThread, rows: UsageRecord[]): Promise<void> {
  const later = thread.usage.write(rows, [], rows[rows.length - 1].id, []);
  return later === undefined ? Promise.resolve() : new Promise((resolve, reject) => later.then(resolve, reject));
}

describe('the usage writer thread', () => {
  let up: Upstream;
  let gw: TestGateway | undefined;
  const threads: UsageThread[] = [];
  afterAll(async () => {
    for (const t of threads) await t.stop();
    await gw?.close();
    await up?.close();
  });

  function thread(dbPath: string) {
    const db = openDb(dbPath, { waitMs: 0 });
    const t = startUsageThread(db, createSqliteUsage(db), createLogger('silent'))!;
    threads.push(t);
    return { db, t };
  }

  it('writes a gateway\'s rows while the gateway\'s own connection writes grants: no write refused, every row and charge in the file', async () => {
    up = await startUpstream();
    gw = await startGateway({ file: { routes: [{ path: '/api/', upstream: up.url, priceMicros: PRICE }], plans: PLANS } });
    expect(gw.app.storage.usage.remote).toBe(true); // the thread's log, not the connection's
    const { account, key } = seedAccount(gw.admin, 'paid');
    gw.admin.grantCredits(account.id, 1_000_000, 'test');
    const clients = Array.from({ length: 20 }, async () => {
      for (let i = 0; i < 25; i++) expect((await fetch(`${gw!.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
    });
    // Grants on the gateway's connection meet the thread's commits: they take turns, none is refused.
    let grants = 0;
    const granting = (async () => {
      for (; grants < 50; grants++) {
        gw!.admin.grantCredits(account.id, 1_000, 'test');
        await new Promise((r) => setImmediate(r));
      }
    })();
    await Promise.all([...clients, granting]);
    gw.flush();
    const rows = gw.db.prepare('SELECT count(*) FROM usage WHERE account_id = ?').pluck().get(account.id);
    expect(rows).toBe(500);
    const { balance, ledgerSum } = ledgerCheck(gw.db, account.id);
    expect(balance).toBe(ledgerSum);
    expect(gw.balance(account.id)).toBe(1_000_000 + 50 * 1_000 - 500 * PRICE);
  });

  it('a worker that stops hands the writes back to the gateway\'s connection', async () => {
    const dbPath = join(tempDir(), 't.db');
    const { db, t } = thread(dbPath);
    await written(t, [row(1)]);
    const exited = new Promise((r) => t.worker.once('exit', r));
    await t.worker.terminate();
    await exited;
    // Written at once, on the connection given: no answer to wait for.
    expect(t.usage.write([row(2)], [], 2, [])).toBeUndefined();
    expect(db.prepare('SELECT id FROM usage ORDER BY id').pluck().all()).toEqual([1, 2]);
    // The turn the thread may have held is not waited for.
    const started = performance.now();
    db.prepare("UPDATE counters SET value = value WHERE name = 'through_id'").run();
    expect(performance.now() - started).toBeLessThan(100);
  });

  it('its commits are not taken for a hand edit by the change feed; a hand edit is, while it writes and while it is quiet', async () => {
    const dbPath = join(tempDir(), 't.db');
    const { db, t } = thread(dbPath);
    const feed = createSqliteChanges(db, Date.now);
    const heard: Change[] = [];
    feed.subscribe((c) => heard.push(c));
    let id = 0;
    const writeFor = async (ms: number) => {
      for (const until = performance.now() + ms; performance.now() < until;) {
        await written(t, [row(++id)]);
        await new Promise((r) => setTimeout(r, 20)); // the feed polls every 200 ms
      }
    };
    const handEdit = (table: string) => {
      const hand = new Database(dbPath);
      hand.exec(`CREATE TABLE ${table} (text TEXT)`);
      hand.close();
    };
    try {
      await writeFor(600);
      expect(heard).toEqual([]);
      // While the thread writes: it notices the edit on its own connection.
      const writing = writeFor(1_000);
      handEdit('notes_busy');
      await until(() => heard.length > 0, 2_000, 'the hand edit made while the thread writes');
      await writing;
      expect(heard).toEqual([{ kind: 'all' }]);
      heard.length = 0;
      // While it is quiet: the feed sees data_version move with no write of the thread's.
      await new Promise((r) => setTimeout(r, 300));
      handEdit('notes_quiet');
      await until(() => heard.length > 0, 2_000, 'the hand edit made while the thread is quiet');
      expect(heard).toEqual([{ kind: 'all' }]);
    } finally {
      feed.stop();
    }
  });

  it('writes every line, pino\'s and the access log\'s, whole to a stdout that stops reading for a while', async () => {
    up ??= await startUpstream();
    const dir = tempDir();
    const dbPath = join(dir, 'tollgate.db');
    const seed = openAdmin(dbPath);
    const { key } = seedAccount(seed.admin, 'paid');
    seed.close();
    const configPath = join(dir, 'tollgate.config.json');
    writeFileSync(configPath, JSON.stringify({ routes: [{ path: '/api/', upstream: up.url, priceMicros: 0 }], plans: PLANS }));
    // At debug pino writes a line per request too ("forwarding"), between the access lines.
    const server = await spawnServer({ DATABASE_PATH: dbPath, TOLLGATE_CONFIG: configPath, ACCESS_LOG: 'all', LOG_LEVEL: 'debug' });
    try {
      // Nothing reads the pipe: it fills after a few hundred lines, and the writer holds the rest.
      server.child.stdout!.pause();
      const sent = 2_000;
      await Promise.all(Array.from({ length: 20 }, async () => {
        for (let i = 0; i < sent / 20; i++) expect((await fetch(`${server.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
      }));
      server.child.stdout!.resume();
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
      // Two writers of one pipe would split a line when one's write is partial and the other's comes next.
      const lines = server.output().split('\n').filter(Boolean).map((l) => {
        try {
          return JSON.parse(l) as { msg: string; path?: string };
        } catch {
          throw new Error(`not a whole line: ${l}`);
        }
      });
      expect(lines.filter((l) => l.msg === 'request' && l.path === '/api/x')).toHaveLength(sent);
      expect(lines.filter((l) => l.msg === 'forwarding')).toHaveLength(sent);
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
    }
  });
});
