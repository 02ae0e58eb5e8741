// Webhook events through the admin API, with real Stripe signatures against a fake Stripe: the
// list (all or failed, newest first, paged) and a replay through the webhook's own path —
// applied once, seen by the request path at once, audited; a replay of an applied event does
// nothing. And the running configuration, read-only, without a secret in it. Every test runs on
// the SQLite file and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Replay } from '../src/db/admin.ts';
import type { AuditDoc, EventDoc, Page } from '../src/admin/shapes.ts';
import { ADMIN_TOKEN, OTHER_TOKEN, problem, startAdminBackend } from './admin-client.ts';
import { BACKENDS } from './backend-gateway.ts';
import { billingEnv, billingFile, paidCheckout, postWebhook, SECRET_KEY, startFakeStripe, stripeEvent, WEBHOOK_SECRET, type FakeStripe } from './fake-stripe.ts';
import { bearer, fakeClock, fetchText, startUpstream, type Upstream } from './helpers.ts';

describe.each(BACKENDS)('admin API: webhook events on $backend', ({ backend }) => {
  let stripe: FakeStripe;
  let up: Upstream;
  let gw: Awaited<ReturnType<typeof startAdminBackend>>;
  // Stripe signs with the real time: the gateway's clock starts there, and moves on between events
  // listed by their time (rows of one millisecond have no order both databases agree on).
  const clock = fakeClock(Date.now());
  beforeAll(async () => {
    stripe = await startFakeStripe();
    up = await startUpstream();
    gw = await startAdminBackend(backend, { now: clock.now, env: { ...billingEnv(stripe), OPENAI_API_KEY: 'sk-openai-secret-value' }, file: billingFile(up.url) });
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
    await stripe.close();
  });

  async function customer() {
    const { id, key } = await gw.seed('free');
    const customerId = `cus_adm_${id.slice(-8)}`;
    await gw.billing.linkCustomer(id, customerId);
    return { account: { id }, key, customer: customerId };
  }
  /** The changes of the event's replays in the audit log, oldest first. */
  const replays = async (eventId: string) => (await gw.operations().audit({ limit: 100 })).data
    .filter((e) => e.action === 'webhook.replay' && e.target === eventId).reverse().map((e) => e.change);

  it('lists events newest first, the failed ones alone with ?failed=true; a failed one replays as failed until it can apply, then once', async () => {
    const a = await customer();
    // One top-up away from the largest balance the schema allows: crediting $25 violates its CHECK.
    await gw.grant(a.account.id, Number.MAX_SAFE_INTEGER - 10_000_000, 'whale');
    const event = stripeEvent('checkout.session.completed', await paidCheckout(stripe, gw.url, a.key, { cents: 2500 }));
    const id = event.id as string;
    expect((await postWebhook(gw.url, event)).status).toBe(500);
    clock.advance(1);
    const ignored = stripeEvent('customer.created', { id: a.customer, object: 'customer' });
    expect((await postWebhook(gw.url, ignored)).status).toBe(200);

    const all = (await gw.api.get<Page<EventDoc>>('/admin/v1/webhooks')).body;
    expect(all.data.map((e) => [e.id, e.status])).toEqual([[ignored.id, 'ignored'], [id, 'failed']]);
    expect((await gw.api.get<Page<EventDoc>>('/admin/v1/webhooks?failed=true')).body.data.map((e) => e.id)).toEqual([id]);
    const first = (await gw.api.get<Page<EventDoc>>('/admin/v1/webhooks?limit=1')).body;
    expect(first.next).toBe(ignored.id);
    expect((await gw.api.get<Page<EventDoc>>(`/admin/v1/webhooks?limit=1&after=${first.next}`)).body).toEqual({ data: [all.data[1]], next: null });

    expect((await gw.api.post<Replay>(`/admin/v1/webhooks/${id}/replay`)).body).toEqual({ id, type: 'checkout.session.completed', outcome: 'failed' });
    expect(await replays(id)).toEqual([{ type: 'checkout.session.completed', outcome: 'failed', note: expect.stringMatching(/CHECK constraint/i) }]);

    expect(await gw.debit(a.account.id, 1_000_000_000, 'operator', 'make room')).toBe(true);
    const before = await gw.balance(a.account.id);
    expect((await gw.api.post<Replay>(`/admin/v1/webhooks/${id}/replay`)).body.outcome).toBe('applied');
    expect(await gw.balance(a.account.id)).toBe(before + 25_000_000);
    expect((await gw.api.post<Replay>(`/admin/v1/webhooks/${id}/replay`, undefined, { headers: { 'idempotency-key': 'again' } })).body.outcome).toBe('duplicate');
    expect(await gw.balance(a.account.id)).toBe(before + 25_000_000);
    // The failure and the application are recorded; the duplicate changed nothing and is not.
    expect((await replays(id)).map((c) => c.outcome)).toEqual(['failed', 'applied']);
    expect((await gw.api.get<Page<EventDoc>>('/admin/v1/webhooks?failed=true')).body.data).toEqual([]);
    problem(await gw.api.post('/admin/v1/webhooks/evt_nope/replay'), 404, 'not-found');
  });

  it('a replayed subscription event takes effect in the request path at once, and the audit log names the token that asked', async () => {
    const a = await customer();
    const sub = {
      id: 'sub_adm_1', object: 'subscription', customer: a.customer, status: 'active', metadata: { account_id: a.account.id },
      items: { object: 'list', data: [{ id: 'si_1', object: 'subscription_item', price: { id: 'price_pro', object: 'price' }, current_period_start: 1, current_period_end: 2 }] },
    };
    const event = stripeEvent('customer.subscription.created', sub);
    await gw.events.recordFailure({ source: 'stripe', id: event.id as string, type: event.type as string, payload: JSON.stringify(event) }, 'database is locked');
    expect(JSON.parse((await fetchText(`${gw.url}/_tollgate/usage`, { headers: bearer(a.key) })).body).plan).toBe('free');
    const res = await gw.api.post<Replay>(`/admin/v1/webhooks/${event.id as string}/replay`);
    expect(res.body.outcome).toBe('applied');
    expect(JSON.parse((await fetchText(`${gw.url}/_tollgate/usage`, { headers: bearer(a.key) })).body).plan).toBe('pro');
    const audit = (await gw.api.get<Page<AuditDoc>>('/admin/v1/audit?limit=1')).body.data[0];
    expect(audit).toMatchObject({ action: 'webhook.replay', target: event.id, actor: expect.stringMatching(/^token:[0-9a-f]{12}$/), requestId: res.headers.get('x-request-id') });
  });

  it('the configuration: routes, plans and prices as running, every secret redacted', async () => {
    const res = await gw.api.get<{ routes: { path: string; headers: Record<string, string> }[]; plans: Record<string, unknown>; prices: Record<string, unknown>;
      providers: Record<string, { apiKey: string | null }>; stripe: Record<string, unknown>; admin: Record<string, unknown> }>('/admin/v1/config');
    expect(res.body.routes.map((r) => r.path)).toContain('/api/');
    expect(res.body.routes.map((r) => r.path)).toContain('/v1/chat/completions');
    expect(Object.keys(res.body.plans)).toEqual(['free', 'pro', 'team', 'legacy', 'current', 'metered']);
    expect(res.body.prices['gpt-4o-mini']).toBeDefined();
    expect(res.body.providers).toEqual({ openai: { apiKey: '[redacted]' }, anthropic: { apiKey: null } });
    expect(res.body.stripe).toMatchObject({ secretKey: '[redacted]', webhookSecrets: ['[redacted]', '[redacted]'], successUrl: 'https://app.example.com/billing/success' });
    expect(res.body.admin).toMatchObject({ host: '127.0.0.1', tokens: ['[redacted]', '[redacted]'] });
    for (const secret of [SECRET_KEY, WEBHOOK_SECRET, 'sk-openai-secret-value', ADMIN_TOKEN, OTHER_TOKEN]) expect(res.text).not.toContain(secret);
  });
});

describe.each(BACKENDS)('admin API: the configuration of route headers on $backend', ({ backend }) => {
  it('shows which headers a route adds, never their values', async () => {
    const up = await startUpstream();
    const gw = await startAdminBackend(backend, { env: {}, file: { routes: [{ path: '/api/', upstream: up.url, headers: { 'x-upstream-token': 'upstream-secret-123' } }] } });
    try {
      const res = await gw.api.get<{ routes: { headers: Record<string, string> }[] }>('/admin/v1/config');
      expect(res.body.routes[0].headers).toEqual({ 'x-upstream-token': '[redacted]' });
      expect(res.text).not.toContain('upstream-secret-123');
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
