// Metered overage ("overage": "stripe"): requests past the quota pass and are counted in
// meter_outbox; the reporter sends one billing meter event per account, meter and interval with
// the summed value and an identifier that makes a retry harmless. Stripe failing, then
// recovering, loses nothing and doubles nothing; the outbox survives a restart. On the SQLite file
// and on PostgreSQL.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, fakeClock, fetchText, startUpstream, type Upstream } from './helpers.ts';
import { billingEnv, billingFile, startFakeStripe, type FakeStripe, type StripeCall } from './fake-stripe.ts';

const METER = '/v1/billing/meter_events';
const INTERVAL = 60_000;
// Aligned to the 60 s interval.
const T0 = Date.parse('2026-11-10T12:00:00Z');

describe.each(BACKENDS)('metered overage on $backend', ({ backend }) => {
  let stripe: FakeStripe;
  let upstream: Upstream;
  let gw: BackendGateway;
  let clock: ReturnType<typeof fakeClock>;
  let seq = 0;

  beforeAll(async () => {
    stripe = await startFakeStripe();
    // /api/fail answers 503: such a request is not billable, so it is no overage either.
    upstream = await startUpstream((req, res) => {
      res.writeHead(req.url!.startsWith('/api/fail') ? 503 : 200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });

  afterAll(async () => {
    await upstream.close();
    await stripe.close();
  });

  beforeEach(async () => {
    clock = fakeClock(T0);
    gw = await startBackendGateway(backend, { env: billingEnv(stripe), file: billingFile(upstream.url), now: clock.now });
  });

  afterEach(async () => {
    await gw.close();
  });

  async function meteredAccount() {
    const { id, key } = await gw.seed('metered');
    const customer = `cus_metered_${Date.now().toString(36)}_${++seq}`;
    await gw.billing.linkCustomer(id, customer);
    return { id, key, customer };
  }

  async function requests(key: string, n: number, path = '/api/x', url = gw.url): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < n; i++) statuses.push((await fetchText(`${url}${path}`, { headers: bearer(key) })).status);
    return statuses;
  }

  interface OutboxRow { account_id: string; event_name: string; interval_start: number; value: number; identifier: string; status: string; attempts: number }
  async function outbox(accountId: string): Promise<OutboxRow[]> {
    await gw.written();
    return gw.select<OutboxRow>(`SELECT account_id, event_name, interval_start, value, identifier, status, attempts
      FROM meter_outbox WHERE account_id = '${accountId}' ORDER BY interval_start`);
  }

  /** What the background reporter does on its tick; the 10 ms usage batch is written first. */
  async function report() {
    await gw.written();
    return gw.app.billing!.reporter.runOnce();
  }

  const callsFor = (customer: string): StripeCall[] =>
    stripe.callsTo(METER).filter((c) => (c.params.payload as { stripe_customer_id?: string } | undefined)?.stripe_customer_id === customer);

  describe('requests past the quota', () => {
    it('succeed and are counted in meter_outbox; a 5xx from the upstream is not counted', async () => {
      const a = await meteredAccount();
      expect(await requests(a.key, 7)).toEqual(Array(7).fill(200)); // quota 3, then 4 of overage
      expect(await requests(a.key, 2, '/api/fail')).toEqual([503, 503]);
      const rows = await outbox(a.id);
      expect(rows).toEqual([{
        account_id: a.id, event_name: 'api_requests', interval_start: T0, value: 4,
        identifier: expect.stringMatching(/^tg_[\w-]{40}$/), status: 'pending', attempts: 0,
      }]);
      const usage = JSON.parse((await fetchText(`${gw.url}/_tollgate/usage`, { headers: bearer(a.key) })).body) as { quota: { used: number } };
      expect(usage.quota.used).toBe(3);
    });

    it('are counted per interval', async () => {
      const a = await meteredAccount();
      await requests(a.key, 5); // 2 over, in the first interval
      clock.advance(INTERVAL + 5_000);
      await requests(a.key, 3);
      expect((await outbox(a.id)).map((r) => [r.interval_start, r.value])).toEqual([[T0, 2], [T0 + INTERVAL, 3]]);
    });
  });

  describe('the reporter', () => {
    it('sends one meter event per account per interval, with the summed value and an identifier, once the interval is one interval old', async () => {
      const a = await meteredAccount();
      const b = await meteredAccount();
      await requests(a.key, 6); // 3 over
      await requests(b.key, 4); // 1 over
      clock.advance(30_000);
      await requests(a.key, 2); // 2 more in the same interval

      clock.set(T0 + INTERVAL + 1); // the interval ended, but late counts may still come
      expect(await report()).toEqual([]);
      expect(stripe.callsTo(METER).filter((c) => [a.customer, b.customer].includes(String((c.params.payload as Record<string, string>).stripe_customer_id)))).toHaveLength(0);

      clock.set(T0 + 2 * INTERVAL);
      const results = await report();
      expect(results.map((r) => [r.accountId, r.value, r.ok]).sort()).toEqual([[a.id, 5, true], [b.id, 1, true]].sort());
      const [callA] = callsFor(a.customer);
      expect(callsFor(a.customer)).toHaveLength(1);
      expect(callA.params).toEqual({
        event_name: 'api_requests',
        identifier: (await outbox(a.id))[0].identifier,
        timestamp: String((T0 + INTERVAL) / 1000 - 1),
        payload: { stripe_customer_id: a.customer, value: '5' },
      });
      expect(callsFor(b.customer)[0].params.payload).toEqual({ stripe_customer_id: b.customer, value: '1' });
      expect((await outbox(a.id))[0]).toMatchObject({ status: 'reported', attempts: 1 });
      expect(stripe.meterEvents.get(callA.params.identifier as string)).toMatchObject({ object: 'billing.meter_event', event_name: 'api_requests' });

      // Nothing is sent twice.
      clock.advance(10 * INTERVAL);
      expect(await report()).toEqual([]);
      expect(callsFor(a.customer)).toHaveLength(1);
    });

    it('Stripe failing, then recovering: retried with the same identifier after a backoff, reported once', async () => {
      const a = await meteredAccount();
      await requests(a.key, 5);
      clock.set(T0 + 2 * INTERVAL);
      stripe.fail(METER, { times: 1, status: 500, shouldRetry: false, message: 'meter events are down' });
      const [failed] = await report();
      expect(failed).toMatchObject({ ok: false, value: 2 });
      expect(failed.error).toMatch(/meter events are down/);
      expect((await outbox(a.id))[0]).toMatchObject({ status: 'pending', attempts: 1, value: 2 });

      // Requests go on while Stripe is down.
      expect(await requests(a.key, 2)).toEqual([200, 200]);

      // Backing off: not retried at once.
      expect(await report()).toEqual([]);
      expect(callsFor(a.customer)).toHaveLength(1);

      clock.advance(1_000);
      const [retried] = await report();
      expect(retried).toMatchObject({ ok: true, value: 2 });
      const calls = callsFor(a.customer);
      expect(calls).toHaveLength(2);
      expect(calls[1].params.identifier).toBe(calls[0].params.identifier);
      expect((await outbox(a.id))[0]).toMatchObject({ status: 'reported', attempts: 2 });
      expect([...stripe.meterEvents.values()].filter((e) => (e.payload as Record<string, string>).stripe_customer_id === a.customer)).toHaveLength(1);
    });

    it('a report Stripe kept but whose reply was lost is not doubled: the retry meets the same identifier and is marked reported', async () => {
      const a = await meteredAccount();
      await requests(a.key, 4);
      clock.set(T0 + 2 * INTERVAL);
      stripe.fail(METER, { times: 1, status: 500, shouldRetry: false, accept: true });
      expect((await report())[0].ok).toBe(false);
      clock.advance(1_000);
      expect((await report())[0].ok).toBe(true);
      expect(callsFor(a.customer).map((c) => c.status)).toEqual([500, 400]);
      expect((await outbox(a.id))[0].status).toBe('reported');
      const kept = [...stripe.meterEvents.values()].filter((e) => (e.payload as Record<string, string>).stripe_customer_id === a.customer);
      expect(kept).toHaveLength(1);
      expect(kept[0].payload).toEqual({ stripe_customer_id: a.customer, value: '1' });
    });

    it('the client\'s own retries of a 5xx (up to 2) reuse the identifier and the idempotency key', async () => {
      const a = await meteredAccount();
      await requests(a.key, 4);
      clock.set(T0 + 2 * INTERVAL);
      stripe.fail(METER, { times: 2, status: 503 });
      const [result] = await report();
      expect(result.ok).toBe(true);
      const calls = callsFor(a.customer);
      expect(calls.map((c) => c.status)).toEqual([503, 503, 200]);
      expect(new Set(calls.map((c) => c.params.identifier)).size).toBe(1);
      expect(new Set(calls.map((c) => c.idempotencyKey)).size).toBe(1);
      expect((await outbox(a.id))[0]).toMatchObject({ status: 'reported', attempts: 1 });
    });

    it('an account without a Stripe customer is kept pending, not dropped', async () => {
      const seeded = await gw.seed('metered');
      await requests(seeded.key, 5);
      clock.set(T0 + 2 * INTERVAL);
      const [result] = await report();
      expect(result).toMatchObject({ ok: false, accountId: seeded.id, value: 2 });
      expect(result.error).toMatch(/no Stripe customer/);
      expect((await outbox(seeded.id))[0].status).toBe('pending');
      expect((await gw.billing.pendingMeterEvents()).map((r) => r.accountId)).toContain(seeded.id);
    });

    it('survives a restart: counted by one gateway, reported by the next on the same database', async () => {
      const a = await meteredAccount();
      await requests(a.key, 6);
      const before = gw;
      await before.close(); // the counts were still in the 10 ms batch: close writes them
      clock.set(T0 + 2 * INTERVAL);
      const next = await startBackendGateway(backend, { env: billingEnv(stripe), file: billingFile(upstream.url), now: clock.now, database: before.database });
      try {
        expect(await requests(a.key, 1, '/api/x', next.url)).toEqual([200]); // same accounts and keys
        const results = await next.app.billing!.reporter.runOnce();
        expect(results).toEqual([expect.objectContaining({ accountId: a.id, value: 3, ok: true })]);
        expect(callsFor(a.customer)).toHaveLength(1);
        expect(callsFor(a.customer)[0].params.payload).toEqual({ stripe_customer_id: a.customer, value: '3' });
      } finally {
        await next.close();
      }
      gw = await startBackendGateway(backend, { env: billingEnv(stripe), file: billingFile(upstream.url), now: clock.now }); // for afterEach
    });
  });
});
