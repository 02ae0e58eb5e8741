// GET /metrics against the traffic a test sent: requests by route and status class, refusals by
// reason, credits charged, AI tokens by provider, model and type, Stripe events, usage commits,
// database busy retries, leases and the process's own metrics; all in Prometheus' text format
// with bounded labels (no account, key or raw URL). On the SQLite file and on PostgreSQL, but for
// the busy retries of SQLite's write lock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, seedAccount, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.ts';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { customer, openaiClient, startAiGateway, startFakeProviders, usageRow, type FakeProviders } from './fake-providers.ts';
import { billingEnv, billingFile, paidCheckout, postWebhook, startFakeStripe, stripeEvent, type FakeStripe } from './fake-stripe.ts';
import { METRICS_TOKEN, metricsListener, type Scraper } from './metrics-text.ts';
import { until } from './until.ts';
import { holdWriteLock } from './write-lock.ts';

const PRICE = 1000;
const PLANS = {
  // Every request beyond a quota of none is paid from credits.
  paid: { limits: { perSecond: 1000 }, burst: 1000, monthlyQuota: 0, overage: 'credits' },
  tiny: { limits: { perMinute: 2 }, monthlyQuota: null },
  capped: { limits: { perSecond: 1000 }, monthlyQuota: 1, overage: 'block' },
};

