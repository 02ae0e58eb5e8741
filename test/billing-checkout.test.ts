// POST /_tollgate/billing/checkout and GET /_tollgate/billing/portal against a fake of Stripe's
// API: what the stripe client sent (mode, amounts, metadata, customer, URLs, idempotency key),
// the customer created once per account, and the refusals. On the SQLite file and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, checkProblem, fetchText, startUpstream, type Upstream } from './helpers.ts';
import { billingEnv, billingFile, SECRET_KEY, startFakeStripe, type FakeStripe } from './fake-stripe.ts';

const CUSTOMERS = '/v1/customers';
const SESSIONS = '/v1/checkout/sessions';
const PORTAL = '/v1/billing_portal/sessions';

describe.each(BACKENDS)('billing checkout and portal on $backend', ({ backend }) => {
  let stripe: FakeStripe;
  let upstream: Upstream;
  let gw: BackendGateway;

  beforeAll(async () => {
    stripe = await startFakeStripe();
    upstream = await startUpstream();
    gw = await startBackendGateway(backend, { env: billingEnv(stripe), file: billingFile(upstream.url) });
  });

  afterAll(async () => {
    await gw.close();
    await upstream.close();
    await stripe.close();
  });

  function post(key: string | undefined, body: string | Record<string, unknown>) {
    return fetchText(`${gw.url}/_tollgate/billing/checkout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key && bearer(key)) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  const portal = (key: string) => fetchText(`${gw.url}/_tollgate/billing/portal`, { headers: bearer(key) });
  /** An account on the default plan with one key. */
  const customer = async (email?: string) => {
    const { id, key } = await gw.seed('free', 0, email);
    return { account: { id }, key };
  };
  const customerId = async (accountId: string) => (await gw.billing.account(accountId))!.stripeCustomerId;

  describe('checkout for credits', () => {
    it('returns the session URL; Stripe got payment mode, 2500 usd cents and the account on the session and the payment intent', async () => {
      const { account, key } = await customer('buyer@example.com');
      const before = stripe.calls.length;
      const res = await post(key, { type: 'credits', amount: '25.00' });
      expect(res.status).toBe(200);
      const { url } = JSON.parse(res.body) as { url: string };
      expect(url).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_fake\d+$/);

      const mine = stripe.calls.slice(before);
      expect(mine.map((c) => c.path)).toEqual([CUSTOMERS, SESSIONS]);
      const [customerCall, sessionCall] = mine;
      expect(customerCall.params).toMatchObject({ email: 'buyer@example.com', metadata: { account_id: account.id } });
      expect(customerCall.idempotencyKey).toBe(`tollgate-customer-${account.id}`);
      expect(customerCall.authorization).toBe(`Bearer ${SECRET_KEY}`);

      const p = sessionCall.params;
      expect(p.mode).toBe('payment');
      expect(p.client_reference_id).toBe(account.id);
      expect(p.customer).toBe(await customerId(account.id));
      expect(p.customer).toMatch(/^cus_fake/);
      expect(p.success_url).toBe('https://app.example.com/billing/success');
      expect(p.cancel_url).toBe('https://app.example.com/billing/cancel');
      expect(p.metadata).toMatchObject({ account_id: account.id });
      expect(p.payment_intent_data).toEqual({ metadata: { account_id: account.id } });
      expect(p.subscription_data).toBeUndefined();
      const lineItems = p.line_items as { quantity: string; price_data: { currency: string; unit_amount: string } }[];
      expect(lineItems).toHaveLength(1);
      expect(lineItems[0].quantity).toBe('1');
      expect(lineItems[0].price_data.currency).toBe('usd');
      expect(lineItems[0].price_data.unit_amount).toBe('2500');
      // Every POST carries an idempotency key (the client's own when the gateway gives none).
      expect(sessionCall.idempotencyKey).toBeTruthy();
      expect(sessionCall.authorization).toBe(`Bearer ${SECRET_KEY}`);
    });

    it('creates the Stripe customer once per account and reuses it', async () => {
      const { account, key } = await customer();
      const before = stripe.calls.length;
      for (const amount of ['10.00', '50.00']) expect((await post(key, { type: 'credits', amount })).status).toBe(200);
      const mine = stripe.calls.slice(before);
      expect(mine.map((c) => c.path)).toEqual([CUSTOMERS, SESSIONS, SESSIONS]);
      const stripeCustomer = await customerId(account.id);
      expect(mine[1].params.customer).toBe(stripeCustomer);
      expect(mine[2].params.customer).toBe(stripeCustomer);
      expect((mine[2].params.line_items as { price_data: { unit_amount: string } }[])[0].price_data.unit_amount).toBe('5000');
    });

    it('two first checkouts at once end with one customer (same idempotency key)', async () => {
      const { account, key } = await customer();
      const before = stripe.calls.length;
      const replies = await Promise.all([post(key, { type: 'credits', amount: '10.00' }), post(key, { type: 'credits', amount: '10.00' })]);
      expect(replies.map((r) => r.status)).toEqual([200, 200]);
      const creates = stripe.calls.slice(before).filter((c) => c.path === CUSTOMERS);
      expect(new Set(creates.map((c) => c.idempotencyKey))).toEqual(new Set([`tollgate-customer-${account.id}`]));
      const sessions = stripe.calls.slice(before).filter((c) => c.path === SESSIONS);
      expect(new Set(sessions.map((c) => c.params.customer)).size).toBe(1);
      expect(sessions[0].params.customer).toBe(await customerId(account.id));
    });

    it('records the session it created (id, account, amount in micros): what a paid checkout is later credited by', async () => {
      const { account, key } = await customer();
      const res = await post(key, { type: 'credits', amount: '50.00' });
      expect(res.status).toBe(200);
      const { id } = JSON.parse(res.body) as { id: string };
      expect(id).toMatch(/^cs_test_fake/);
      expect(await gw.billing.creditCheckout(id)).toEqual({ sessionId: id, accountId: account.id, amountMicros: 50_000_000 });
      // A plan checkout buys no credits and is not recorded; a create that failed records nothing.
      const plan = JSON.parse((await post(key, { type: 'plan', plan: 'pro' })).body) as { id: string };
      expect(await gw.billing.creditCheckout(plan.id)).toBeUndefined();
      const sessions = async () => (await gw.select<{ n: number }>(`SELECT CAST(count(*) AS bigint) AS n FROM checkout_sessions WHERE account_id = '${account.id}'`))[0].n;
      expect(await sessions()).toBe(1);
      stripe.fail(SESSIONS, { times: 1, status: 500, shouldRetry: false });
      expect((await post(key, { type: 'credits', amount: '10.00' })).status).toBe(502);
      expect(await sessions()).toBe(1);
    });

    it('an amount that is not a credit pack is refused with 400 and nothing reaches Stripe', async () => {
      const { key } = await customer();
      const before = stripe.calls.length;
      for (const amount of ['12.34', '-25.00', '25.001', 25, '']) {
        const res = await post(key, { type: 'credits', amount });
        const problem = checkProblem(res, 400, 'bad-request', [SECRET_KEY]);
        if (amount === '12.34') expect(problem.detail).toContain('10.00, 25.00, 50.00');
      }
      expect(stripe.calls.length).toBe(before);
    });
  });

  describe('checkout for a plan', () => {
    it('uses subscription mode with the plan\'s price and puts the account on the subscription', async () => {
      const { account, key } = await customer();
      const before = stripe.calls.length;
      const res = await post(key, { type: 'plan', plan: 'pro' });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toHaveProperty('url');
      const session = stripe.calls.slice(before).find((c) => c.path === SESSIONS)!;
      const p = session.params;
      expect(p.mode).toBe('subscription');
      expect(p.line_items).toEqual([{ price: 'price_pro', quantity: '1' }]);
      expect(p.client_reference_id).toBe(account.id);
      expect(p.metadata).toMatchObject({ account_id: account.id, plan: 'pro' });
      expect(p.subscription_data).toEqual({ metadata: { account_id: account.id, plan: 'pro' } });
      expect(p.payment_intent_data).toBeUndefined();
      expect(p.customer).toBe(await customerId(account.id));
    });

    it('an account with a subscription already gets 409 and is sent to the portal: no second subscription', async () => {
      const { account, key } = await customer();
      await gw.billing.setSubscription(account.id, {
        subscriptionId: 'sub_live', status: 'active', plan: 'pro', eventAt: Date.now(), pastDueSince: null, periodStart: null, periodEnd: null,
      });
      const before = stripe.calls.length;
      const res = await post(key, { type: 'plan', plan: 'team' });
      checkProblem(res, 409, 'conflict');
      expect(JSON.parse(res.body).detail).toMatch(/portal/);
      expect(stripe.calls.length).toBe(before);
    });

    it('an unknown plan, or one not sold through Stripe, is refused with 400', async () => {
      const { key } = await customer();
      const before = stripe.calls.length;
      for (const plan of ['enterprise', 'free', 42]) checkProblem(await post(key, { type: 'plan', plan }), 400, 'bad-request');
      checkProblem(await post(key, { type: 'donation' }), 400, 'bad-request');
      checkProblem(await post(key, '["plan"]'), 400, 'bad-request');
      expect(stripe.calls.length).toBe(before);
    });
  });

  describe('checkout refusals', () => {
    it('invalid JSON → 400', async () => {
      const { key } = await customer();
      const problem = checkProblem(await post(key, '{"type":"credits",'), 400, 'bad-request');
      expect(problem.detail).toMatch(/JSON/);
    });

    it('no key → 401, a wrong key → 401, and Stripe is not called', async () => {
      const before = stripe.calls.length;
      checkProblem(await post(undefined, { type: 'credits', amount: '25.00' }), 401, 'missing-key');
      checkProblem(await post('tg_not_a_real_key', { type: 'credits', amount: '25.00' }), 401, 'malformed-key');
      expect(stripe.calls.length).toBe(before);
    });

    it('Stripe failing → 502 problem that leaks no secret; it works again once Stripe recovers', async () => {
      const { key } = await customer();
      stripe.fail(SESSIONS, { times: 1, status: 500, shouldRetry: false, message: 'Stripe is having a bad day' });
      const res = await post(key, { type: 'credits', amount: '25.00' });
      const problem = checkProblem(res, 502, 'upstream-unreachable', [SECRET_KEY]);
      expect(problem.detail).toMatch(/Stripe/);
      expect((await post(key, { type: 'credits', amount: '25.00' })).status).toBe(200);
    });

    it('a 5xx that Stripe does not forbid retrying is retried by the client (3 calls) before the 502', async () => {
      const { key } = await customer();
      expect((await portal(key)).status).toBe(200); // the customer exists: only the session call fails
      const before = stripe.callsTo(SESSIONS).length;
      stripe.fail(SESSIONS, { times: 3, status: 503 });
      checkProblem(await post(key, { type: 'plan', plan: 'team' }), 502, 'upstream-unreachable');
      const attempts = stripe.callsTo(SESSIONS).slice(before);
      expect(attempts).toHaveLength(3);
      expect(new Set(attempts.map((c) => c.idempotencyKey)).size).toBe(1); // one key across the retries
    });
  });

  describe('customer portal', () => {
    it('returns {url}; Stripe got the customer and the return URL', async () => {
      const { account, key } = await customer();
      const before = stripe.calls.length;
      const res = await portal(key);
      expect(res.status).toBe(200);
      const { url } = JSON.parse(res.body) as { url: string };
      expect(url).toMatch(/^https:\/\/billing\.stripe\.com\/p\/session\/bps_fake\d+$/);
      const mine = stripe.calls.slice(before);
      expect(mine.map((c) => c.path)).toEqual([CUSTOMERS, PORTAL]);
      expect(mine[1].params).toEqual({ customer: await customerId(account.id), return_url: 'https://app.example.com/account' });
      // The second time the customer is reused.
      expect((await portal(key)).status).toBe(200);
      expect(stripe.calls.slice(before).map((c) => c.path)).toEqual([CUSTOMERS, PORTAL, PORTAL]);
    });

    it('a suspended account still reaches the portal (and checkout), though its API requests get 402', async () => {
      const { account, key } = await customer();
      await gw.billing.setStanding(account.id, 'suspended', 'payment_failed');
      const api = await fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
      const problem = checkProblem(api, 402, 'account-suspended');
      expect(problem.detail).toMatch(/portal/);
      expect((await portal(key)).status).toBe(200);
      expect((await post(key, { type: 'credits', amount: '10.00' })).status).toBe(200);
    });

    it('Stripe failing → 502', async () => {
      const { key } = await customer();
      stripe.fail(CUSTOMERS, { times: 1, status: 500, shouldRetry: false });
      checkProblem(await portal(key), 502, 'upstream-unreachable', [SECRET_KEY]);
    });
  });

  describe('without Stripe settings', () => {
    it('the billing endpoints answer 503 with a clear problem; the gateway still proxies', async () => {
      const plain = await startBackendGateway(backend, { env: {}, file: { routes: [{ path: '/api/', upstream: upstream.url }] } });
      try {
        expect(plain.app.billing).toBeUndefined();
        const { key } = await plain.seed('default');
        const checkout = await fetchText(`${plain.url}/_tollgate/billing/checkout`, {
          method: 'POST', headers: { ...bearer(key), 'content-type': 'application/json' }, body: '{"type":"credits","amount":"25.00"}',
        });
        expect(checkProblem(checkout, 503, 'billing-not-configured').detail).toMatch(/STRIPE_SECRET_KEY/);
        checkProblem(await fetchText(`${plain.url}/_tollgate/billing/portal`, { headers: bearer(key) }), 503, 'billing-not-configured');
        checkProblem(await fetchText(`${plain.url}/_tollgate/webhooks/stripe`, { method: 'POST', body: '{}' }), 503, 'billing-not-configured');
        expect((await fetchText(`${plain.url}/api/ok`, { headers: bearer(key) })).status).toBe(200);
      } finally {
        await plain.close();
      }
    });
  });
});
