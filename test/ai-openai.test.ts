// The OpenAI routes through the real `openai` SDK: chat completions, responses and embeddings
// priced by the usage the provider reports, models listed for free, refusals in OpenAI's error
// shape so the SDK raises the right class, and provider errors passed through unbilled.
// Every test runs on the SQLite file and on PostgreSQL (test/backend-gateway.ts).
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { tokenizerReady } from '../src/meters/text-tokens.ts';
import {
  ceilMicros, customer, expectBalanced, expectNoProviderKey, expectNoTollgateKey, openaiClient,
  startAiGateway, startFakeProviders, usageRow, waitFor, type FakeProviders,
} from './fake-providers.ts';
import { BACKENDS, type BackendGateway } from './backend-gateway.ts';
import { fetchText } from './helpers.ts';

type ApiError = InstanceType<typeof OpenAI.APIError>;
// test-gpt: input 2.5, cached input 1.25, output 10 micro-dollars per token.
const GPT = { input: 2_500_000, cached: 1_250_000, output: 10_000_000 };
// Realistic prompts: text reports fewer input tokens than the body has bytes, so each cost below
// stays inside its reservation.
const PROMPT = 'Please read the following paragraph carefully and answer briefly. '.repeat(40);
/** Every body byte at the dearest input rate (plain input here) plus max tokens at the output rate. */
const reserveGpt = (bodyBytes: number, maxTokens: number) => ceilMicros(bodyBytes * GPT.input + maxTokens * GPT.output);

