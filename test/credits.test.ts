// Prepaid credits beyond the monthly quota: what is charged, what is refused, what is given back,
// and that the balance always equals its ledger, also under concurrent requests. The gateway
// takes a lease of the balance (a 'lease' ledger row) and charges requests from it in memory;
// each charge is on the request's usage row, and what the lease did not spend comes back
// ('lease_return') when it ends.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, checkProblem, closedPort, fakeClock, fetchText, startUpstream, type Upstream } from './helpers.ts';

const PERIOD = '2026-05';
const PRICE = 1000;

describe.each(BACKENDS)('prepaid credits on $backend', ({ backend }) => {
  const clock = fakeClock('2026-05-15T10:00:00.000Z');
  let ok: Upstream;
  let boom: Upstream;
  let hang: Server;
  let gw: BackendGateway;

  beforeAll(async () => {
    ok = await startUpstream();
    boom = await startUpstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":"down"}');
    });
    hang = createServer(() => {});
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    gw = await startBackendGateway(backend, {
      now: clock.now,
      env: { SHUTDOWN_TIMEOUT_MS: '500' },
      file: {
        routes: [
          { path: '/api/', upstream: ok.url, priceMicros: PRICE },
          { path: '/cheap/', upstream: ok.url, priceMicros: 250 },
          { path: '/free/', upstream: ok.url, priceMicros: PRICE, metered: false },
          { path: '/boom/', upstream: boom.url, priceMicros: PRICE },
          { path: '/dead/', upstream: `http://127.0.0.1:${await closedPort()}`, priceMicros: PRICE },
          { path: '/slow/', upstream: `http://127.0.0.1:${(hang.address() as AddressInfo).port}`, priceMicros: PRICE, timeoutMs: 100 },
        ],
        plans: {
          prepaid: { monthlyQuota: 0, overage: 'credits' },
          starter: { monthlyQuota: 2, overage: 'credits' },
        },
        defaultPlan: 'prepaid',
      },
    });
  });
  afterAll(async () => {
    await gw.close();
    hang.closeAllConnections();
    await new Promise<void>((r) => hang.close(() => r()));
    await ok.close();
    await boom.close();
  });

  const get = (key: string, path: string) => fetchText(`${gw.url}${path}`, { headers: bearer(key) });
  const balance = (accountId: string) => gw.balance(accountId);
  const kinds = async (accountId: string) => (await gw.ledger(accountId)).map((e) => [e.kind, e.amountMicros]);
  async function expectBalanced(accountId: string): Promise<void> {
    const { balance: b, ledgerSum } = await gw.books(accountId);
    expect(b).toBe(ledgerSum);
    expect(b).toBeGreaterThanOrEqual(0);
    for (const e of await gw.ledger(accountId)) expect(e.balanceAfterMicros).toBeGreaterThanOrEqual(0);
  }
  /** An account on `plan` with one key, granted `micros`. */
  const customer = async (plan: string, micros = 0) => {
    const { id, key, keyId } = await gw.seed(plan, micros);
    return { account: { id }, key, keyId };
  };

  it('requests inside the quota cost nothing; beyond it each costs the route\'s price', async () => {
    const { account, key } = await customer('starter', 5000);
    expect((await get(key, '/api/a')).status).toBe(200);
    expect((await get(key, '/api/b')).status).toBe(200);
    expect(await balance(account.id)).toBe(5000);
    expect((await get(key, '/api/c')).status).toBe(200);
    expect(await balance(account.id)).toBe(4000);
    expect((await get(key, '/cheap/d')).status).toBe(200);
    expect(await balance(account.id)).toBe(3750);
    expect(await gw.quotaUsed(account.id, PERIOD)).toBe(2);
    expect(await gw.charges(account.id)).toEqual([PRICE, 250]);
    await gw.returnLeases();
    expect(await kinds(account.id)).toEqual([['grant', 5000], ['lease', -5000], ['lease_return', 3750]]);
    expect(await balance(account.id)).toBe(3750);
    await expectBalanced(account.id);
  });

  it('a request the balance cannot pay gets 402 and changes nothing', async () => {
    const { account, key } = await customer('prepaid');
    const before = ok.received.length;
    const none = await get(key, '/api/x');
    const p = checkProblem(none, 402, 'insufficient-credits', [key]);
    expect(p.title).toBe('Insufficient credits');
    expect(ok.received.length).toBe(before);

    await gw.grant(account.id, 1500, 'test');
    expect((await get(key, '/api/x')).status).toBe(200);
    expect(await balance(account.id)).toBe(500);
    checkProblem(await get(key, '/api/x'), 402, 'insufficient-credits', [key]);
    expect(await balance(account.id)).toBe(500);
    // A cheaper route still fits in what is left.
    expect((await get(key, '/cheap/x')).status).toBe(200);
    expect(await balance(account.id)).toBe(250);
    expect(ok.received.length).toBe(before + 2);
    await expectBalanced(account.id);
  });

  it('an unmetered route never charges, even with an empty balance', async () => {
    const { account, key } = await customer('prepaid');
    for (let i = 0; i < 3; i++) expect((await get(key, '/free/x')).status).toBe(200);
    expect(await balance(account.id)).toBe(0);
    expect(await gw.ledger(account.id)).toEqual([]);
    expect(await gw.quotaUsed(account.id, PERIOD)).toBe(0);
  });

  it('30 parallel requests against a balance that pays for 7: exactly 7 succeed, the rest get 402, never an overdraft', async () => {
    const { account, key } = await customer('prepaid', 7 * PRICE);
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => get(key, `/api/par${i}`)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(7);
    expect(statuses.filter((s) => s === 402)).toHaveLength(23);
    for (const r of results.filter((x) => x.status === 402)) checkProblem(r, 402, 'insufficient-credits', [key]);
    expect(await balance(account.id)).toBe(0);
    expect(await gw.charges(account.id)).toEqual(Array(7).fill(PRICE));
    await gw.returnLeases();
    expect(await kinds(account.id)).toEqual([['grant', 7 * PRICE], ['lease', -7 * PRICE]]);
    await expectBalanced(account.id);
  });

  it('an upstream 5xx is not billed: the quota it took is given back', async () => {
    const { account, key } = await customer('starter');
    const res = await get(key, '/boom/x');
    // The upstream's own answer passes through unchanged.
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ error: 'down' });
    expect(await gw.quotaUsed(account.id, PERIOD)).toBe(0);
    expect((await gw.usage(account.id, PERIOD)).quotaUsed).toBe(0);
    // Both quota requests are still there.
    expect((await get(key, '/api/x')).status).toBe(200);
    expect((await get(key, '/api/y')).status).toBe(200);
    expect(await gw.quotaUsed(account.id, PERIOD)).toBe(2);
  });

  it('an upstream 5xx is not billed: the money set aside goes back and the ledger still balances', async () => {
    const { account, key } = await customer('prepaid', 3000);
    expect((await get(key, '/boom/x')).status).toBe(503);
    expect(await balance(account.id)).toBe(3000);
    expect(await gw.charges(account.id)).toEqual([]);
    await gw.returnLeases();
    expect(await kinds(account.id)).toEqual([['grant', 3000], ['lease', -3000], ['lease_return', 3000]]);
    await expectBalanced(account.id);
  });

  for (const [path, status, code] of [['/dead/x', 502, 'upstream-unreachable'], ['/slow/x', 504, 'upstream-timeout']] as const) {
    it(`a ${status} (${code}) is not billed: credits are refunded and the quota comes back`, async () => {
      const { account, key } = await customer('prepaid', 2000);
      const quotaAccount = await customer('starter');
      // In parallel: a timeout takes up to a second (undici's coarse timer).
      const [paid, counted] = await Promise.all([get(key, path), get(quotaAccount.key, path)]);
      checkProblem(paid, status, code, [key]);
      checkProblem(counted, status, code, [quotaAccount.key]);
      expect(await balance(account.id)).toBe(2000);
      expect(await gw.charges(account.id)).toEqual([]);
      await gw.returnLeases();
      expect(await kinds(account.id)).toEqual([['grant', 2000], ['lease', -2000], ['lease_return', 2000]]);
      await expectBalanced(account.id);
      expect(await gw.quotaUsed(quotaAccount.account.id, PERIOD)).toBe(0);
    });
  }

  it('every proxied request leaves one usage row with its status, bytes, price and billability', async () => {
    const { account, key, keyId } = await customer('starter', PRICE);
    const ids: string[] = [];
    const call = async (path: string, init: RequestInit = {}) => {
      const res = await fetchText(`${gw.url}${path}`, { ...init, headers: { ...bearer(key), ...init.headers as Record<string, string> } });
      ids.push(res.headers.get('x-request-id')!);
      return res.status;
    };
    expect(await call('/boom/1')).toBe(503); // quota taken, given back
    expect(await call('/api/2')).toBe(200); // quota 1
    expect(await call('/api/3', { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } })).toBe(200); // quota 2
    expect(await call('/api/4')).toBe(200); // paid from credits
    expect(await call('/api/5')).toBe(402); // refused: no usage row
    const rows = await gw.rows(account.id);
    expect(rows.map((r) => r.request_id)).toEqual(ids.slice(0, 4));
    expect(rows.map((r) => [r.path, r.status, r.price_micros, r.billable])).toEqual([
      ['/boom/1', 503, 0, 0],
      ['/api/2', 200, 0, 1],
      ['/api/3', 200, 0, 1],
      ['/api/4', 200, PRICE, 1],
    ]);
    for (const r of rows) {
      expect(r.key_id).toBe(keyId);
      expect(r.latency_us).toBeGreaterThan(0);
    }
    expect(rows.map((r) => r.route)).toEqual(['/boom/', '/api/', '/api/', '/api/']);
    expect(rows.map((r) => r.method)).toEqual(['GET', 'GET', 'POST', 'GET']);
    expect(rows.map((r) => r.request_bytes)).toEqual([0, 0, 5, 0]);
    expect(rows.map((r) => r.response_bytes)).toEqual([16, 11, 11, 11]);

    const summary = (await gw.usage(account.id, PERIOD));
    expect(summary).toMatchObject({ quotaUsed: 2, requests: 4, billable: 3, chargedMicros: PRICE });
    expect(summary.byStatus).toEqual({ 200: 3, 503: 1 });
    await expectBalanced(account.id);
  });
});
