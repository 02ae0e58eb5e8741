// The Anthropic routes through the real `@anthropic-ai/sdk`: messages priced by input, cache
// reads, 5-minute and 1-hour cache writes and output; streams settled from message_start and the
// cumulative message_delta; errors after the 200; refusals in Anthropic's error shape. Every
// test runs on the SQLite file and on PostgreSQL (test/backend-gateway.ts).
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  anthropicClient, ceilMicros, customer, expectBalanced, expectNoProviderKey, expectNoTollgateKey,
  startAiGateway, startFakeProviders, usageRow, type FakeProviders, type FakeUsage,
} from './fake-providers.ts';
import { BACKENDS, type BackendGateway } from './backend-gateway.ts';
import { fetchText } from './helpers.ts';

type ApiError = InstanceType<typeof Anthropic.APIError>;
// test-sonnet, micro-dollars per million tokens.
const P = { input: 3_000_000, cacheRead: 300_000, write5m: 3_750_000, write1h: 6_000_000, output: 15_000_000 };
/** The dearest input rate is the 1-hour cache write. */
const reserveSonnet = (bodyBytes: number, maxTokens: number) => ceilMicros(bodyBytes * P.write1h + maxTokens * P.output);
// A long system prompt, as cached prompts are: the body has more bytes than the tokens reported.
const SYSTEM = 'You are a careful assistant. Answer in one short sentence. '.repeat(100);
const USAGE: FakeUsage = { input: 1200, cached: 3001, cacheWrite5m: 500, cacheWrite1h: 250, output: 77 };
// 1200×3 + 3001×0.3 + 500×3.75 + 250×6 + 77×15 = 3600 + 900.3 + 1875 + 1500 + 1155 = 9030.3 → 9031
const COST = ceilMicros(1200 * P.input + 3001 * P.cacheRead + 500 * P.write5m + 250 * P.write1h + 77 * P.output);

