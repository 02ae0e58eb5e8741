// tollgate backup FILE under load: an online copy that opens with integrity_check = ok, every
// balance equal to its ledger, the money and the rows as they were at one moment.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, parsed, expectFailure } from './cli-run.ts';
import { bearer, seedAccount, startGateway, startUpstream, tempDir, type TestGateway, type Upstream } from './helpers.ts';

describe('tollgate backup', () => {
  let up: Upstream;
  let gw: TestGateway;
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  it('copies the database while requests flow; the copy is whole and balanced', async () => {
    up = await startUpstream();
    gw = await startGateway({
      file: {
        routes: [{ path: '/api/', upstream: up.url, priceMicros: 100 }],
        plans: { paid: { limits: { perSecond: 100_000 }, burst: 100_000, monthlyQuota: 0, overage: 'credits' } },
      },
    });
    const customers = Array.from({ length: 5 }, () => {
      const c = seedAccount(gw.admin, 'paid');
      gw.admin.grantCredits(c.account.id, 10_000_000, 'test');
      return c;
    });
    let stop = false;
    let answered = 0;
    const load = Promise.all(customers.map(async ({ key }) => {
      while (!stop) {
        const res = await fetch(`${gw.url}/api/x`, { headers: bearer(key) });
        await res.arrayBuffer();
        expect(res.status).toBe(200);
        answered++;
      }
    }));
    while (answered < 200) await new Promise((r) => setImmediate(r));

    const file = join(tempDir(), 'copy.db');
    const report = parsed<{ integrity: string; accounts: number; unbalanced: number; bytes: number }>(
      await runCli(['backup', file, '--db', gw.dbPath, '--json']));
    const at = answered;
    stop = true;
    await load;
    expect(report).toMatchObject({ integrity: 'ok', accounts: 5, unbalanced: 0 });
    expect(report.bytes).toBeGreaterThan(0);

    const copy = new Database(file, { readonly: true });
    try {
      expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
      // What left each balance in the copy is no more than its leases held at that moment.
      for (const { account } of customers) {
        const { balance, ledger, held } = copy.prepare(`SELECT balance_micros AS balance,
          (SELECT sum(amount_micros) FROM ledger WHERE account_id = a.id) AS ledger,
          (SELECT coalesce(sum(granted_micros), 0) FROM leases WHERE account_id = a.id AND closed_at IS NULL) AS held
          FROM accounts a WHERE id = ?`).get(account.id) as { balance: number; ledger: number; held: number };
        expect(balance).toBe(ledger);
        expect(balance + held).toBe(10_000_000);
      }
      const rows = copy.prepare('SELECT count(*) FROM usage').pluck().get() as number;
      expect(rows).toBeLessThanOrEqual(at + 5);
      expect(copy.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(
        gw.db.prepare('SELECT max(version) FROM schema_migrations').pluck().get());
    } finally {
      copy.close();
    }
  });

  it('never overwrites a file', async () => {
    const file = join(tempDir(), 'taken.db');
    parsed(await runCli(['backup', file, '--db', gw.dbPath, '--json']));
    expectFailure(await runCli(['backup', file, '--db', gw.dbPath]), 1, /exists/);
  });
});
