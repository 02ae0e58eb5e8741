// A route with several upstreams: requests spread round-robin, an upstream failing MAX_FAILS
// times in a row is left out for COOL_DOWN_MS and then tried again (passive health), and when
// every upstream is out the route answers 503 with Retry-After at once, billing nothing. On the
// SQLite file and on PostgreSQL.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { COOL_DOWN_MS, MAX_FAILS } from '../src/pipeline/upstreams.ts';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, checkProblem, closedPort, fakeClock, fetchText, startUpstream, type Upstream } from './helpers.ts';
import { METRICS_TOKEN, metricsListener, type Scraper } from './metrics-text.ts';

const PRICE = 1000;
const PLANS = { paid: { limits: { perSecond: 1000 }, burst: 1000, monthlyQuota: 0, overage: 'credits' } };
const T0 = Date.parse('2026-03-02T10:00:00Z');

/** An upstream that names itself in its answer. */
const named = (name: string) => startUpstream((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(name);
});

/** Listens on `port` again (an upstream brought back where it was). */
async function listenOn(server: Server, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

describe.each(BACKENDS)('several upstreams on one route on $backend', ({ backend }) => {
  const clock = fakeClock(T0);
  let a: Upstream;
  let b: Upstream;
  let gw: BackendGateway;
  let metrics: Scraper;
  let key: string;
  let accountId: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([named('A'), named('B')]);
    gw = await startBackendGateway(backend, {
      now: clock.now,
      file: { routes: [{ path: '/api/', upstream: [a.url, b.url], priceMicros: PRICE }], plans: PLANS, defaultPlan: 'paid' },
      env: { ADMIN_TOKEN: METRICS_TOKEN },
    });
    metrics = await metricsListener(gw.app);
    ({ key, id: accountId } = await gw.seed('paid', 1000 * PRICE));
  });
  afterAll(async () => {
    await metrics.close();
    await gw.close();
    await Promise.all([a.close(), b.close()]);
  });

  const get = async () => {
    const res = await fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
    return { status: res.status, from: res.status === 200 ? res.body : '' };
  };
  const healthy = async (url: string) => (await metrics.scrape()).value('tollgate_upstream_healthy', { upstream: url });

  it('spreads requests over them in turn', async () => {
    const from: string[] = [];
    for (let i = 0; i < 10; i++) from.push((await get()).from);
    expect(from.filter((f) => f === 'A')).toHaveLength(5);
    expect(from.filter((f) => f === 'B')).toHaveLength(5);
    expect(from.slice(0, 2).sort()).toEqual(['A', 'B']);
  });

  it('one that stops answering is left out after failing in a row, tried again after the cool-down, and back once it answers', async () => {
    const port = Number(new URL(a.url).port);
    await a.close();
    const failed: number[] = [];
    const seen: string[] = [];
    // A's turns fail (502, not billed) until it is left out; B answers its own.
    for (let i = 0; i < 4 * MAX_FAILS && failed.length < MAX_FAILS; i++) {
      const r = await get();
      if (r.status === 200) seen.push(r.from);
      else failed.push(r.status);
    }
    expect(failed).toEqual(new Array(MAX_FAILS).fill(502));
    expect(seen.every((f) => f === 'B')).toBe(true);
    expect(await healthy(a.url)).toBe(0);
    expect(await healthy(b.url)).toBe(1);
    expect((await metrics.scrape()).value('tollgate_upstream_ejections_total', { upstream: a.url })).toBe(1);

    // Left out: every request goes to B, none fails.
    const received = b.received.length;
    for (let i = 0; i < 10; i++) expect(await get()).toEqual({ status: 200, from: 'B' });
    expect(b.received.length - received).toBe(10);

    // After the cool-down one request tries A: still down, so one more 502 and another cool-down.
    clock.advance(COOL_DOWN_MS);
    const tries = [await get(), await get(), await get()];
    expect(tries.map((t) => t.status).sort()).toEqual([200, 200, 502]);
    for (let i = 0; i < 5; i++) expect(await get()).toEqual({ status: 200, from: 'B' });

    // A is back where it was; after the next cool-down its try succeeds and it takes its turns again.
    await listenOn(a.server, port);
    clock.advance(COOL_DOWN_MS);
    const back: string[] = [];
    for (let i = 0; i < 6; i++) back.push((await get()).from);
    expect(back.filter((f) => f === 'A').length).toBeGreaterThanOrEqual(2);
    expect(back.filter((f) => f === 'B').length).toBeGreaterThanOrEqual(2);
    expect(await healthy(a.url)).toBe(1);

    // Only the answered requests were charged.
    const rows = await gw.rows(accountId);
    expect(rows.filter((r) => r.status === 502).every((r) => r.price_micros === 0)).toBe(true);
    expect(rows.filter((r) => r.status === 200).every((r) => r.price_micros === PRICE)).toBe(true);
  });
});