describe.each(BACKENDS)('Anthropic routes on $backend', ({ backend }) => {
  let fake: FakeProviders;
  let gw: BackendGateway;
  const issued: string[] = [];
  const grant = 50_000_000;

  beforeAll(async () => {
    fake = await startFakeProviders();
    gw = await startAiGateway(fake, {}, backend);
  });
  afterEach(() => fake.behave('test-sonnet', {}));
  afterAll(async () => {
    expectNoTollgateKey(fake, issued);
    await gw.close();
    await fake.close();
  });

  async function setup(plan = 'pro', micros = grant) {
    const c = await customer(gw, plan, micros);
    issued.push(c.key);
    return { ...c, client: anthropicClient(gw, c.key) };
  }
  const last = () => fake.requests[fake.requests.length - 1];
  const params = (extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}) => ({
    model: 'test-sonnet', max_tokens: 1024, system: SYSTEM, messages: [{ role: 'user' as const, content: 'Hello' }], ...extra,
  });

  it('a message costs input, cache reads, 5m and 1h cache writes and output exactly; input_tokens excludes the cache', async () => {
    expect(COST).toBe(9031);
    const { account, client } = await setup();
    fake.behave('test-sonnet', { usage: USAGE });
    const { data, response } = await client.messages.create(params()).withResponse();
    expect(data.content).toEqual([{ type: 'text', text: 'word0 word1 word2 ' }]);
    expect(data.usage).toMatchObject({ input_tokens: 1200, cache_read_input_tokens: 3001, output_tokens: 77 });
    expect(response.headers.get('x-tollgate-cost-micros')).toBe(String(COST));

    const up = last();
    expect(up.headers['x-api-key']).toBe(fake.anthropicKey);
    expect(up.headers.authorization).toBeUndefined();
    expect(up.headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/); // the SDK's own
    const requestId = response.headers.get('x-request-id')!;
    const reserved = reserveSonnet(Buffer.byteLength(up.raw), 1024);
    expect((await usageRow(gw, requestId)).price_micros).toBe(COST);
    expect(await expectBalanced(gw, account.id)).toBe(grant - COST);
    expect(await usageRow(gw, requestId)).toMatchObject({
      route: '/v1/messages', model: 'test-sonnet', input_tokens: 1200 + 3001 + 750, cached_tokens: 3001,
      cache_write_tokens: 750, output_tokens: 77, price_micros: COST, estimated: 0, billable: 1,
    });
    expectNoProviderKey(fake, response.headers, data);
  });

  it('a stream is billed from message_start and the cumulative message_delta (assigned, not added to the 1 of message_start)', async () => {
    const { account, client } = await setup();
    fake.behave('test-sonnet', { usage: USAGE, deltas: 5 });
    const { data: stream, response } = await client.messages.create({ ...params(), stream: true }).withResponse();
    const types: string[] = [];
    let text = '';
    let finalOutput = 0;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      if (ev.type === 'message_delta') finalOutput = ev.usage.output_tokens;
    }
    expect(types).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta',
      'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(text).toBe('word0 word1 word2 word3 word4 ');
    expect(finalOutput).toBe(77);
    expect(response.headers.get('x-tollgate-cost-micros')).toBeNull();

    const requestId = response.headers.get('x-request-id')!;
    const row = await usageRow(gw, requestId);
    expect(row).toMatchObject({ input_tokens: 4951, cached_tokens: 3001, cache_write_tokens: 750, output_tokens: 77, estimated: 0 });
    expect(row.price_micros).toBe(COST); // 78 output tokens would be 9046; counting input twice far more
    const reserved = reserveSonnet(Buffer.byteLength(last().raw), 1024);
    expect((await usageRow(gw, requestId)).price_micros).toBe(COST);
    expect(await expectBalanced(gw, account.id)).toBe(grant - COST);
  });

  it('the SDK\'s stream helper ends with the same usage the gateway billed', async () => {
    const { account, client } = await setup();
    fake.behave('test-sonnet', { usage: { input: 40, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 9 } });
    const message = await client.messages.stream(params({ max_tokens: 50 })).finalMessage();
    expect(message.usage).toMatchObject({ input_tokens: 40, output_tokens: 9 });
    expect(await expectBalanced(gw, account.id)).toBe(grant - ceilMicros(40 * P.input + 9 * P.output)); // 120 + 135
  });

  it('count_tokens passes through for free, with anthropic-version, even for a model with no price', async () => {
    const { account, client, key } = await setup('pro', 0);
    fake.behave('claude-unpriced', { usage: { input: 14, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 0 } });
    const { data, response } = await client.messages.countTokens({ model: 'claude-unpriced', messages: [{ role: 'user', content: 'Hello' }] }).withResponse();
    expect(data).toEqual({ input_tokens: 14 });
    expect(last()).toMatchObject({ path: '/v1/messages/count_tokens', key: fake.anthropicKey });
    expect(last().headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(await gw.ledger(account.id)).toEqual([]);
    expectNoProviderKey(fake, response.headers, data);

    // The version header and beta flags pass through as the client sent them.
    const res = await fetchText(`${gw.url}/v1/messages/count_tokens`, {
      method: 'POST', headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'anthropic-beta': 'token-counting-2024-11-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-unpriced', messages: [{ role: 'user', content: 'Hello' }] }),
    });
    expect(res.status).toBe(200);
    expect(last().headers).toMatchObject({ 'anthropic-version': '2023-06-01', 'anthropic-beta': 'token-counting-2024-11-01', 'x-api-key': fake.anthropicKey });
    expect(last().headers['x-api-key']).not.toBe(key);
  });

  it('an error event after the 200 fails the SDK\'s stream and is settled from the usage seen so far, as an estimate', async () => {
    const { account, client } = await setup();
    fake.behave('test-sonnet', { usage: USAGE, deltas: 6, errorAfter: 2 });
    const { data: stream, response } = await client.messages.create({ ...params(), stream: true }).withResponse();
    let text = '';
    const err = await (async () => {
      for await (const ev of stream) if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as ApiError).type).toBe('overloaded_error');
    expect(text).toBe('word0 word1 ');

    const requestId = response.headers.get('x-request-id')!;
    const row = await usageRow(gw, requestId);
    const reserved = reserveSonnet(Buffer.byteLength(last().raw), 1024);
    // message_start's input and cache counts were seen; the output is at least its 1.
    expect(row).toMatchObject({ estimated: 1, input_tokens: 4951, cached_tokens: 3001, cache_write_tokens: 750 });
    expect(row.output_tokens).toBeGreaterThanOrEqual(1);
    const seen = ceilMicros(1200 * P.input + 3001 * P.cacheRead + 500 * P.write5m + 250 * P.write1h + 1 * P.output);
    expect(row.price_micros).toBeGreaterThanOrEqual(seen);
    expect(row.price_micros).toBeLessThanOrEqual(reserved);
    expect((await usageRow(gw, requestId)).price_micros).toBe(row.price_micros);
    expect(await expectBalanced(gw, account.id)).toBe(grant - row.price_micros);
  });

  it('a client that aborts mid-stream is still settled: billed from message_start, within the reservation, estimated', async () => {
    const { account, client } = await setup();
    fake.behave('test-sonnet', { usage: USAGE, deltas: 10, stallAfter: 3 });
    const ac = new AbortController();
    const { data: stream, response } = await client.messages.create({ ...params({ max_tokens: 300 }), stream: true }, { signal: ac.signal }).withResponse();
    let deltas = 0;
    for await (const ev of stream) if (ev.type === 'content_block_delta' && ++deltas === 3) ac.abort();
    expect(deltas).toBe(3);
    const requestId = response.headers.get('x-request-id')!;
    const row = await usageRow(gw, requestId);
    const reserved = reserveSonnet(Buffer.byteLength(last().raw), 300);
    expect(row).toMatchObject({ estimated: 1, input_tokens: 4951, cached_tokens: 3001 });
    expect(row.price_micros).toBeGreaterThan(0);
    expect(row.price_micros).toBeLessThanOrEqual(reserved);
    expect(await expectBalanced(gw, account.id)).toBe(grant - row.price_micros);
  });

  it('a stream that stalls past the upstream timeout is settled as an estimate', async () => {
    const fast = await startAiGateway(fake, { AI_UPSTREAM_TIMEOUT_MS: '150' }, backend);
    try {
      const c = await customer(fast, 'pro', grant);
      issued.push(c.key);
      fake.behave('test-sonnet', { usage: USAGE, deltas: 10, stallAfter: 2 });
      const { data: stream, response } = await anthropicClient(fast, c.key).messages.create({ ...params({ max_tokens: 200 }), stream: true }).withResponse();
      const err = await (async () => {
        for await (const _ of stream) { /* drain */ }
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      const row = await usageRow(fast, response.headers.get('x-request-id')!);
      const reserved = reserveSonnet(Buffer.byteLength(last().raw), 200);
      expect(row).toMatchObject({ estimated: 1, input_tokens: 4951 });
      expect(row.price_micros).toBeGreaterThan(0);
      expect(row.price_micros).toBeLessThanOrEqual(reserved);
      expect(await expectBalanced(fast, c.account.id)).toBe(grant - row.price_micros);
    } finally {
      await fast.close();
    }
  });

  it('gateway refusals use Anthropic\'s error shape: 401, 402, 403, 400, 429 raise the SDK\'s classes', async () => {
    const before = fake.requests.length;
    const cases: [Anthropic, Partial<Anthropic.MessageCreateParamsNonStreaming>, new (...args: never[]) => ApiError, number, string][] = [];
    cases.push([anthropicClient(gw, 'tg_notARealKey'), {}, Anthropic.AuthenticationError, 401, 'authentication_error']);
    const poor = await setup('pro', 1000);
    cases.push([poor.client, {}, Anthropic.PaymentRequiredError, 402, 'billing_error']);
    cases.push([(await setup('gptOnly')).client, {}, Anthropic.PermissionDeniedError, 403, 'permission_error']);
    cases.push([(await setup()).client, { model: 'claude-nonexistent' }, Anthropic.BadRequestError, 400, 'invalid_request_error']);
    for (const [client, extra, cls, status, type] of cases) {
      const err = await client.messages.create(params(extra)).catch((e: unknown) => e);
      expect(err, `${status}`).toBeInstanceOf(cls);
      expect((err as ApiError).status).toBe(status);
      expect((err as ApiError).type).toBe(type);
      expect((err as ApiError).error).toMatchObject({ type: 'error', error: { type, message: expect.any(String) } });
    }
    expect(fake.requests.length).toBe(before); // none of them went upstream
    expect(await expectBalanced(gw, poor.account.id)).toBe(1000);

    const slow = await setup('limited');
    fake.behave('test-sonnet', { usage: { input: 10, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 1 } });
    for (let i = 0; i < 2; i++) await slow.client.messages.create(params({ max_tokens: 5 }));
    const e429 = await slow.client.messages.create(params({ max_tokens: 5 })).catch((e: unknown) => e);
    expect(e429).toBeInstanceOf(Anthropic.RateLimitError);
    expect((e429 as ApiError).type).toBe('rate_limit_error');

    // The body as bytes: {"type":"error","error":{"type","message"}}.
    const res = await fetchText(`${gw.url}/v1/messages`, {
      method: 'POST', headers: { 'x-api-key': poor.key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify(params()),
    });
    expect(res.status).toBe(402);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = JSON.parse(res.body) as { type: string; error: Record<string, unknown> };
    expect(body.type).toBe('error');
    expect(Object.keys(body.error).sort()).toEqual(['message', 'type']);
    expectNoProviderKey(fake, res.body, res.headers);
  });

  it('provider errors (429, 529 overloaded) reach the SDK unchanged but for the operator\'s rate-limit headers, and are not billed', async () => {
    const { account, client } = await setup();
    for (const [status, cls, body] of [
      [429, Anthropic.RateLimitError, { type: 'error', error: { type: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit.' }, request_id: 'req_011CUpstream' }],
      [529, Anthropic.OverloadedError, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' }, request_id: 'req_011CUpstream2' }],
    ] as const) {
      fake.behave('test-sonnet', { status, errorBody: body, headers: {
        'retry-after': '7', 'anthropic-ratelimit-tokens-remaining': '0', 'anthropic-ratelimit-requests-limit': '4000',
        'anthropic-priority-input-tokens-limit': '10000', 'request-id': 'req_011CUpstream',
      } });
      const err = await client.messages.create(params()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(cls);
      expect((err as ApiError).status).toBe(status);
      expect((err as ApiError).error).toEqual(body);
      const headers = (err as ApiError).headers!;
      expect(headers.get('retry-after')).toBe('7'); // the client needs it
      expect(headers.get('request-id')).toBe('req_011CUpstream');
      // The operator's limits and what is left of them are the operator's.
      for (const name of ['anthropic-ratelimit-tokens-remaining', 'anthropic-ratelimit-requests-limit', 'anthropic-priority-input-tokens-limit']) {
        expect(headers.get(name), name).toBeNull();
      }
      const requestId = headers.get('x-request-id')!;
      expect(await usageRow(gw, requestId)).toMatchObject({ status, price_micros: 0 });
    }
    expect(await expectBalanced(gw, account.id)).toBe(grant);
  });

  it('a gateway key the provider refuses: its own 401 passes through unbilled, the key never shown', async () => {
    // The gateway holds a key the provider no longer accepts (rotated): the client sees the provider's answer.
    const stale = await startAiGateway(fake, { ANTHROPIC_API_KEY: 'sk-ant-api03-REVOKED' }, backend);
    try {
      const c = await customer(stale, 'pro', grant);
      issued.push(c.key);
      const res = await fetchText(`${stale.url}/v1/messages`, {
        method: 'POST', headers: { 'x-api-key': c.key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify(params()),
      });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toEqual({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
      expect(res.body).not.toContain('REVOKED');
      expect(await expectBalanced(stale, c.account.id)).toBe(grant);
    } finally {
      await stale.close();
    }
  });

  it('web searches reported in server_tool_use are billed at $10 per 1000, streamed or not; max_uses bounds the reservation', async () => {
    const { account, client } = await setup();
    fake.behave('test-sonnet', { webSearches: 5, usage: { input: 2000, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 100 } });
    const tools = [{ type: 'web_search_20250305' as const, name: 'web_search' as const, max_uses: 6 }];
    const cost = ceilMicros(2000 * P.input + 100 * P.output) + 5 * 10_000; // 7500 + 50 000
    const { data, response } = await client.messages.create(params({ tools, max_tokens: 500 })).withResponse();
    expect(data.usage.server_tool_use?.web_search_requests).toBe(5);
    expect(response.headers.get('x-tollgate-cost-micros')).toBe(String(cost));
    const id = response.headers.get('x-request-id')!;
    const reserved = reserveSonnet(Buffer.byteLength(last().raw), 500) + 6 * 10_000;
    expect((await usageRow(gw, id)).price_micros).toBe(cost);

    const message = await client.messages.stream(params({ tools, max_tokens: 500 })).finalMessage();
    expect(message.usage.server_tool_use?.web_search_requests).toBe(5);
    expect(await expectBalanced(gw, account.id)).toBe(grant - 2 * cost);

    // Code execution bills container hours a request does not show: refused, nothing upstream.
    const before = fake.requests.length;
    const err = await client.messages.create(params({ tools: [{ type: 'code_execution_20250825', name: 'code_execution' }] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect((err as ApiError).message).toContain('code_execution_20250825');
    expect(fake.requests.length).toBe(before);
  });

  it('with both providers on, the SDK\'s models.list() reaches Anthropic (anthropic-version picks it) and lists only priced models', async () => {
    const { key, client } = await setup('pro', 0);
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    // claude-mythos-preview has no price here.
    expect(ids).toEqual(['claude-sonnet-4-5-20250929', 'test-sonnet']);
    expect(last()).toMatchObject({ provider: 'anthropic', method: 'GET', key: fake.anthropicKey });
    expect(last().path).toMatch(/^\/v1\/models/);
    expect(last().headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    // The OpenAI SDK's request on the same path still reaches OpenAI.
    const res = await fetchText(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(last()).toMatchObject({ provider: 'openai', key: fake.openaiKey });
    const sonnetOnly = [];
    for await (const m of (await setup('sonnetOnly', 0)).client.models.list()) sonnetOnly.push(m.id);
    expect(sonnetOnly).toEqual(['test-sonnet']);
  });
});