describe.each(BACKENDS)('metrics of proxied traffic on $backend', ({ backend }) => {
  let up: Upstream;
  let gw: BackendGateway;
  let metrics: Scraper;

  beforeAll(async () => {
    up = await startUpstream();
    gw = await startBackendGateway(backend, {
      file: { routes: [{ path: '/api/', upstream: up.url, priceMicros: PRICE }], plans: PLANS, defaultPlan: 'paid' },
      env: { MAX_BODY_BYTES: '1000', ADMIN_TOKEN: METRICS_TOKEN },
    });
    metrics = await metricsListener(gw.app);
  });
  afterAll(async () => {
    await metrics.close();
    await gw.close();
    await up.close();
  });

  it('N requests add N to their route\'s counter and histogram; refusals count by reason; credits charged add up', async () => {
    const before = await metrics.scrape();
    const count = (e: typeof before, labels: Record<string, string>) => e.value('tollgate_requests_total', labels) ?? 0;

    const paid = await gw.seed('paid', 100 * PRICE);
    const N = 7;
    for (let i = 0; i < N; i++) expect((await fetch(`${gw.url}/api/x?i=${i}`, { headers: bearer(paid.key) })).status).toBe(200);

    const tiny = await gw.seed('tiny');
    const tinyStatuses = [];
    for (let i = 0; i < 3; i++) tinyStatuses.push((await fetch(`${gw.url}/api/t`, { headers: bearer(tiny.key) })).status);
    expect(tinyStatuses).toEqual([200, 200, 429]);
    const capped = await gw.seed('capped');
    expect((await fetch(`${gw.url}/api/c`, { headers: bearer(capped.key) })).status).toBe(200);
    expect((await fetch(`${gw.url}/api/c`, { headers: bearer(capped.key) })).status).toBe(402);
    expect((await fetch(`${gw.url}/api/m`)).status).toBe(401);
    expect((await fetch(`${gw.url}/api/m`, { headers: bearer(`tg_${'0'.repeat(38)}`) })).status).toBe(401);
    expect((await fetch(`${gw.url}/nowhere`, { headers: bearer(paid.key) })).status).toBe(404);
    expect((await fetch(`${gw.url}/api/big`, { method: 'POST', headers: bearer(paid.key), body: 'x'.repeat(2000) })).status).toBe(413);
    expect((await fetch(`${gw.url}/_tollgate/health`)).status).toBe(200);

    const after = await metrics.scrape();
    // 7 paid + 2 tiny + 1 capped answered 200 by the upstream.
    expect(count(after, { route: '/api/', status_class: '2xx' }) - count(before, { route: '/api/', status_class: '2xx' })).toBe(N + 3);
    // 429, 402, two 401s and the 413 were on /api/; the 404 matched no route.
    expect(count(after, { route: '/api/', status_class: '4xx' }) - count(before, { route: '/api/', status_class: '4xx' })).toBe(5);
    expect(count(after, { route: '(none)', status_class: '4xx' }) - count(before, { route: '(none)', status_class: '4xx' })).toBe(1);
    expect(count(after, { route: '/_tollgate/', status_class: '2xx' }) - count(before, { route: '/_tollgate/', status_class: '2xx' })).toBe(1);
    const durations = (e: typeof before) => e.value('tollgate_request_duration_seconds_count', { route: '/api/' }) ?? 0;
    expect(durations(after) - durations(before)).toBe(N + 3 + 5);
    const upstreamCount = (e: typeof before) => e.value('tollgate_upstream_duration_seconds_count', { route: '/api/' }) ?? 0;
    expect(upstreamCount(after) - upstreamCount(before)).toBe(N + 3);

    const refusals = (e: typeof before, reason: string, status: string) => e.value('tollgate_refusals_total', { reason, status }) ?? 0;
    for (const [reason, status, n] of [
      ['rate_limited', '429', 1], ['quota_exceeded', '402', 1], ['missing_key', '401', 1], ['malformed_key', '401', 1],
      ['not_found', '404', 1], ['payload_too_large', '413', 1],
    ] as const) {
      expect(refusals(after, reason, status) - refusals(before, reason, status), reason).toBe(n);
    }

    const charged = (e: typeof before) => e.value('tollgate_credits_charged_micros_total', { route: '/api/' }) ?? 0;
    expect(charged(after) - charged(before)).toBe(N * PRICE);
    expect(await gw.charges(paid.id)).toEqual(new Array(N).fill(PRICE));

    // Bounded labels: nothing names an account, a key or a request's own URL.
    const text = JSON.stringify(after.samples);
    for (const secret of [paid.id, paid.keyId, paid.key, tiny.id, '/api/x?i=', '/nowhere']) expect(text).not.toContain(secret);
  });

  it('serves the text format under the registry\'s content type, with the process metrics', async () => {
    expect(await metrics.contentType()).toBe('text/plain; version=0.0.4; charset=utf-8');
    const e = await metrics.scrape();
    expect(e.types.get('tollgate_requests_total')).toBe('counter');
    expect(e.types.get('tollgate_request_duration_seconds')).toBe('histogram');
    expect(e.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(e.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(e.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });

  it('usage commits: rows written, their duration, an empty queue once written; open leases and lease calls', async () => {
    const before = await metrics.scrape();
    const a = await gw.seed('paid', 10 * PRICE);
    for (let i = 0; i < 3; i++) expect((await fetch(`${gw.url}/api/u`, { headers: bearer(a.key) })).status).toBe(200);
    await gw.written();
    const after = await metrics.scrape();
    const rows = (e: typeof before) => e.value('tollgate_usage_rows_written_total') ?? 0;
    expect(rows(after) - rows(before)).toBe(3);
    expect(after.value('tollgate_usage_commit_duration_seconds_count')).toBeGreaterThan(before.value('tollgate_usage_commit_duration_seconds_count') ?? 0);
    expect(after.value('tollgate_usage_queued_rows')).toBe(0);
    expect(after.value('tollgate_leases_open')).toBeGreaterThanOrEqual(1);
    const takes = (e: typeof before) => e.value('tollgate_lease_calls_total', { call: 'take', outcome: 'ok' }) ?? 0;
    expect(takes(after) - takes(before)).toBeGreaterThanOrEqual(1);

    await gw.returnLeases();
    const returned = await metrics.scrape();
    expect(returned.value('tollgate_leases_open')).toBe(0);
    expect(returned.value('tollgate_lease_calls_total', { call: 'return', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
  });
});

// SQLite's write lock held by another process: PostgreSQL has none (pg-pause.test.ts pauses the server).
describe('metrics of a busy database file', () => {
  let up: Upstream;
  let gw: TestGateway;
  let metrics: Scraper;

  beforeAll(async () => {
    up = await startUpstream();
    gw = await startGateway({ file: { routes: [{ path: '/api/', upstream: up.url }], plans: PLANS }, env: { ADMIN_TOKEN: METRICS_TOKEN } });
    metrics = await metricsListener(gw.app);
  });
  afterAll(async () => {
    await metrics.close();
    await gw.close();
    await up.close();
  });

  it('a commit the database refuses (another process holds its write lock) counts as a busy retry, and its rows queue', async () => {
    const a = seedAccount(gw.admin, 'tiny');
    const busy = async () => (await metrics.scrape()).value('tollgate_storage_busy_total', { op: 'commit' }) ?? 0;
    const before = await busy();
    const lock = holdWriteLock(gw.dbPath, 400);
    await lock.held;
    expect((await fetch(`${gw.url}/api/b`, { headers: bearer(a.key) })).status).toBe(200);
    await until(async () => (await busy()) > before, 2000, 'a busy commit');
    expect((await metrics.scrape()).value('tollgate_usage_queued_rows')).toBeGreaterThanOrEqual(1);
    await lock.released;
    await until(async () => (await metrics.scrape()).value('tollgate_usage_queued_rows') === 0, 2000, 'the queued row written');
  });
});

describe.each(BACKENDS)('metrics of AI routes on $backend', ({ backend }) => {
  let fake: FakeProviders;
  let gw: BackendGateway;
  let metrics: Scraper;

  beforeAll(async () => {
    fake = await startFakeProviders();
    gw = await startAiGateway(fake, { ADMIN_TOKEN: METRICS_TOKEN }, backend);
    metrics = await metricsListener(gw.app);
  });
  afterAll(async () => {
    await metrics.close();
    await gw.close();
    await fake.close();
  });

  it('tokens by provider, model and type (OpenTelemetry\'s gen_ai_client_token_usage), and the credits they cost', async () => {
    const { account, key } = await customer(gw, 'pro', 10_000_000);
    fake.behave('test-gpt', { usage: { input: 1234, cached: 1000, cacheWrite5m: 0, cacheWrite1h: 0, output: 57 } });
    const { response } = await openaiClient(gw, key, { 'x-request-id': 'ticket-ai-1' }).chat.completions.create({
      model: 'test-gpt', messages: [{ role: 'user', content: 'hello' }], max_completion_tokens: 100,
    }).withResponse();
    const row = await usageRow(gw, response.headers.get('x-request-id')!);
    // The client's id is echoed to it; the provider gets only the gateway's.
    expect(response.headers.get('x-client-request-id')).toBe('ticket-ai-1');
    expect(fake.requests.at(-1)!.headers['x-client-request-id']).toBeUndefined();
    expect(fake.requests.at(-1)!.headers['x-request-id']).toBe(response.headers.get('x-request-id'));
    const e = await metrics.scrape();
    const tokens = (type: string) => e.value('gen_ai_client_token_usage_sum', { gen_ai_system: 'openai', gen_ai_request_model: 'test-gpt', gen_ai_token_type: type });
    expect(tokens('input')).toBe(1234);
    expect(tokens('cached_input')).toBe(1000);
    expect(tokens('output')).toBe(57);
    expect(tokens('cache_write')).toBeUndefined();
    expect(e.value('gen_ai_client_token_usage_count', { gen_ai_system: 'openai', gen_ai_request_model: 'test-gpt', gen_ai_token_type: 'output' })).toBe(1);
    expect(e.value('tollgate_credits_charged_micros_total', { route: '/v1/chat/completions' })).toBe(row.price_micros);
    expect(row.price_micros).toBeGreaterThan(0);
    expect(JSON.stringify(e.samples)).not.toContain(account.id);
  });

  it('an Anthropic call counts its cache writes', async () => {
    const { key } = await customer(gw, 'pro', 10_000_000);
    fake.behave('test-sonnet', { usage: { input: 100, cached: 20, cacheWrite5m: 30, cacheWrite1h: 0, output: 5 } });
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST', headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test-sonnet', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
    await res.text();
    const e = await metrics.scrape();
    const tokens = (type: string) => e.value('gen_ai_client_token_usage_sum', { gen_ai_system: 'anthropic', gen_ai_request_model: 'test-sonnet', gen_ai_token_type: type });
    expect(tokens('input')).toBe(150);
    expect(tokens('cached_input')).toBe(20);
    expect(tokens('cache_write')).toBe(30);
    expect(tokens('output')).toBe(5);
  });
});

describe.each(BACKENDS)('metrics of Stripe webhooks on $backend', ({ backend }) => {
  let stripe: FakeStripe;
  let up: Upstream;
  let gw: BackendGateway;
  let metrics: Scraper;

  beforeAll(async () => {
    stripe = await startFakeStripe();
    up = await startUpstream();
    gw = await startBackendGateway(backend, { env: { ...billingEnv(stripe), ADMIN_TOKEN: METRICS_TOKEN }, file: billingFile(up.url) });
    metrics = await metricsListener(gw.app);
  });
  afterAll(async () => {
    await metrics.close();
    await gw.close();
    await up.close();
    await stripe.close();
  });

  it('events by type and outcome: applied, duplicate, ignored, failed, and a bad signature', async () => {
    const a = await gw.seed('free');
    await gw.billing.linkCustomer(a.id, `cus_m_${a.id.slice(-8)}`);
    const paid = stripeEvent('checkout.session.completed', await paidCheckout(stripe, gw.url, a.key, { cents: 1000 }));
    expect((await postWebhook(gw.url, paid)).body.outcome).toBe('applied');
    expect((await postWebhook(gw.url, paid)).body.outcome).toBe('duplicate');
    expect((await postWebhook(gw.url, stripeEvent('plan.created', { id: 'plan_1', object: 'plan' }))).body.outcome).toBe('ignored');
    expect((await postWebhook(gw.url, paid, { secret: 'whsec_wrong' })).status).toBe(400);
    // One top-up away from the largest balance the schema allows: crediting it fails.
    const whale = await gw.seed('free', Number.MAX_SAFE_INTEGER - 10_000_000);
    await gw.billing.linkCustomer(whale.id, `cus_w_${whale.id.slice(-8)}`);
    expect((await postWebhook(gw.url, stripeEvent('checkout.session.completed', await paidCheckout(stripe, gw.url, whale.key, { cents: 2500 })))).status).toBe(500);
    const e = await metrics.scrape();
    const events = (type: string, outcome: string) => e.value('tollgate_webhook_events_total', { type, outcome });
    expect(events('checkout.session.completed', 'applied')).toBe(1);
    expect(events('checkout.session.completed', 'duplicate')).toBe(1);
    expect(events('plan.created', 'ignored')).toBe(1);
    expect(events('unknown', 'bad_signature')).toBe(1);
    expect(events('checkout.session.completed', 'failed')).toBe(1);
  });
});