describe.each(BACKENDS)('every upstream of a route left out on $backend', ({ backend }) => {
  const clock = fakeClock(T0);
  let hung: Server[];
  let hits: number[];
  let gw: BackendGateway;
  let dead: Upstream;

  beforeAll(async () => {
    // They take the request and never answer: each try waits out the route's timeout.
    hits = [0, 0];
    hung = [0, 1].map((i) => createServer(() => void hits[i]++));
    await Promise.all(hung.map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    const urls = hung.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
    dead = await startUpstream();
    gw = await startBackendGateway(backend, {
      now: clock.now,
      env: {},
      file: {
        routes: [
          { path: '/api/', upstream: urls, priceMicros: PRICE, timeoutMs: 150 },
          { path: '/lone/', upstream: `http://127.0.0.1:${await closedPort()}`, priceMicros: PRICE },
        ],
        plans: PLANS, defaultPlan: 'paid',
      },
    });
  });
  afterEach(() => clock.set(T0));
  afterAll(async () => {
    await gw.close();
    for (const s of hung) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    await dead.close();
  });

  it('answers 503 with Retry-After at once, reaching no upstream, and charges nothing', async () => {
    const c = await gw.seed('paid', 100 * PRICE);
    // At once: each waits out the timeout (undici times it to the second).
    const slow = await Promise.all(Array.from({ length: 2 * MAX_FAILS }, () => fetch(`${gw.url}/api/slow`, { headers: bearer(c.key) })));
    expect(slow.map((r) => r.status)).toEqual(new Array(2 * MAX_FAILS).fill(504));
    expect(hits).toEqual([MAX_FAILS, MAX_FAILS]);

    clock.advance(COOL_DOWN_MS / 2);
    for (let i = 0; i < 5; i++) {
      const res = await fetchText(`${gw.url}/api/slow`, { headers: bearer(c.key) });
      checkProblem(res, 503, 'upstream-unavailable');
      expect(res.headers.get('retry-after')).toBe(String(COOL_DOWN_MS / 2000));
    }
    expect(hits).toEqual([MAX_FAILS, MAX_FAILS]);
    await gw.returnLeases();
    expect(await gw.balance(c.id)).toBe(100 * PRICE);
    expect(await gw.charges(c.id)).toEqual([]);
    const statuses = (await gw.rows(c.id)).map((r) => ({ status: r.status, billable: r.billable }));
    expect(statuses).toEqual([...new Array(2 * MAX_FAILS).fill({ status: 504, billable: 0 }), ...new Array(5).fill({ status: 503, billable: 0 })]);
  });

  it('a route with a single upstream is never left out: each request tries it (502, not 503)', async () => {
    const c = await gw.seed('paid', 100 * PRICE);
    for (let i = 0; i < 2 * MAX_FAILS; i++) expect((await fetch(`${gw.url}/lone/x`, { headers: bearer(c.key) })).status).toBe(502);
  });
});
