// Raw usage rows past USAGE_RETENTION_DAYS are deleted in small batches while requests keep
// flowing; the daily rollups (and the ledger) keep what they counted. On the SQLite file and on
// PostgreSQL.
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, fakeClock, startUpstream, type Upstream } from './helpers.ts';

const DAY = 86_400_000;

describe.each(BACKENDS)('usage retention on $backend', ({ backend }) => {
  let up: Upstream;
  const gateways: BackendGateway[] = [];
  afterAll(async () => {
    for (const g of gateways) await g.close();
    await up?.close();
  });

  it('deletes rows older than USAGE_RETENTION_DAYS a batch at a time while requests flow, and keeps the rollups', async () => {
    up = await startUpstream();
    const clock = fakeClock('2026-11-01T12:00:00.000Z');
    const file = { routes: [{ path: '/api/', upstream: up.url }] };
    // Ten days ago: 5 000 requests of one account (rows and their rollups as the gateway wrote them).
    const old = await startBackendGateway(backend, { file, now: clock.now, env: { USAGE_RETENTION_DAYS: '0' } });
    gateways.push(old);
    const { key, id, keyId } = await old.seed('default');
    for (let i = 0; i < 3; i++) expect((await fetch(`${old.url}/api/old`, { headers: bearer(key) })).status).toBe(200);
    await old.close();
    gateways.pop();
    const filler = await old.remote();
    await filler.addUsage(id, keyId, clock.now() + 1, 5000);
    await filler.close();

    // Ten days on, a gateway keeping seven days.
    clock.advance(10 * DAY);
    const gw = await startBackendGateway(backend, { file, now: clock.now, database: old.database, env: { USAGE_RETENTION_DAYS: '7' } });
    gateways.push(gw);
    let answered = 0;
    const count = async () => (await gw.select<{ n: number }>(`SELECT CAST(count(*) AS bigint) AS n FROM usage WHERE ts < ${clock.now() - 7 * DAY}`))[0].n;
    const seen = new Set<number>();
    for (let n = await count(); n > 0; n = await count()) {
      seen.add(n);
      expect((await fetch(`${gw.url}/api/new`, { headers: bearer(key) })).status).toBe(200);
      answered++;
      if (answered > 10_000) throw new Error('retention deleted nothing');
    }
    // The 5 003 old rows went 2 000 at a time, requests answered between: each count seen is what
    // whole batches leave, and one was seen between batches. (SQLite deletes the first batch as the
    // gateway starts, PostgreSQL's answers later and the next may follow before the next request.)
    for (const n of seen) expect((5_003 - n) % 2_000, String(n)).toBe(0);
    expect([...seen].some((n) => n < 5_003)).toBe(true);
    expect(await gw.rows(id)).toHaveLength(answered);
    const rollups = await gw.select<{ n: number }>(`SELECT CAST(sum(requests) AS bigint) AS n FROM usage_daily WHERE account_id = '${id}'`);
    expect(rollups).toEqual([{ n: 5_003 + answered }]);
    expect((await gw.usage(id, '2026-11')).requests).toBe(5_003 + answered);
  });
});