describe.each(BACKENDS)('OpenAI routes on $backend', ({ backend }) => {
  let fake: FakeProviders;
  let gw: BackendGateway;
  const issued: string[] = [];
  const grant = 10_000_000;

  beforeAll(async () => {
    fake = await startFakeProviders();
    gw = await startAiGateway(fake, {}, backend);
  });
  afterEach(() => {
    for (const m of ['test-gpt', 'test-embed']) fake.behave(m, {});
  });
  afterAll(async () => {
    expectNoTollgateKey(fake, issued);
    await gw.close();
    await fake.close();
  });

  async function setup(plan = 'pro', micros = grant) {
    const c = await customer(gw, plan, micros);
    issued.push(c.key);
    return { ...c, client: openaiClient(gw, c.key) };
  }
  const last = () => fake.requests[fake.requests.length - 1];

  it('a chat completion costs its usage exactly (cached tokens are part of prompt_tokens), with a reserve and a settle row', async () => {
    const { account, client } = await setup();
    fake.behave('test-gpt', { usage: { input: 1234, cached: 1000, cacheWrite5m: 0, cacheWrite1h: 0, output: 57 } });
    const { data, response } = await client.chat.completions.create({
      model: 'test-gpt', messages: [{ role: 'user', content: PROMPT }], max_completion_tokens: 100,
    }).withResponse();
    expect(data.choices[0].message.content).toBe('word0 word1 word2 ');
    expect(data.usage).toMatchObject({ prompt_tokens: 1234, completion_tokens: 57 });

    // 234 uncached × 2.5 + 1000 cached × 1.25 + 57 × 10 = 585 + 1250 + 570
    const cost = ceilMicros(234 * GPT.input + 1000 * GPT.cached + 57 * GPT.output);
    expect(cost).toBe(2405);
    expect(response.headers.get('x-tollgate-cost-micros')).toBe('2405');

    const up = last();
    expect(up.headers.authorization).toBe(`Bearer ${fake.openaiKey}`);
    expect(up.key).toBe(fake.openaiKey);
    expect(up.body).not.toHaveProperty('stream_options'); // a non-streaming body goes as sent
    const reserved = reserveGpt(Buffer.byteLength(up.raw), 100);
    const requestId = response.headers.get('x-request-id')!;
    expect(up.headers['x-request-id']).toBe(requestId);
    expect((await usageRow(gw, requestId)).price_micros).toBe(cost);
    expect(await expectBalanced(gw, account.id)).toBe(grant - cost);

    const row = await usageRow(gw, requestId);
    expect(row).toMatchObject({
      model: 'test-gpt', input_tokens: 1234, cached_tokens: 1000, cache_write_tokens: 0, output_tokens: 57,
      price_micros: 2405, estimated: 0, billable: 1, status: 200, route: '/v1/chat/completions',
    });
    expectNoProviderKey(fake, response.headers, data);
  });

  it('a dated snapshot is priced as itself, never as its alias: unlisted, it is refused; gpt-4o-2024-05-13 costs its own price', async () => {
    const { account, client } = await setup();
    const before = fake.requests.length;
    const err = await client.chat.completions.create({ model: 'test-gpt-2025-04-14', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(fake.requests.length).toBe(before);

    // The shipped table: the first gpt-4o snapshot costs $5 / $15, twice gpt-4o's input.
    fake.behave('gpt-4o-2024-05-13', { usage: { input: 3, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 1 } });
    const { response } = await client.chat.completions.create({
      model: 'gpt-4o-2024-05-13', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5,
    }).withResponse();
    // 3 × 5 + 1 × 15 = 30 (gpt-4o's price would make it 17.5)
    expect(response.headers.get('x-tollgate-cost-micros')).toBe('30');
    expect(await expectBalanced(gw, account.id)).toBe(grant - 30);
  });

  it('a stream where the client did not ask for usage: the gateway asks, bills it, and hides the usage chunk', async () => {
    const { account, client } = await setup();
    fake.behave('test-gpt', { usage: { input: 500, cached: 200, cacheWrite5m: 0, cacheWrite1h: 0, output: 40 }, deltas: 4 });
    const { data: stream, response } = await client.chat.completions.create({
      model: 'test-gpt', stream: true, messages: [{ role: 'user', content: PROMPT }], max_tokens: 64,
    }).withResponse();
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('word0 word1 word2 word3 ');
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
    expect(chunks.some((c) => c.usage)).toBe(false);
    expect(response.headers.get('x-tollgate-cost-micros')).toBeNull(); // not known when the headers left

    const up = last();
    expect(up.body?.stream_options).toEqual({ include_usage: true });
    const cost = ceilMicros(300 * GPT.input + 200 * GPT.cached + 40 * GPT.output); // 750 + 250 + 400
    expect(cost).toBe(1400);
    const requestId = response.headers.get('x-request-id')!;
    const row = await usageRow(gw, requestId);
    expect(row).toMatchObject({ input_tokens: 500, cached_tokens: 200, output_tokens: 40, price_micros: 1400, estimated: 0 });
    const reserved = reserveGpt(Buffer.byteLength(up.raw), 64);
    expect((await usageRow(gw, requestId)).price_micros).toBe(cost);
    expect(await expectBalanced(gw, account.id)).toBe(grant - cost);
  });

  it('fields the gateway adds go in before the closing brace, the client\'s bytes untouched; a changed field means the body is serialized again', async () => {
    const { key } = await setup();
    const send = async (body: string) => {
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
      await res.text();
      expect(res.status).toBe(200);
      return last().raw;
    };
    const asSent = '{ "stream" : true,\n  "messages": [{"role":"user","content":"x \\u00e9"}], "model":"test-gpt", "max_tokens": 8 }\n\t';
    expect(await send(asSent)).toBe(`${asSent.slice(0, asSent.lastIndexOf('}'))},"service_tier":"default","stream_options":{"include_usage":true}}`);
    const changed = await send('{"model":"test-gpt","stream":true,"stream_options":{"include_usage":false,"x":1},"max_tokens":8,"messages":[{"role":"user","content":"x"}]}');
    expect(JSON.parse(changed)).toEqual({
      model: 'test-gpt', stream: true, stream_options: { include_usage: true, x: 1 }, max_tokens: 8, messages: [{ role: 'user', content: 'x' }], service_tier: 'default',
    });
  });

  it('a stream where the client asked for usage (stream_options.include_usage) gets the usage chunk, body unchanged', async () => {
    const { account, client } = await setup();
    fake.behave('test-gpt', { usage: { input: 100, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 7 } });
    const stream = await client.chat.completions.create({
      model: 'test-gpt', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'x' }], max_tokens: 16,
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const final = chunks[chunks.length - 1];
    expect(final.choices).toEqual([]);
    expect(final.usage).toMatchObject({ prompt_tokens: 100, completion_tokens: 7, total_tokens: 107 });
    expect(last().body?.stream_options).toEqual({ include_usage: true });
    expect(await expectBalanced(gw, account.id)).toBe(grant - ceilMicros(100 * GPT.input + 7 * GPT.output)); // 250 + 70
  });

  it('responses: non-streaming usage and X-Tollgate-Cost-Micros; a stream billed from response.completed', async () => {
    const { account, client } = await setup();
    fake.behave('test-gpt', { usage: { input: 321, cached: 21, cacheWrite5m: 0, cacheWrite1h: 0, output: 33 } });
    // 300 × 2.5 + 21 × 1.25 + 33 × 10 = 750 + 26.25 + 330 = 1106.25 → 1107
    const cost = ceilMicros(300 * GPT.input + 21 * GPT.cached + 33 * GPT.output);
    expect(cost).toBe(1107);

    const { data, response } = await client.responses.create({ model: 'test-gpt', input: PROMPT, max_output_tokens: 50 }).withResponse();
    expect(data.output_text).toBe('word0 word1 word2 ');
    expect(response.headers.get('x-tollgate-cost-micros')).toBe(String(cost));
    const first = await usageRow(gw, response.headers.get('x-request-id')!);
    expect(first).toMatchObject({ route: '/v1/responses', input_tokens: 321, cached_tokens: 21, output_tokens: 33, price_micros: cost, estimated: 0 });

    const { data: stream, response: r2 } = await client.responses.create({ model: 'test-gpt', input: PROMPT, stream: true }).withResponse();
    const types: string[] = [];
    let completed: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.completed') completed = ev.response;
    }
    expect(types[0]).toBe('response.created');
    expect(types.filter((t) => t === 'response.output_text.delta')).toHaveLength(3);
    expect(completed?.usage?.input_tokens).toBe(321); // the client keeps its usage event
    expect(last().body).not.toHaveProperty('stream_options');
    // No max_output_tokens: the model's maximum (16_384) was reserved.
    const requestId = r2.headers.get('x-request-id')!;
    const reserved = reserveGpt(Buffer.byteLength(last().raw), 16_384);
    expect((await usageRow(gw, requestId)).price_micros).toBe(cost);
    expect((await usageRow(gw, requestId)).price_micros).toBe(cost);
    expect(await expectBalanced(gw, account.id)).toBe(grant - 2 * cost);
  });

  it('responses: a stream that ends in response.incomplete is billed from its usage', async () => {
    const { account, client } = await setup();
    fake.behave('test-gpt', { usage: { input: 40, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 20 }, responsesFinal: 'incomplete' });
    const stream = await client.responses.create({ model: 'test-gpt', input: 'Write a lot.', stream: true, max_output_tokens: 20 });
    let status: string | undefined;
    for await (const ev of stream) if (ev.type === 'response.incomplete') status = ev.response.status;
    expect(status).toBe('incomplete');
    expect(await expectBalanced(gw, account.id)).toBe(grant - ceilMicros(40 * GPT.input + 20 * GPT.output)); // 100 + 200
  });

  it('embeddings: priced by prompt tokens, the SDK decodes the base64 vectors', async () => {
    const { account, client } = await setup();
    fake.behave('test-embed', { usage: { input: 123, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 0 } });
    const { data, response } = await client.embeddings.create({ model: 'test-embed', input: [PROMPT, PROMPT] }).withResponse();
    expect(data.data.map((d) => d.embedding)).toEqual([[0.25, -0.5, 0.125], [0.25, -0.5, 0.125]]);
    expect(data.usage.prompt_tokens).toBe(123);
    expect(last().body?.encoding_format).toBe('base64');
    // 123 × 0.02 = 2.46 → 3; reserved: every body byte at 0.02, no output.
    expect(response.headers.get('x-tollgate-cost-micros')).toBe('3');
    const requestId = response.headers.get('x-request-id')!;
    const reserved = ceilMicros(Buffer.byteLength(last().raw) * 20_000);
    expect((await usageRow(gw, requestId)).price_micros).toBe(3);
    expect(await usageRow(gw, requestId)).toMatchObject({ model: 'test-embed', input_tokens: 123, output_tokens: 0, price_micros: 3 });
  });

  it('GET /v1/models is free and lists only the models this gateway prices and the plan allows', async () => {
    const { account, client } = await setup('pro', 0);
    const before = fake.requests.length;
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    // The provider also lists o1-pro (no price here) and the operator's fine-tuned model.
    expect(models).toEqual(['gpt-4o', 'test-gpt']);
    expect(fake.requests.length).toBe(before + 1);
    expect(last()).toMatchObject({ method: 'GET', path: '/v1/models', key: fake.openaiKey });
    expect(last().headers['accept-encoding']).toBe('identity');
    expect(await gw.ledger(account.id)).toEqual([]);

    const only = [];
    for await (const m of (await setup('gptOnly', 0)).client.models.list()) only.push(m.id);
    expect(only).toEqual(['test-gpt']);
  });

  it('an unknown model is refused with 400 before anything goes upstream (BadRequestError)', async () => {
    const { account, client } = await setup();
    const before = fake.requests.length;
    const err = await client.chat.completions.create({ model: 'gpt-nonexistent', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as ApiError).status).toBe(400);
    expect((err as ApiError).message).toContain('gpt-nonexistent');
    expect(fake.requests.length).toBe(before);
    expect((await gw.ledger(account.id)).map((e) => e.kind)).toEqual(['grant']);
  });

  it('a body that repeats a field is refused with 400 before anything goes upstream: it could be priced by one model and run by another', async () => {
    const { account, key } = await setup();
    const before = fake.requests.length;
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: '{"model":"test-gpt-expensive","messages":[{"role":"user","content":"x"}],"max_tokens":8,"model":"test-gpt"}',
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string; type: string } };
    expect(body.error.message).toContain('"model" more than once');
    expect(fake.requests.length).toBe(before);
    expect((await gw.ledger(account.id)).map((e) => e.kind)).toEqual(['grant']);
  });

  it('a plan that lists its models refuses others with 403 (PermissionDeniedError), before anything goes upstream', async () => {
    const { client } = await setup('sonnetOnly');
    const before = fake.requests.length;
    const err = await client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((err as ApiError).status).toBe(403);
    expect(fake.requests.length).toBe(before);
  });

  it('gateway refusals use OpenAI\'s error shape: 401 AuthenticationError, 429 RateLimitError, 402 APIError', async () => {
    // A bad Tollgate key.
    const bad = openaiClient(gw, 'tg_notARealKey');
    const e401 = await bad.chat.completions.create({ model: 'test-gpt', messages: [] }).catch((e: unknown) => e);
    expect(e401).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((e401 as ApiError).status).toBe(401);

    // Not enough balance for the reservation: 402, nothing upstream.
    const poor = await setup('pro', 100);
    const before = fake.requests.length;
    const e402 = await poor.client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 1000 }).catch((e: unknown) => e);
    expect(e402).toBeInstanceOf(OpenAI.APIError);
    expect(e402).not.toBeInstanceOf(OpenAI.RateLimitError);
    expect((e402 as ApiError).status).toBe(402);
    expect((e402 as ApiError).code).toBe('insufficient_credits');
    expect(fake.requests.length).toBe(before);
    expect(await expectBalanced(gw, poor.account.id)).toBe(100);

    // Rate limited: the plan allows 2 a minute.
    const slow = await setup('limited');
    for (let i = 0; i < 2; i++) await slow.client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 8 });
    const e429 = await slow.client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 8 }).catch((e: unknown) => e);
    expect(e429).toBeInstanceOf(OpenAI.RateLimitError);
    expect((e429 as ApiError).headers?.get('retry-after')).toMatch(/^\d+$/);

    // The bodies, as bytes: {"error":{"message","type","code"}} (param as OpenAI sends it).
    const post = (key: string, body: unknown) => fetchText(`${gw.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    for (const [res, status, type] of [
      [await post('tg_notARealKey', { model: 'test-gpt' }), 401, 'invalid_request_error'],
      [await post(poor.key, { model: 'test-gpt', messages: [], max_tokens: 1000 }), 402, 'insufficient_quota'],
      [await post(slow.key, { model: 'test-gpt', messages: [] }), 429, 'rate_limit_exceeded'],
      [await post(poor.key, { model: 'nope', messages: [] }), 400, 'invalid_request_error'],
    ] as const) {
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toBe('application/json');
      const body = JSON.parse(res.body) as { error: Record<string, unknown> };
      expect(Object.keys(body)).toEqual(['error']);
      expect(body.error).toMatchObject({ type, message: expect.any(String), code: expect.any(String) });
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expectNoProviderKey(fake, res.body, res.headers);
    }
  });

  it('provider errors (429, 500) reach the SDK unchanged but for the operator\'s rate-limit headers, and are not billed', async () => {
    const { account, client, key } = await setup();
    for (const [status, cls, body] of [
      [429, OpenAI.RateLimitError, { error: { message: 'Rate limit reached for test-gpt in organization org-x on tokens per min (TPM).', type: 'tokens', param: null, code: 'rate_limit_exceeded' } }],
      [500, OpenAI.InternalServerError, { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }],
    ] as const) {
      fake.behave('test-gpt', { status, errorBody: body, headers: {
        'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-limit-requests': '10000', 'x-ratelimit-reset-tokens': '6m0s',
        'retry-after': '3', 'openai-processing-ms': '12',
      } });
      const err = await client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 10 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(cls);
      expect((err as ApiError).status).toBe(status);
      expect((err as ApiError).error).toEqual(body.error);
      const headers = (err as ApiError).headers!;
      expect(headers.get('retry-after')).toBe('3');
      expect(headers.get('openai-processing-ms')).toBe('12');
      for (const name of ['x-ratelimit-remaining-tokens', 'x-ratelimit-limit-requests', 'x-ratelimit-reset-tokens']) expect(headers.get(name), name).toBeNull();
      const requestId = (err as ApiError).headers!.get('x-request-id')!;
      expect(await usageRow(gw, requestId)).toMatchObject({ status, price_micros: 0 });
    }
    // Byte for byte, through a plain client.
    const res = await fetchText(`${gw.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test-gpt', messages: [], max_tokens: 1 }),
    });
    expect(res.status).toBe(500);
    expect(res.body).toBe('{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}');
    expect(await expectBalanced(gw, account.id)).toBe(grant);
  });

  it('a client that disconnects mid-stream is still settled: billed, within the reservation, flagged as estimated', async () => {
    const { account, client } = await setup();
    fake.behave('test-gpt', { deltas: 10, stallAfter: 2 });
    const ac = new AbortController();
    const { data: stream, response } = await client.chat.completions.create({
      model: 'test-gpt', stream: true, messages: [{ role: 'user', content: 'Go on.' }], max_tokens: 500,
    }, { signal: ac.signal }).withResponse();
    let text = '';
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      if (text === 'word0 word1 ') ac.abort();
    }
    expect(text).toBe('word0 word1 ');
    const requestId = response.headers.get('x-request-id')!;
    const row = await usageRow(gw, requestId);
    const reserved = reserveGpt(Buffer.byteLength(last().raw), 500);
    expect(row.estimated).toBe(1);
    expect(row.price_micros).toBeGreaterThan(0);
    expect(row.price_micros).toBeLessThanOrEqual(reserved);
    expect(row.output_tokens).toBeGreaterThan(0);
    expect((await usageRow(gw, requestId)).price_micros).toBe(row.price_micros);
    expect(await expectBalanced(gw, account.id)).toBe(grant - row.price_micros);
  });

  it('a stream the provider cuts off mid-way fails for the client and is settled as an estimate', async () => {
    const { account, client } = await setup();
    fake.behave('test-gpt', { deltas: 10, cutAfter: 3, delayMs: 15 });
    const { data: stream, response } = await client.chat.completions.create({
      model: 'test-gpt', stream: true, messages: [{ role: 'user', content: 'Go on.' }], max_tokens: 300,
    }).withResponse();
    let text = '';
    const err = await (async () => {
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    // What was streamed before the cut reached the client (a reset can drop its last bytes).
    expect('word0 word1 word2 '.startsWith(text)).toBe(true);
    const row = await usageRow(gw, response.headers.get('x-request-id')!);
    const reserved = reserveGpt(Buffer.byteLength(last().raw), 300);
    expect(row).toMatchObject({ estimated: 1, model: 'test-gpt' });
    expect(row.price_micros).toBeGreaterThan(0);
    expect(row.price_micros).toBeLessThanOrEqual(reserved);
    expect(await expectBalanced(gw, account.id)).toBe(grant - row.price_micros);
  });
  it('serves only the priced endpoints and the model list: the rest of the provider API never gets the operator key', async () => {
    const { key } = await setup();
    const seen = fake.requests.length;
    for (const [method, path] of [['GET', '/v1/responses/resp_123'], ['DELETE', '/v1/models/ft:gpt-4o:acme'], ['GET', '/v1/chat/completions'], ['POST', '/v1/chat/completions/extra']]) {
      const res = await fetch(`${gw.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } });
      expect(res.status, `${method} ${path}`).toBe(404);
      const body = (await res.json()) as { error: { type: string; message: string } };
      expect(body.error.type).toBe('not_found');
      expect(body.error.message).toMatch(/does not serve/);
    }
    expect(fake.requests.length).toBe(seen);
  });

  it('the client cannot choose the operator\'s organization or project, nor see them', async () => {
    const { key } = await setup();
    const res = await fetch(`${gw.url}/v1/models`, {
      headers: { authorization: `Bearer ${key}`, 'openai-organization': 'org-evil', 'openai-project': 'proj-evil', cookie: 'a=b' },
    });
    expect(res.status).toBe(200);
    const got = last();
    expect(got.headers['openai-organization']).toBeUndefined();
    expect(got.headers['openai-project']).toBeUndefined();
    expect(got.headers.cookie).toBeUndefined();
  });

  it('the operator\'s rate-limit headers never reach the customer, on a JSON answer or a stream', async () => {
    const { client } = await setup();
    fake.behave('test-gpt', { headers: { 'x-ratelimit-limit-tokens': '30000000', 'x-ratelimit-remaining-tokens': '29999000', 'x-ratelimit-remaining-requests': '9999', 'openai-processing-ms': '40' } });
    const { response } = await client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 }).withResponse();
    const { data: stream, response: streamed } = await client.chat.completions.create({ model: 'test-gpt', stream: true, messages: [{ role: 'user', content: 'x' }], max_tokens: 5 }).withResponse();
    for await (const _ of stream) { /* drain */ }
    for (const headers of [response.headers, streamed.headers]) {
      expect([...headers.keys()].filter((k) => k.startsWith('x-ratelimit-'))).toEqual([]);
      expect(headers.get('openai-processing-ms')).toBe('40');
    }
  });

  it('a stream the client cuts after 2 chunks costs less than the whole stream: the estimate counts the text, not the framing', async () => {
    const { account, client } = await setup();
    // The provider reports what it generated: 10 deltas "wordN " and the prompt's tokens.
    fake.behave('test-gpt', { deltas: 10, usage: { input: 12, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 30 } });
    const params = { model: 'test-gpt', stream: true as const, messages: [{ role: 'user' as const, content: 'Count to ten.' }], max_tokens: 500 };
    for await (const _ of await client.chat.completions.create(params)) { /* the whole stream */ }
    const whole = ceilMicros(12 * GPT.input + 30 * GPT.output); // 330
    expect(await expectBalanced(gw, account.id)).toBe(grant - whole);
    await waitFor(() => tokenizerReady('test-gpt') || undefined, 10_000);

    fake.behave('test-gpt', { deltas: 10, stallAfter: 2 });
    const ac = new AbortController();
    const { data: stream, response } = await client.chat.completions.create(params, { signal: ac.signal }).withResponse();
    let text = '';
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      if (text === 'word0 word1 ') ac.abort();
    }
    const row = await usageRow(gw, response.headers.get('x-request-id')!);
    expect(row.estimated).toBe(1);
    // "word0 word1 ": 5 tokens in o200k_base, whatever the ~250 bytes of SSE and JSON around them.
    expect(row.output_tokens).toBe(5);
    expect(row.price_micros).toBeGreaterThan(0);
    expect(row.price_micros).toBeLessThan(whole);
    expect(await expectBalanced(gw, account.id)).toBe(grant - whole - row.price_micros);
  });

  it('AI routes wait minutes for a reasoning model (headers and between chunks), and the shutdown drain a minute, by default', () => {
    const env = { OPENAI_API_KEY: 'sk-x', DATABASE_PATH: ':memory:', TOLLGATE_CONFIG: '' };
    const c = loadConfig(env);
    expect(c.routes.filter((r) => r.meter).map((r) => r.timeoutMs)).toEqual([600_000, 600_000, 600_000, 600_000]);
    expect(c.shutdownTimeoutMs).toBe(60_000);
    expect(loadConfig({ ...env, AI_UPSTREAM_TIMEOUT_MS: '1200000', UPSTREAM_TIMEOUT_MS: '5000' }).routes.map((r) => r.timeoutMs)).toEqual([1_200_000, 1_200_000, 1_200_000, 1_200_000]);
  });

  it('a client that leaves before a non-streaming answer: the request completes upstream and is billed from its usage (status 499)', async () => {
    // A gateway of its own: the client's connection is its only one, so its close can be seen.
    const solo = await startAiGateway(fake, {}, backend);
    try {
      const { account, key } = await customer(solo, 'pro', grant);
      issued.push(key);
      fake.behave('test-gpt', { hold: true, usage: { input: 300, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 200 } });
      const ac = new AbortController();
      const call = openaiClient(solo, key).chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: PROMPT }], max_tokens: 1000 }, { signal: ac.signal }).catch((e: unknown) => e);
      await waitFor(() => (fake.held() === 1 ? true : undefined));
      const up = last();
      ac.abort();
      expect(await call).toBeInstanceOf(OpenAI.APIUserAbortError);
      const connections = () => new Promise<number>((r) => solo.app.gateway.server.getConnections((_e, n) => r(n)));
      await waitFor(async () => ((await connections()) === 0 ? true : undefined));
      // The provider generates (and bills) the whole answer anyway.
      fake.release();
      const requestId = up.headers['x-request-id'] as string;
      const row = await usageRow(solo, requestId);
      const cost = ceilMicros(300 * GPT.input + 200 * GPT.output); // 2750
      expect(row).toMatchObject({ status: 499, price_micros: cost, estimated: 0, input_tokens: 300, output_tokens: 200, billable: 1 });
      const reserved = reserveGpt(Buffer.byteLength(up.raw), 1000);
      expect((await usageRow(solo, requestId)).price_micros).toBe(cost);
      expect(await expectBalanced(solo, account.id)).toBe(grant - cost);
    } finally {
      await solo.close();
    }
  });

  it('responses in background mode are refused with 400 before anything goes upstream: their usage is never seen', async () => {
    const { account, client } = await setup();
    const before = fake.requests.length;
    const err = await client.responses.create({ model: 'test-gpt', input: 'Write a novel.', background: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as ApiError).message).toMatch(/Background mode/);
    expect(fake.requests.length).toBe(before);
    expect(await expectBalanced(gw, account.id)).toBe(grant);
  });

  it('service_tier: priority is reserved and billed at its rates, a downgrade at what the response reports, none is sent as "default"', async () => {
    const { account, client } = await setup();
    const PRIORITY = { input: 5_000_000, output: 20_000_000 };
    fake.behave('test-gpt', { usage: { input: 100, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 10 } });
    const { response } = await client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 50, service_tier: 'priority' }).withResponse();
    expect(response.headers.get('x-tollgate-cost-micros')).toBe(String(ceilMicros(100 * PRIORITY.input + 10 * PRIORITY.output))); // 700
    const id = response.headers.get('x-request-id')!;
    expect((await usageRow(gw, id)).price_micros).toBe(700);
    // The reservation is at the priority rates too: a balance that pays for the standard one is short.
    const reserved = ceilMicros(Buffer.byteLength(last().raw) * PRIORITY.input + 50 * PRIORITY.output);
    const poor = openaiClient(gw, (await customer(gw, 'pro', reserved - 1)).key);
    const short = await poor.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 50, service_tier: 'priority' }).catch((e: unknown) => e);
    expect((short as ApiError).status).toBe(402);
    expect((await poor.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 50 })).usage?.prompt_tokens).toBe(100);

    // Asked for priority, served at the standard tier: billed at it.
    fake.behave('test-gpt', { serviceTier: 'default', usage: { input: 100, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 10 } });
    const down = await client.chat.completions.create({ model: 'test-gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 50, service_tier: 'priority' }).withResponse();
    expect(down.data.service_tier).toBe('default');
    expect(down.response.headers.get('x-tollgate-cost-micros')).toBe(String(ceilMicros(100 * GPT.input + 10 * GPT.output))); // 350

    await client.responses.create({ model: 'test-gpt', input: 'x', max_output_tokens: 5 });
    expect(last().body?.service_tier).toBe('default');
    const scale = await client.chat.completions.create({ model: 'test-gpt', messages: [], service_tier: 'scale' as 'auto' }).catch((e: unknown) => e);
    expect(scale).toBeInstanceOf(OpenAI.BadRequestError);
    // gpt-4o has no priority price on this gateway: refused rather than billed at standard.
    const unpriced = await client.chat.completions.create({ model: 'gpt-4o', messages: [], service_tier: 'priority' }).catch((e: unknown) => e);
    expect(unpriced).toBeInstanceOf(OpenAI.BadRequestError);
    expect((unpriced as ApiError).message).toMatch(/priority/);
  });

  it('responses web search calls are billed per call, streamed or not; file search and code interpreter are refused', async () => {
    const { account, client } = await setup();
    fake.behave('test-gpt', { webSearches: 2, usage: { input: 1000, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 50 } });
    const cost = ceilMicros(1000 * GPT.input + 50 * GPT.output) + 2 * 10_000; // 3000 + 20 000
    const { response } = await client.responses.create({ model: 'test-gpt', input: 'News?', tools: [{ type: 'web_search' }], max_output_tokens: 100 }).withResponse();
    expect(response.headers.get('x-tollgate-cost-micros')).toBe(String(cost));
    // max_tool_calls bounds the searches reserved (the SDK's types do not name it yet).
    const streamed = { model: 'test-gpt', input: 'News?', tools: [{ type: 'web_search' as const }], stream: true as const, max_tool_calls: 3 };
    const { data: stream, response: r2 } = await client.responses.create(streamed as OpenAI.Responses.ResponseCreateParamsStreaming).withResponse();
    let searches = 0;
    for await (const ev of stream) if (ev.type === 'response.web_search_call.completed') searches++;
    expect(searches).toBe(2);
    const id = r2.headers.get('x-request-id')!;
    expect((await usageRow(gw, id)).price_micros).toBe(cost);
    // Reserved: three searches allowed by max_tool_calls.
    const reserved = reserveGpt(Buffer.byteLength(last().raw), 16_384) + 3 * 10_000;
    expect((await usageRow(gw, id)).price_micros).toBe(cost);
    expect(await expectBalanced(gw, account.id)).toBe(grant - 2 * cost);

    const before = fake.requests.length;
    const tools: OpenAI.Responses.Tool[] = [{ type: 'file_search', vector_store_ids: ['vs_operator'] }, { type: 'code_interpreter', container: { type: 'auto' } }];
    for (const tool of tools) {
      const err = await client.responses.create({ model: 'test-gpt', input: 'x', tools: [tool] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as ApiError).message).toContain(tool.type);
    }
    expect(fake.requests.length).toBe(before);
  });
});
