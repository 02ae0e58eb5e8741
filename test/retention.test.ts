// Raw usage rows past USAGE_RETENTION_DAYS are deleted in small batches while requests keep
// flowing; the daily rollups (and the ledger) keep what they counted.
import { afterAll, describe, expect, it } from 'vitest';
import { bearer, fakeClock, openAdmin, seedAccount, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.ts';

const DAY = 86_400_000;

describe('usage retention', () => {
  let up: Upstream;
  const gateways: TestGateway[] = [];
  afterAll(async () => {
    for (const g of gateways) await g.close();
    await up?.close();
  });

  it('deletes rows older than USAGE_RETENTION_DAYS a batch at a time while requests flow, and keeps the rollups', async () => {
    up = await startUpstream();
    const clock = fakeClock('2026-11-01T12:00:00.000Z');
    const file = { routes: [{ path: '/api/', upstream: up.url }] };
    // Ten days ago: 5 000 requests of one account (rows and their rollups as the gateway wrote them).
    const old = await startGateway({ file, now: clock.now, env: { USAGE_RETENTION_DAYS: '0' } });
    gateways.push(old);
    const { key, account } = seedAccount(old.admin);
    const keyId = old.admin.listKeys(account.id)[0].id;
    for (let i = 0; i < 3; i++) expect((await fetch(`${old.url}/api/old`, { headers: bearer(key) })).status).toBe(200);
    await old.close();
    gateways.pop();
    const filler = openAdmin(old.dbPath);
    filler.storage.db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
      INSERT INTO usage (id, ts, request_id, account_id, key_id, route, method, path, status, request_bytes, response_bytes, latency_us, price_micros, billable)
      SELECT (SELECT max(id) FROM usage) + i, ${clock.now()} + i, 'old' || i, '${account.id}', '${keyId}', '/api/', 'GET', '/api/old', 200, 0, 11, 100, 0, 1 FROM n;
      UPDATE counters SET value = (SELECT max(id) FROM usage);
      UPDATE usage_daily SET requests = requests + 5000, through_id = (SELECT max(id) FROM usage) WHERE account_id = '${account.id}';`);
    filler.close();

    // Ten days on, a gateway keeping seven days.
    clock.advance(10 * DAY);
    const gw = await startGateway({ file, now: clock.now, dbPath: old.dbPath, env: { USAGE_RETENTION_DAYS: '7' } });
    gateways.push(gw);
    let answered = 0;
    const count = () => gw.db.prepare('SELECT count(*) FROM usage WHERE ts < ?').pluck().get(clock.now() - 7 * DAY) as number;
    const seen = new Set<number>();
    for (let n = count(); n > 0; n = count()) {
      seen.add(n);
      expect((await fetch(`${gw.url}/api/new`, { headers: bearer(key) })).status).toBe(200);
      answered++;
      if (answered > 10_000) throw new Error('retention deleted nothing');
    }
    // The 5 003 old rows went 2 000 at a time (the first batch at start), requests answered between.
    expect([...seen]).toEqual(expect.arrayContaining([3_003, 1_003]));
    gw.flush();
    expect(gw.db.prepare('SELECT count(*) FROM usage WHERE account_id = ?').pluck().get(account.id)).toBe(answered);
    const rollups = gw.db.prepare('SELECT sum(requests) FROM usage_daily WHERE account_id = ?').pluck().get(account.id);
    expect(rollups).toBe(5_003 + answered);
    expect(gw.admin.usage(account.id, '2026-11').requests).toBe(5_003 + answered);
  });
});
