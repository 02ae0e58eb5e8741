// Prepaid credits on AI routes: a concurrent burst never overdraws, the customer sees its own
// spend at /_tollgate/usage, BYOK costs nothing but is still rate-limited, and neither key crosses
// to the other side. Every test runs on the SQLite file and on PostgreSQL (test/backend-gateway.ts).
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  anthropicClient, ceilMicros, customer, expectBalanced, expectNoProviderKey, expectNoTollgateKey, openaiClient,
  startAiGateway, startFakeProviders, usageRow, waitFor, type FakeProviders,
} from './fake-providers.ts';
import { BACKENDS, type BackendGateway } from './backend-gateway.ts';
import { fetchText } from './helpers.ts';

type ApiError = InstanceType<typeof OpenAI.APIError>;
const PROMPT = 'Summarise the attached notes in one line, please. '.repeat(8);

describe.each(BACKENDS)('credits on AI routes on $backend', ({ backend }) => {
  let fake: FakeProviders;
  let gw: BackendGateway;
  const issued: string[] = [];
  const own = 'sk-proj-CUSTOMERsOwnKey987654321';

  beforeAll(async () => {
    fake = await startFakeProviders();
    fake.acceptKey(own);
    gw = await startAiGateway(fake, {}, backend);
  });
  afterEach(() => {
    fake.behave('test-gpt', {});
    fake.behave('test-sonnet', {});
  });
  afterAll(async () => {
    expectNoTollgateKey(fake, issued);
    await gw.close();
    await fake.close();
  });

  async function setup(plan: string, micros: number) {
    const c = await customer(gw, plan, micros);
    issued.push(c.key);
    return c;
  }

  it('a 50-way burst against a balance that pays for 7 reservations: 7 succeed, 43 get 402, nothing overdraws', async () => {
    const params = { model: 'test-gpt', messages: [{ role: 'user' as const, content: PROMPT }], max_tokens: 100 };
    // Sent with the tier pinned to the standard one.
    const bodyBytes = Buffer.byteLength(JSON.stringify({ ...params, service_tier: 'default' }));
    const reserved = ceilMicros(bodyBytes * 2_500_000 + 100 * 10_000_000);
    // Each success really costs 50 × 2.5 + 20 × 10 = 325.
    const cost = ceilMicros(50 * 2_500_000 + 20 * 10_000_000);
    expect(cost).toBe(325);
    const grant = 7 * reserved + Math.floor(reserved / 2);
    const { account, key } = await setup('pro', grant);
    const client = openaiClient(gw, key);
    // The provider holds every request it gets until all 50 have been answered or held, so all
    // reservations are outstanding at once.
    fake.behave('test-gpt', { usage: { input: 50, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 20 }, hold: true });
    const before = fake.requests.length;
    let refused = 0;
    const calls = Array.from({ length: 50 }, () => client.chat.completions.create(params).withResponse().catch((e: unknown) => {
      refused++;
      return e;
    }));
    await waitFor(() => (fake.held() + refused === 50 ? true : undefined), 5000);
    expect(fake.held()).toBe(7);
    expect(refused).toBe(43);
    expect(await expectBalanced(gw, account.id)).toBe(grant - 7 * reserved); // all 7 reservations held at once
    fake.release();
    const results = await Promise.all(calls);

    const ok = results.filter((r) => !(r instanceof Error)) as { data: OpenAI.Chat.ChatCompletion; response: Response }[];
    const errors = results.filter((r) => r instanceof Error);
    expect(ok).toHaveLength(7);
    expect(errors).toHaveLength(43);
    for (const e of errors) {
      expect(e).toBeInstanceOf(OpenAI.APIError);
      expect((e as ApiError).status).toBe(402);
    }
    expect(fake.requests.length - before).toBe(7); // a refused request never went upstream
    for (const r of fake.requests.slice(before)) expect(Buffer.byteLength(r.raw)).toBe(bodyBytes);
    for (const { response } of ok) expect(response.headers.get('x-tollgate-cost-micros')).toBe('325');

    // Balance = grant − Σ settled costs, equal to the ledger, never negative at any row.
    expect(await expectBalanced(gw, account.id)).toBe(grant - 7 * cost);
    // One lease paid for them all (on SQLite the whole balance); the charges are on the usage rows.
    expect((await gw.ledger(account.id)).map((e) => e.kind)).toEqual(['grant', 'lease']);
    for (const { response } of ok) {
      const id = response.headers.get('x-request-id')!;
      expect((await usageRow(gw, id)).price_micros).toBe(cost);
    }
    expect(await gw.charges(account.id)).toEqual(ok.map(() => cost));
  });

  it('GET /_tollgate/usage shows the customer its balance, plan, quota and last requests with their costs', async () => {
    const grant = 5_000_000;
    const { account, key } = await setup('pro', grant);
    fake.behave('test-gpt', { usage: { input: 100, cached: 40, cacheWrite5m: 0, cacheWrite1h: 0, output: 10 } });
    fake.behave('test-sonnet', { usage: { input: 30, cached: 0, cacheWrite5m: 20, cacheWrite1h: 0, output: 5 } });
    const first = await openaiClient(gw, key).chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: PROMPT }], max_tokens: 50 }).withResponse();
    const second = await anthropicClient(gw, key).messages.create({ model: 'test-sonnet', max_tokens: 50, messages: [{ role: 'user', content: PROMPT }] }).withResponse();
    // 60 × 2.5 + 40 × 1.25 + 10 × 10 = 150 + 50 + 100; 30 × 3 + 20 × 3.75 + 5 × 15 = 90 + 75 + 75
    const costs = [300, 240];

    const res = await fetchText(`${gw.url}/_tollgate/usage`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body) as {
      accountId: string; plan: string; balanceMicros: number; balance: string;
      quota: { period: string; used: number; limit: number | null };
      recent: { requestId: string; model: string; path: string; status: number; priceMicros: number; cost: string; inputTokens: number; outputTokens: number; estimated: boolean; time: string }[];
    };
    expect(body).toMatchObject({ accountId: account.id, plan: 'pro', balanceMicros: grant - 540 });
    expect(Number(body.balance)).toBeCloseTo((grant - 540) / 1e6, 6);
    expect(body.quota).toMatchObject({ period: expect.stringMatching(/^\d{4}-\d{2}$/), used: expect.any(Number), limit: null });
    expect(body.recent.map((r) => r.requestId)).toEqual([second.response.headers.get('x-request-id'), first.response.headers.get('x-request-id')]);
    expect(body.recent[0]).toMatchObject({ model: 'test-sonnet', path: '/v1/messages', status: 200, priceMicros: costs[1], inputTokens: 50, outputTokens: 5, estimated: false });
    expect(body.recent[1]).toMatchObject({ model: 'test-gpt', path: '/v1/chat/completions', priceMicros: costs[0], inputTokens: 100, outputTokens: 10, estimated: false });
    expect(Number(body.recent[1].cost)).toBeCloseTo(0.0003, 7);
    expect(Date.parse(body.recent[0].time)).not.toBeNaN();
    expectNoProviderKey(fake, res.body, res.headers);

    // Someone else's key sees its own account only; no key is refused.
    const other = await setup('pro', 0);
    const theirs = JSON.parse((await fetchText(`${gw.url}/_tollgate/usage`, { headers: { 'x-api-key': other.key } })).body) as typeof body;
    expect(theirs).toMatchObject({ accountId: other.account.id, balanceMicros: 0, recent: [] });
    expect((await fetchText(`${gw.url}/_tollgate/usage`)).status).toBe(401);
  });

  it('BYOK: the client\'s own provider key goes upstream, nothing is reserved or charged, the row has the tokens', async () => {
    const { account, key } = await setup('byok', 0); // no balance at all
    fake.behave('test-gpt', { usage: { input: 70, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 12 } });
    const client = openaiClient(gw, key, { 'X-Provider-Key': own });
    const { data, response } = await client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: PROMPT }], max_tokens: 10_000 }).withResponse();
    expect(data.usage?.completion_tokens).toBe(12);
    const up = fake.requests[fake.requests.length - 1];
    expect(up.headers.authorization).toBe(`Bearer ${own}`);
    expect(up.key).toBe(own);
    expect(up.headers['x-provider-key']).toBeUndefined();
    expect(response.headers.get('x-tollgate-cost-micros')).toBe('0');
    expect(await gw.ledger(account.id)).toEqual([]);
    expect(await usageRow(gw, response.headers.get('x-request-id')!)).toMatchObject({
      model: 'test-gpt', input_tokens: 70, output_tokens: 12, price_micros: 0, estimated: 0, status: 200,
    });

    // Anthropic too: the client's key in x-api-key upstream.
    const anth = anthropicClient(gw, key, { 'X-Provider-Key': own });
    const stream = await anth.messages.create({ model: 'test-sonnet', max_tokens: 64_000, stream: true, messages: [{ role: 'user', content: 'hi' }] });
    for await (const _ of stream) { /* drain */ }
    expect(fake.requests[fake.requests.length - 1].headers['x-api-key']).toBe(own);
    expect(await gw.ledger(account.id)).toEqual([]);

    // Still rate-limited: the plan allows 3 a minute.
    await client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }] });
    const err = await client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const errA = await anth.messages.create({ model: 'test-sonnet', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(errA).toBeInstanceOf(Anthropic.RateLimitError);
  });

  it('BYOK plan without X-Provider-Key pays with the gateway\'s key; a non-BYOK plan\'s X-Provider-Key is ignored', async () => {
    const byok = await setup('byok', 0);
    const before = fake.requests.length;
    const err = await openaiClient(gw, byok.key).chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 10 }).catch((e: unknown) => e);
    expect((err as ApiError).status).toBe(402); // the gateway's key costs credits it does not have
    expect(fake.requests.length).toBe(before);

    const plain = await setup('pro', 1_000_000);
    const { response } = await openaiClient(gw, plain.key, { 'X-Provider-Key': own }).chat.completions.create({
      model: 'test-gpt', messages: [{ role: 'user', content: PROMPT }], max_tokens: 10,
    }).withResponse();
    const up = fake.requests[fake.requests.length - 1];
    expect(up.headers.authorization).toBe(`Bearer ${fake.openaiKey}`);
    expect(up.headers['x-provider-key']).toBeUndefined();
    expect(Number(response.headers.get('x-tollgate-cost-micros'))).toBeGreaterThan(0);
    expect(await expectBalanced(gw, plain.account.id)).toBeLessThan(1_000_000);
  });

  it('no provider key reaches a client and no Tollgate key reaches the provider, on any AI route', async () => {
    const { key } = await setup('pro', 10_000_000);
    const before = fake.requests.length;
    const h = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const a = { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
    const calls: [string, RequestInit][] = [
      ['/v1/chat/completions', { method: 'POST', headers: h, body: JSON.stringify({ model: 'test-gpt', messages: [{ role: 'user', content: PROMPT }], max_tokens: 5 }) }],
      ['/v1/chat/completions', { method: 'POST', headers: h, body: JSON.stringify({ model: 'test-gpt', stream: true, messages: [{ role: 'user', content: PROMPT }], max_tokens: 5 }) }],
      ['/v1/responses', { method: 'POST', headers: h, body: JSON.stringify({ model: 'test-gpt', input: PROMPT, stream: true }) }],
      ['/v1/embeddings', { method: 'POST', headers: h, body: JSON.stringify({ model: 'test-embed', input: PROMPT }) }],
      ['/v1/models', { headers: h }],
      ['/v1/messages', { method: 'POST', headers: a, body: JSON.stringify({ model: 'test-sonnet', max_tokens: 5, messages: [{ role: 'user', content: PROMPT }] }) }],
      ['/v1/messages', { method: 'POST', headers: a, body: JSON.stringify({ model: 'test-sonnet', max_tokens: 5, stream: true, messages: [{ role: 'user', content: PROMPT }] }) }],
      ['/v1/messages/count_tokens', { method: 'POST', headers: a, body: JSON.stringify({ model: 'test-sonnet', messages: [{ role: 'user', content: 'hi' }] }) }],
      ['/v1/messages', { method: 'POST', headers: a, body: JSON.stringify({ model: 'nope', max_tokens: 5, messages: [] }) }],
      ['/v1/chat/completions', { method: 'POST', headers: h, body: '{not json' }],
    ];
    for (const [path, init] of calls) {
      const res = await fetchText(gw.url + path, init);
      expect(res.status, path).toBeLessThan(500);
      expectNoProviderKey(fake, res.body, res.headers);
      expect(res.body).not.toContain(key);
    }
    expect(fake.requests.length - before).toBe(8);
    for (const r of fake.requests.slice(before)) {
      expect(JSON.stringify(r)).not.toContain(key);
      expect(r.key).toBe(r.provider === 'openai' ? fake.openaiKey : fake.anthropicKey);
    }
  });

  it('a request refused before forwarding (bad JSON, no model, bad max_tokens) costs nothing and goes nowhere', async () => {
    const { account, key } = await setup('pro', 1_000_000);
    const before = fake.requests.length;
    const post = (body: string) => fetchText(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
    for (const body of ['{not json', '[]', JSON.stringify({ messages: [] }), JSON.stringify({ model: 'test-gpt', max_tokens: -5 })]) {
      const res = await post(body);
      expect(res.status, body).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ error: { type: 'invalid_request_error', message: expect.any(String) } });
    }
    expect(fake.requests.length).toBe(before);
    expect(await expectBalanced(gw, account.id)).toBe(1_000_000);
    expect(await gw.ledger(account.id)).toHaveLength(1);
  });
});
