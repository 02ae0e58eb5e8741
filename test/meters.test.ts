// The pure parts of token metering: pricing usage and reading the providers' usage reports from
// real event sequences (splitting server-sent events: sse.test.ts).
import { describe, expect, it } from 'vitest';
import { anthropic } from '../src/meters/anthropic.ts';
import { openai } from '../src/meters/openai.ts';
import { costMicros, DEFAULT_PRICES, findPrice, NO_USAGE, type ModelPrice } from '../src/meters/prices.ts';
import type { ParsedCall } from '../src/meters/provider.ts';
import { loadTokenizer, tokenizerReady } from '../src/meters/text-tokens.ts';
import { AiExchange, reservationMicros } from '../src/meters/token-meter.ts';

const SONNET: ModelPrice = { input: 3_000_000, cachedInput: 300_000, cacheWrite5m: 3_750_000, cacheWrite1h: 6_000_000, output: 15_000_000, maxOutput: 64_000 };
const GPT: ModelPrice = { input: 2_500_000, cachedInput: 1_250_000, output: 10_000_000, maxOutput: 16_384 };
const usage = (u: Partial<typeof NO_USAGE>) => ({ ...NO_USAGE, ...u });
/** ⌈micros·tokens / 10^6⌉ of a sum worked out by hand. */
const ceil = (perMillionSum: number) => Math.ceil(perMillionSum / 1_000_000);

describe('costMicros', () => {
  it('prices each kind of token at its own rate, exactly', () => {
    // 1200×3 + 3000×0.3 + 500×3.75 + 250×6 + 77×15 = 3600 + 900 + 1875 + 1500 + 1155
    expect(costMicros(SONNET, usage({ input: 1200, cachedInput: 3000, cacheWrite5m: 500, cacheWrite1h: 250, output: 77 }))).toBe(9030);
  });

  it('rounds up to the next micro-dollar, once per request', () => {
    // 3001 × 0.3 = 900.3 → 901; 1 token at 0.3 → 1; 0 tokens → 0
    expect(costMicros(SONNET, usage({ cachedInput: 3001 }))).toBe(901);
    expect(costMicros(SONNET, usage({ cachedInput: 1 }))).toBe(1);
    expect(costMicros(SONNET, NO_USAGE)).toBe(0);
    // Rounded once on the total, not per kind: 0.3 + 0.3 + 0.3 + 0.3 = 1.2 → 2 (per kind would be 4)
    expect(costMicros({ input: 300_000, output: 300_000, maxOutput: 1 }, usage({ input: 2, output: 2 }))).toBe(2);
  });

  it('falls back to the input price for cache reads and writes with no price of their own', () => {
    expect(costMicros(GPT, usage({ cacheWrite5m: 10, cacheWrite1h: 10 }))).toBe(50);
    expect(costMicros({ input: 1_000_000, output: 0, maxOutput: 0 }, usage({ cachedInput: 7 }))).toBe(7);
  });

  it('stays exact past 2^53 in the intermediate product', () => {
    const dear: ModelPrice = { input: 999_999_999, output: 999_999_999, maxOutput: 1 };
    // (10^7 × 999_999_999 × 2) / 10^6 = 19_999_999_980 exactly; 10^7 × 10^9 > 2^53.
    expect(costMicros(dear, usage({ input: 10_000_000, output: 10_000_000 }))).toBe(19_999_999_980);
    // ... and one more token rounds up by exactly one micro-dollar's fraction.
    expect(costMicros(dear, usage({ input: 10_000_001, output: 10_000_000 }))).toBe(19_999_999_980 + 1000);
  });
});

describe('findPrice', () => {
  const table = { 'gpt-4o': GPT, 'claude-sonnet-4-5': SONNET, 'gpt-4o-2024-05-13': { ...GPT, input: 5_000_000 } };

  it('prices exactly the names listed: a dated snapshot is not priced as its alias (it may cost more)', () => {
    expect(findPrice(table, 'gpt-4o')).toBe(GPT);
    expect(findPrice(table, 'gpt-4o-2024-05-13')?.input).toBe(5_000_000);
    expect(findPrice(table, 'gpt-4o-2024-08-06')).toBeUndefined();
    expect(findPrice(table, 'claude-sonnet-4-5-20250929')).toBeUndefined();
  });

  it('does not guess: other suffixes, prefixes and inherited names have no price', () => {
    expect(findPrice(table, 'gpt-4o-mini')).toBeUndefined();
    expect(findPrice(table, 'gpt-4o-2024')).toBeUndefined();
    expect(findPrice(table, 'claude-sonnet-4-5-latest')).toBeUndefined();
    expect(findPrice(table, 'toString')).toBeUndefined();
    expect(findPrice(table, '__proto__')).toBeUndefined();
  });

  it('ships prices for the current models in whole micro-dollars, their snapshots listed one by one', () => {
    const integers = (v: unknown, at: string): void => {
      if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) integers(x, `${at}.${k}`);
      else expect(Number.isSafeInteger(v), at).toBe(true);
    };
    integers(DEFAULT_PRICES, 'prices');
    expect(findPrice(DEFAULT_PRICES, 'claude-sonnet-4-5-20250929')?.input).toBe(3_000_000);
    expect(findPrice(DEFAULT_PRICES, 'gpt-4o-mini')?.output).toBe(600_000);
    // The first gpt-4o snapshot kept its launch price: $5 / $15, not gpt-4o's $2.50 / $10.
    expect(findPrice(DEFAULT_PRICES, 'gpt-4o-2024-05-13')).toMatchObject({ input: 5_000_000, output: 15_000_000 });
    expect(findPrice(DEFAULT_PRICES, 'gpt-4o-2024-08-06')?.input).toBe(2_500_000);
  });

  it('every model the installed SDKs name is priced or refused, and a priced one has an output limit', () => {
    for (const model of ['gpt-5.6-sol', 'gpt-5.6-terra', 'gpt-5.6-luna', 'gpt-5.4-mini-2026-03-17', 'claude-opus-5-5', 'claude-haiku-5-5', 'claude-sonnet-4-6']) {
      expect(findPrice(DEFAULT_PRICES, model)?.maxOutput, model).toBeGreaterThan(0);
    }
    // Named by the SDKs, price unconfirmed: refused rather than guessed.
    for (const model of ['claude-fable-5-2', 'claude-mythos-5-2', 'claude-mythos-preview', 'gpt-4o-search-preview', 'o1-pro']) {
      expect(findPrice(DEFAULT_PRICES, model), model).toBeUndefined();
    }
  });
});

describe('reservationMicros', () => {
  it('is every body byte at the dearest input rate plus the output limit at the output rate, rounded up', () => {
    // Dearest input for SONNET is the 1-hour cache write (6 micros/token): 1000×6 + 256×15 = 9840
    expect(reservationMicros(SONNET, 1000, 256)).toBe(9840);
    // GPT: 333 × 2.5 = 832.5 → 833
    expect(reservationMicros(GPT, 333, 0)).toBe(833);
  });

  it('covers the actual cost of any usage the body and limit allow', () => {
    const r = reservationMicros(SONNET, 400, 100);
    for (const u of [usage({ input: 400, output: 100 }), usage({ cacheWrite1h: 400, output: 100 }), usage({ cacheWrite5m: 200, cachedInput: 200, output: 100 })]) {
      expect(costMicros(SONNET, u)).toBeLessThanOrEqual(r);
    }
  });
});

// Real event sequences, as the providers send them.
const sse = (...events: [string | undefined, unknown][]) =>
  events.map(([name, data]) => `${name ? `event: ${name}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`).join('');

function run(exchange: AiExchange, text: string, chunkSize = 7): string {
  const bytes = Buffer.from(text);
  let out = '';
  for (let i = 0; i < bytes.length; i += chunkSize) out += exchange.data(bytes.subarray(i, i + chunkSize)).toString();
  return out + exchange.end().toString();
}

describe('OpenAI tracker', () => {
  const chatBody = { model: 'test-gpt', stream: true, messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 50 };
  const chunk = (delta: unknown, extra: object = {}) => ({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'test-gpt', choices: [{ index: 0, delta, finish_reason: null }], ...extra });
  const usageChunk = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'test-gpt', choices: [], usage: { prompt_tokens: 1234, completion_tokens: 57, total_tokens: 1291, prompt_tokens_details: { cached_tokens: 1000 } } };

  it('asks for the usage chunk, reads it, and hides it from a client that did not ask', async () => {
    const call = openai.parse('/v1/chat/completions', chatBody);
    expect(call).toMatchObject({ model: 'test-gpt', maxOutputTokens: 50, choices: 1, hideUsageChunk: true });
    expect(call.sets?.stream_options).toEqual({ include_usage: true });
    const ex = new AiExchange(openai, call, GPT, 10_000, Buffer.from(JSON.stringify({ ...chatBody, ...call.sets })));
    ex.start(200, 'text/event-stream; charset=utf-8');
    const seen = run(ex, sse([undefined, chunk({ content: 'Hel' }, { usage: null })], [undefined, chunk({ content: 'lo' }, { usage: null })], [undefined, usageChunk], [undefined, '[DONE]']));
    expect(seen).not.toContain('"prompt_tokens"');
    expect(seen).toContain('Hel');
    expect(seen.endsWith('data: [DONE]\n\n')).toBe(true);
    // prompt_tokens includes cached_tokens: 234 uncached, 1000 cached.
    expect(ex.tracker.usage).toEqual(usage({ input: 234, cachedInput: 1000, cacheWrite5m: 0, cacheWrite1h: 0, output: 57 }));
    // 234×2.5 + 1000×1.25 + 57×10 = 585 + 1250 + 570
    expect((await ex.settle())).toEqual({ costMicros: 2405, usage: ex.tracker.usage, estimated: false });
  });

  it('cuts exactly the usage chunk at every chunk size; the rest goes out byte for byte and is what streamedBytes counts', async () => {
    const call = openai.parse('/v1/chat/completions', chatBody);
    const events: [undefined, unknown][] = [[undefined, chunk({ content: 'Grüße 😀' }, { usage: null })], [undefined, chunk({ content: '!' }, { usage: null })]];
    const text = sse(...events, [undefined, usageChunk], [undefined, '[DONE]']);
    const expected = sse(...events, [undefined, '[DONE]']);
    for (let size = 1; size <= text.length; size++) {
      const ex = new AiExchange(openai, call, GPT, 10_000, Buffer.from(JSON.stringify({ ...chatBody, ...call.sets })));
      ex.start(200, 'text/event-stream');
      const bytes = Buffer.from(text);
      const out: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) out.push(ex.data(bytes.subarray(i, i + size)));
      out.push(ex.end());
      const sent = Buffer.concat(out);
      expect(sent.toString(), `chunks of ${size}`).toBe(expected);
      expect(ex.streamedBytes).toBe(sent.length);
      expect((await ex.settle())).toMatchObject({ costMicros: 2405, estimated: false });
    }
  });

  it('finds the usage object on the bytes however its JSON is spaced or split over data lines', async () => {
    const call = openai.parse('/v1/chat/completions', { ...chatBody, stream_options: { include_usage: true } });
    const streams = [
      'data: {"choices":[],"usage" : {"prompt_tokens":1234,"completion_tokens":57,"prompt_tokens_details":{"cached_tokens":1000}}}\n\n',
      'data: {"choices":[],"usage":\ndata: {"prompt_tokens":1234,"completion_tokens":57,"prompt_tokens_details":{"cached_tokens":1000}}}\n\n',
      'data: {"choices":[],"usage"\ndata: :{"prompt_tokens":1234,"completion_tokens":57,"prompt_tokens_details":{"cached_tokens":1000}}}\r\n\r\n',
    ];
    for (const usageEvent of streams) {
      const ex = new AiExchange(openai, call, GPT, 10_000, Buffer.from('{}'));
      ex.start(200, 'text/event-stream');
      // "[DONE]" and "usage" inside generated text are text, not markers.
      run(ex, sse([undefined, chunk({ content: '"usage":{[DONE]' }, { usage: null })]) + usageEvent + 'data: [DONE]\n\n');
      expect((await ex.settle()), usageEvent).toMatchObject({ costMicros: 2405, estimated: false });
      expect(ex.generatedText()).toBe('"usage":{[DONE]');
    }
  });

  it('a stream with nothing to hide goes out chunk by chunk as it came', async () => {
    const body = { ...chatBody, stream_options: { include_usage: true }, service_tier: 'default' };
    const ex = new AiExchange(openai, openai.parse('/v1/chat/completions', body), GPT, 10_000, Buffer.from(JSON.stringify(body)));
    ex.start(200, 'text/event-stream');
    const bytes = Buffer.from(sse([undefined, chunk({ content: 'x' }, { usage: null })], [undefined, usageChunk], [undefined, '[DONE]']));
    for (const part of [bytes.subarray(0, 10), bytes.subarray(10, 200), bytes.subarray(200)]) expect(ex.data(part)).toBe(part);
    expect(ex.end()).toHaveLength(0);
    expect(ex.streamedBytes).toBe(bytes.length);
    expect((await ex.settle()).costMicros).toBe(2405);
  });

  it('passes the usage chunk to a client that asked for it, stream_options unchanged', async () => {
    const body = { ...chatBody, stream_options: { include_usage: true }, service_tier: 'default' };
    const call = openai.parse('/v1/chat/completions', body);
    expect(call).toMatchObject({ sets: undefined, hideUsageChunk: false });
    const ex = new AiExchange(openai, call, GPT, 10_000, Buffer.from(JSON.stringify(body)));
    ex.start(200, 'text/event-stream');
    const seen = run(ex, sse([undefined, chunk({ content: 'x' }, { usage: null })], [undefined, usageChunk], [undefined, '[DONE]']), 3);
    expect(seen).toContain('"prompt_tokens":1234');
    expect((await ex.settle()).costMicros).toBe(2405);
  });

  it('reads response.completed and response.incomplete of the Responses API; max_output_tokens is the limit', async () => {
    const body = { model: 'test-gpt', input: 'hi', stream: true, max_output_tokens: 40 };
    for (const final of ['response.completed', 'response.incomplete']) {
      const call = openai.parse('/v1/responses', body);
      expect(call).toMatchObject({ maxOutputTokens: 40, sets: { service_tier: 'default' }, hideUsageChunk: false, stream: true });
      const ex = new AiExchange(openai, call, GPT, 10_000, Buffer.from(JSON.stringify(body)));
      ex.start(200, 'text/event-stream');
      run(ex, sse(
        ['response.created', { type: 'response.created', sequence_number: 0, response: { id: 'r', status: 'in_progress', usage: null } }],
        ['response.output_text.delta', { type: 'response.output_text.delta', sequence_number: 1, delta: 'usage: {' }],
        [final, { type: final, sequence_number: 2, response: { id: 'r', usage: { input_tokens: 300, input_tokens_details: { cached_tokens: 100 }, output_tokens: 40, output_tokens_details: { reasoning_tokens: 8 }, total_tokens: 340 } } }],
      ));
      expect(ex.tracker.usage).toMatchObject({ input: 200, cachedInput: 100, output: 40 });
      // 200×2.5 + 100×1.25 + 40×10 = 500 + 125 + 400
      expect((await ex.settle())).toMatchObject({ costMicros: 1025, estimated: false });
    }
  });

  it('reads the usage of a non-streaming body (embeddings: prompt tokens only)', async () => {
    const call = openai.parse('/v1/embeddings', { model: 'e', input: 'abc' });
    expect(call.maxOutputTokens).toBe(0);
    const ex = new AiExchange(openai, call, { input: 20_000, output: 0, maxOutput: 0 }, 100, Buffer.from('{}'));
    ex.start(200, 'application/json');
    expect(ex.data(Buffer.from('{"object":"list","data":[],"usage":{"prompt_tokens":8'))).toHaveLength(0);
    ex.data(Buffer.from(',"total_tokens":8}}'));
    expect(ex.knownCost()).toBeUndefined();
    expect(JSON.parse(ex.end().toString()).usage.prompt_tokens).toBe(8);
    expect(ex.knownCost()).toBe(1);
    expect((await ex.settle())).toMatchObject({ costMicros: 1, estimated: false }); // 8 × 0.02 = 0.16 → 1
  });

  it('serves the priced endpoints and the free model list only; refuses a request without a model or with a bad limit', () => {
    expect(openai.endpoint('GET', '/v1/models')).toBe('free');
    expect(openai.endpoint('POST', '/v1/chat/completions')).toBe('priced');
    expect(openai.endpoint('POST', '/v1/responses?x=1')).toBe('priced');
    // Stored responses, files, fine-tuned models: the operator's account, never served.
    for (const [m, p] of [['GET', '/v1/responses/resp_1'], ['DELETE', '/v1/models/ft:x'], ['POST', '/v1/files'], ['GET', '/v1/chat/completions']]) {
      expect(openai.endpoint(m, p)).toBeUndefined();
    }
    expect(openai.parse('/v1/chat/completions', { model: 'm', n: 3 }).choices).toBe(3);
    expect(() => openai.parse('/v1/chat/completions', { messages: [] })).toThrow(/model/);
    expect(() => openai.parse('/v1/chat/completions', { model: 'm', max_tokens: -1 })).toThrow(/max_tokens/);
    expect(() => openai.parse('/v1/chat/completions', { model: 'm', max_completion_tokens: 1.5 })).toThrow();
    expect(openai.auth('sk-x')).toEqual(['authorization', 'Bearer sk-x']);
  });
});

describe('Anthropic tracker', () => {
  const body = { model: 'test-sonnet', max_tokens: 500, stream: true, messages: [{ role: 'user', content: 'hi' }] };
  const start = { type: 'message_start', message: { id: 'm', type: 'message', role: 'assistant', content: [], model: 'test-sonnet', usage: {
    input_tokens: 1200, cache_creation_input_tokens: 750, cache_read_input_tokens: 3001,
    cache_creation: { ephemeral_5m_input_tokens: 500, ephemeral_1h_input_tokens: 250 }, output_tokens: 1,
  } } };
  const delta = (text: string) => ({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } });

  function exchange() {
    const call = anthropic.parse('/v1/messages', body);
    expect(call).toMatchObject({ model: 'test-sonnet', maxOutputTokens: 500, choices: 1, sets: undefined });
    const ex = new AiExchange(anthropic, call, SONNET, 1_000_000, Buffer.from(JSON.stringify(body)));
    ex.start(200, 'text/event-stream; charset=utf-8');
    return ex;
  }

  it('takes input and cache counts from message_start and assigns (not adds) the cumulative output of message_delta', async () => {
    const ex = exchange();
    const text = sse(
      ['message_start', start],
      ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
      ['ping', { type: 'ping' }],
      ['content_block_delta', delta('Hello')],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: null }, usage: { output_tokens: 40 } }],
      ['content_block_delta', delta(' world')],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 1200, cache_creation_input_tokens: 750, cache_read_input_tokens: 3001, output_tokens: 77 } }],
      ['message_stop', { type: 'message_stop' }],
    );
    expect(run(ex, text, 5)).toBe(text);
    // input_tokens excludes the cache: 1200 uncached, 3001 read, 500 + 250 written.
    expect(ex.tracker.usage).toEqual(usage({ input: 1200, cachedInput: 3001, cacheWrite5m: 500, cacheWrite1h: 250, output: 77 }));
    // 1200×3 + 3001×0.3 + 500×3.75 + 250×6 + 77×15 = 3600 + 900.3 + 1875 + 1500 + 1155 = 9030.3 → 9031
    expect((await ex.settle())).toEqual({ costMicros: 9031, usage: ex.tracker.usage, estimated: false });
  });

  it('a message_delta with null figures (MessageDeltaUsage fields are nullable) keeps those of message_start', async () => {
    const ex = exchange();
    run(ex, sse(
      ['message_start', start],
      ['content_block_delta', delta('Hi')],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { input_tokens: null, cache_creation_input_tokens: null, cache_read_input_tokens: null, output_tokens: 77 } }],
      ['message_stop', { type: 'message_stop' }],
    ));
    expect(ex.tracker.usage).toEqual(usage({ input: 1200, cachedInput: 3001, cacheWrite5m: 500, cacheWrite1h: 250, output: 77 }));
    expect((await ex.settle()).costMicros).toBe(9031);
  });

  it('an error event after the 200 leaves the usage seen so far, flagged as an estimate, within the reservation', async () => {
    const ex = exchange();
    run(ex, sse(
      ['message_start', start],
      ['content_block_delta', delta('Hel')],
      ['error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }],
    ));
    expect(ex.tracker.complete).toBe(false);
    const s = (await ex.settle());
    expect(s.estimated).toBe(true);
    expect(s.usage).toMatchObject({ input: 1200, cachedInput: 3001, cacheWrite5m: 500, cacheWrite1h: 250 });
    expect(s.usage.output).toBeGreaterThanOrEqual(1);
    expect(s.costMicros).toBeGreaterThanOrEqual(costMicros(SONNET, usage({ input: 1200, cachedInput: 3001, cacheWrite5m: 500, cacheWrite1h: 250, output: 1 })));
    expect(s.costMicros).toBeLessThanOrEqual(1_000_000);
  });

  it('reads a non-streaming message; without the 5m/1h split every cache write is a 5-minute one', async () => {
    const call = anthropic.parse('/v1/messages', { ...body, stream: false });
    const ex = new AiExchange(anthropic, call, SONNET, 1_000_000, Buffer.from('{}'));
    ex.start(200, 'application/json');
    ex.data(Buffer.from(JSON.stringify({ type: 'message', usage: { input_tokens: 10, cache_creation_input_tokens: 100, cache_read_input_tokens: 0, output_tokens: 5 } })));
    ex.end();
    expect(ex.tracker.usage).toEqual(usage({ input: 10, cachedInput: 0, cacheWrite5m: 100, cacheWrite1h: 0, output: 5 }));
    expect((await ex.settle())).toMatchObject({ costMicros: 30 + 375 + 75, estimated: false });
  });

  it('needs model and a positive max_tokens on /messages; count_tokens is free', () => {
    expect(() => anthropic.parse('/v1/messages', { max_tokens: 1 })).toThrow(/model/);
    expect(() => anthropic.parse('/v1/messages', { model: 'm', max_tokens: 0 })).toThrow(/max_tokens/);
    expect(anthropic.endpoint('POST', '/v1/messages/count_tokens')).toBe('free');
    expect(anthropic.endpoint('POST', '/v1/messages')).toBe('priced');
    // Everything else would act on the operator's account: batches, models, files.
    expect(anthropic.endpoint('POST', '/v1/messages/batches')).toBeUndefined();
    expect(anthropic.endpoint('GET', '/v1/messages')).toBeUndefined();
    expect(anthropic.auth('sk-ant')).toEqual(['x-api-key', 'sk-ant']);
  });
});

describe('AiExchange settlement above the reservation', () => {
  it('a complete report that costs more than was reserved (more tokens than bytes: images, files) is settled in full', async () => {
    const call = openai.parse('/v1/chat/completions', { model: 'test-gpt', max_tokens: 10, messages: [] });
    const ex = new AiExchange(openai, call, GPT, 5, Buffer.from('{}'));
    ex.start(200, 'application/json');
    ex.data(Buffer.from(JSON.stringify({ usage: { prompt_tokens: 100_000, completion_tokens: 10 } })));
    ex.end();
    const s = (await ex.settle());
    expect(s.estimated).toBe(false);
    expect(s.costMicros).toBe(costMicros(GPT, usage({ input: 100_000, output: 10 })));
    expect(s.costMicros).toBeGreaterThan(5);
  });
});

describe('AiExchange settlement without a usage report', () => {
  const call: ParsedCall = { model: 'test-gpt', maxOutputTokens: 100, choices: 1, sets: undefined, hideUsageChunk: false, stream: true, tier: 'standard', maxWebSearches: 0 };

  it('estimates from the bytes (never zero, never more than the reservation) and flags the estimate', async () => {
    const body = Buffer.alloc(400, 'a');
    const reserved = reservationMicros(GPT, body.length, 100);
    const ex = new AiExchange(openai, call, GPT, reserved, body);
    ex.start(200, 'text/event-stream');
    ex.data(Buffer.from(sse([undefined, { choices: [{ delta: { content: 'x'.repeat(40) } }] }])));
    const s = (await ex.settle());
    expect(s.estimated).toBe(true);
    expect(s.usage.input).toBe(100); // 400 bytes / 4
    expect(s.costMicros).toBeGreaterThan(0);
    expect(s.costMicros).toBeLessThanOrEqual(reserved);

    const tiny = new AiExchange(openai, call, { input: 1, output: 1, maxOutput: 1 }, 1, Buffer.from('{}'));
    tiny.start(200, 'text/event-stream');
    expect((await tiny.settle())).toMatchObject({ costMicros: 1, estimated: true });

    const huge = new AiExchange(openai, call, GPT, 50, body);
    huge.start(200, 'text/event-stream');
    huge.data(Buffer.alloc(100_000, 'z'));
    expect((await huge.settle()).costMicros).toBe(50);
  });

  it('charges nothing for an upstream error status, and passes its body through', async () => {
    const ex = new AiExchange(openai, call, GPT, 5000, Buffer.from('{}'));
    ex.start(429, 'application/json');
    expect(ex.mode).toBe('raw');
    expect(ex.data(Buffer.from('{"error":{}}')).toString()).toBe('{"error":{}}');
    expect((await ex.settle())).toMatchObject({ costMicros: 0 });
  });
});

describe('estimates of a cut stream (no final usage report)', () => {
  const chat = (content: string) => ({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'test-gpt', service_tier: 'default', choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: null }] });
  const words = ['Hello', ' world', ',', ' this', ' is', ' a', ' longer', ' answer', ' than', ' the', ' cut', ' one', '.'];

  it('OpenAI chat: the output is the tokens of the text streamed, never its SSE and JSON framing, and never above the finished stream', async () => {
    await loadTokenizer('test-gpt');
    expect(tokenizerReady('test-gpt')).toBe(true);
    const body = { model: 'test-gpt', stream: true, messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 500 };
    const call = openai.parse('/v1/chat/completions', body);
    const sent = Buffer.from(JSON.stringify({ ...body, ...call.sets }));
    const reserved = reservationMicros(GPT, sent.length, 500);
    // The finished stream: the provider reports what it generated (o200k: one token per word here).
    const whole = new AiExchange(openai, call, GPT, reserved, sent);
    whole.start(200, 'text/event-stream');
    run(whole, sse(...words.map((w) => [undefined, chat(w)] as [undefined, unknown]),
      [undefined, { ...chat(''), choices: [], usage: { prompt_tokens: 11, completion_tokens: words.length, total_tokens: 11 + words.length } }], [undefined, '[DONE]']));
    const full = (await whole.settle());
    expect(full).toMatchObject({ estimated: false, costMicros: ceil(11 * GPT.input + 13 * GPT.output) });

    const cut = new AiExchange(openai, call, GPT, reserved, sent);
    cut.start(200, 'text/event-stream');
    run(cut, sse([undefined, chat('Hello')], [undefined, chat(' world')]));
    const s = (await cut.settle());
    expect(s.estimated).toBe(true);
    expect(s.usage.output).toBe(2); // "Hello", " world": not the ~90 bytes / 4 of each chunk
    // The prompt's text ("user", "Say hello.", "default"), not the body's JSON.
    expect(s.usage.input).toBeLessThanOrEqual(11);
    expect(s.costMicros).toBeGreaterThan(0);
    expect(s.costMicros).toBeLessThan(full.costMicros);
  });

  it('OpenAI Responses and chat tool calls: reasoning, refusals and tool arguments are generated text too', () => {
    const call: ParsedCall = { model: 'test-gpt', maxOutputTokens: 100, choices: 1, sets: undefined, hideUsageChunk: false, stream: true, tier: 'standard', maxWebSearches: 0 };
    const ex = new AiExchange(openai, call, GPT, 10_000, Buffer.from('{}'));
    ex.start(200, 'text/event-stream');
    run(ex, sse(
      ['response.created', { type: 'response.created', response: { id: 'r', status: 'in_progress', usage: null } }],
      ['response.reasoning_summary_text.delta', { type: 'response.reasoning_summary_text.delta', delta: 'Thinking' }],
      ['response.output_text.delta', { type: 'response.output_text.delta', delta: ' Hello' }],
      ['response.function_call_arguments.delta', { type: 'response.function_call_arguments.delta', delta: '{"a":1}' }],
      ['response.audio.delta', { type: 'response.audio.delta', delta: 'AAAAAAAAAAAAAAAAAAAA' }],
    ));
    expect(ex.generatedText()).toBe('Thinking Hello{"a":1}');
    const chatCall = openai.parse('/v1/chat/completions', { model: 'test-gpt', stream: true, messages: [] });
    const c = new AiExchange(openai, chatCall, GPT, 10_000, Buffer.from('{}'));
    c.start(200, 'text/event-stream');
    run(c, sse(
      [undefined, { choices: [{ index: 0, delta: { role: 'assistant', content: null, refusal: 'No' } }] }],
      [undefined, { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"x":' } }] } }] }],
      [undefined, { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '2}' } }] } }] }],
    ));
    expect(c.generatedText()).toBe('No{"x":2}');
  });

  it('Anthropic: text, thinking and tool input deltas at characters / 4, added to the output message_start reported', async () => {
    const body = { model: 'test-sonnet', max_tokens: 500, stream: true, messages: [] };
    const ex = new AiExchange(anthropic, anthropic.parse('/v1/messages', body), SONNET, 1_000_000, Buffer.from(JSON.stringify(body)));
    ex.start(200, 'text/event-stream');
    const delta = (d: object) => ({ type: 'content_block_delta', index: 0, delta: d });
    run(ex, sse(
      ['message_start', { type: 'message_start', message: { usage: { input_tokens: 100, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } } }],
      ['content_block_delta', delta({ type: 'thinking_delta', thinking: 'Let me think.' })],
      ['content_block_delta', delta({ type: 'signature_delta', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds' })],
      ['content_block_delta', delta({ type: 'text_delta', text: 'Hello there' })],
      ['content_block_delta', delta({ type: 'input_json_delta', partial_json: '{"city": "Par' })],
    ));
    const s = (await ex.settle());
    expect(ex.generatedText()).toBe('Let me think.Hello there{"city": "Par');
    expect(s.usage).toMatchObject({ input: 100, output: Math.ceil(37 / 4) });
    expect(s).toMatchObject({ estimated: true, costMicros: ceil(100 * SONNET.input + 10 * SONNET.output) });
  });
});

describe('price multipliers: tiers, long context, web searches', () => {
  const TIERED: ModelPrice = {
    input: 2_000_000, cachedInput: 200_000, output: 10_000_000, maxOutput: 1000, webSearch: 10_000,
    priority: { input: 5_000_000, cachedInput: 500_000, output: 25_000_000 },
    longContext: { above: 1000, input: 4_000_000, cachedInput: 400_000, output: 15_000_000 },
  };

  it('bills the tier the response reports: priority at its rates, flex without a price at the standard ones', () => {
    const u = usage({ input: 100, cachedInput: 50, output: 10 });
    expect(costMicros(TIERED, u)).toBe(ceil(100 * 2_000_000 + 50 * 200_000 + 10 * 10_000_000)); // 310
    expect(costMicros(TIERED, u, 'priority')).toBe(ceil(100 * 5_000_000 + 50 * 500_000 + 10 * 25_000_000)); // 775
    expect(costMicros(TIERED, u, 'flex')).toBe(310);
  });

  it('past the long-context threshold the whole request costs the long rates; with priority, the dearer of each', () => {
    const short = usage({ input: 600, cachedInput: 400, output: 10 }); // 1000 prompt tokens: not past
    const long = usage({ input: 600, cachedInput: 401, output: 10 });
    expect(costMicros(TIERED, short)).toBe(ceil(600 * 2_000_000 + 400 * 200_000 + 10 * 10_000_000));
    expect(costMicros(TIERED, long)).toBe(ceil(600 * 4_000_000 + 401 * 400_000 + 10 * 15_000_000));
    expect(costMicros(TIERED, long, 'priority')).toBe(ceil(600 * 5_000_000 + 401 * 500_000 + 10 * 25_000_000));
    // Cache writes count as prompt tokens too.
    expect(costMicros(TIERED, usage({ input: 1, cacheWrite5m: 1000 }))).toBe(ceil(1001 * 4_000_000));
  });

  it('each web search costs its per-call price on top of the tokens', () => {
    expect(costMicros(TIERED, usage({ input: 10, webSearches: 5 }))).toBe(20 + 5 * 10_000);
  });

  it('the reservation covers the worst case at the multiplied rates: priority, long context, every search allowed', () => {
    expect(reservationMicros(TIERED, 500, 100)).toBe(ceil(500 * 2_000_000 + 100 * 10_000_000));
    expect(reservationMicros(TIERED, 500, 100, 'priority')).toBe(ceil(500 * 5_000_000 + 100 * 25_000_000));
    expect(reservationMicros(TIERED, 2000, 100)).toBe(ceil(2000 * 4_000_000 + 100 * 15_000_000));
    expect(reservationMicros(TIERED, 500, 100, 'standard', 3)).toBe(ceil(500 * 2_000_000 + 100 * 10_000_000) + 30_000);
    for (const [u, tier] of [[usage({ input: 2000, output: 100 }), 'priority'], [usage({ cachedInput: 2000, output: 100, webSearches: 3 }), 'standard']] as const) {
      expect(costMicros(TIERED, u, tier)).toBeLessThanOrEqual(reservationMicros(TIERED, 2000, 100, tier, u.webSearches));
    }
  });

  it('OpenAI: reads the service_tier the response reports, cache writes, and the web search calls of a response', async () => {
    const call = openai.parse('/v1/chat/completions', { model: 'm', service_tier: 'priority', messages: [] });
    expect(call).toMatchObject({ tier: 'priority', sets: undefined });
    const ex = new AiExchange(openai, call, TIERED, 1_000_000, Buffer.from('{}'));
    ex.start(200, 'application/json');
    ex.data(Buffer.from(JSON.stringify({ object: 'chat.completion', service_tier: 'default', usage: { prompt_tokens: 100, completion_tokens: 10, prompt_tokens_details: { cached_tokens: 20, cache_write_tokens: 30 } } })));
    ex.end();
    // Asked for priority, served at default: billed at default. 50 + 20 cached + 30 written (at input).
    expect(ex.tracker.usage).toMatchObject({ input: 50, cachedInput: 20, cacheWrite5m: 30 });
    expect((await ex.settle()).costMicros).toBe(ceil(80 * 2_000_000 + 20 * 200_000 + 10 * 10_000_000));

    const r = new AiExchange(openai, openai.parse('/v1/responses', { model: 'm', input: 'x', tools: [{ type: 'web_search' }] }), TIERED, 1_000_000, Buffer.from('{}'));
    r.start(200, 'application/json');
    r.data(Buffer.from(JSON.stringify({ object: 'response', service_tier: 'priority', output: [{ type: 'web_search_call', id: 'ws1' }, { type: 'web_search_call', id: 'ws2' }, { type: 'message' }], usage: { input_tokens: 10, output_tokens: 1, input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 } } })));
    r.end();
    expect((await r.settle()).costMicros).toBe(ceil(10 * 5_000_000 + 1 * 25_000_000) + 2 * 10_000);
  });

  it('Anthropic: server_tool_use.web_search_requests are billed per search', async () => {
    const call = anthropic.parse('/v1/messages', { model: 'm', max_tokens: 10, tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 3 }] });
    expect(call.maxWebSearches).toBe(3);
    const ex = new AiExchange(anthropic, call, TIERED, 1_000_000, Buffer.from('{}'));
    ex.start(200, 'application/json');
    ex.data(Buffer.from(JSON.stringify({ type: 'message', usage: { input_tokens: 10, output_tokens: 2, server_tool_use: { web_search_requests: 3, web_fetch_requests: 1 } } })));
    ex.end();
    expect((await ex.settle()).costMicros).toBe(ceil(10 * 2_000_000 + 2 * 10_000_000) + 30_000);
  });
});

describe('requests that cannot be metered when they are made are refused', () => {
  const refuses = (p: typeof openai, path: string, body: Record<string, unknown>, message: RegExp) => expect(() => p.parse(path, body)).toThrow(message);

  it('OpenAI: background responses, unpriceable tiers, and tools billed on the operator\'s account', () => {
    refuses(openai, '/v1/responses', { model: 'm', input: 'x', background: true }, /Background mode/);
    refuses(openai, '/v1/chat/completions', { model: 'm', service_tier: 'scale' }, /service_tier "scale"/);
    for (const type of ['file_search', 'code_interpreter', 'image_generation', 'programmatic_tool_calling', 'shell', 'tool_search']) {
      refuses(openai, '/v1/responses', { model: 'm', input: 'x', tools: [{ type }] }, new RegExp(`"${type}"`));
    }
    refuses(openai, '/v1/chat/completions', { model: 'm', web_search_options: {} }, /web_search_options/);
    // Stored state is fine: its tokens are in the usage report.
    expect(openai.parse('/v1/responses', { model: 'm', input: 'x', store: true, previous_response_id: 'resp_1' }).maxWebSearches).toBe(0);
    expect(openai.parse('/v1/responses', { model: 'm', input: 'x', tools: [{ type: 'function', name: 'f' }, { type: 'shell', environment: { type: 'local' } }] }).maxWebSearches).toBe(0);
    expect(openai.parse('/v1/responses', { model: 'm', input: 'x', tools: [{ type: 'web_search' }] }).maxWebSearches).toBe(10);
    expect(openai.parse('/v1/responses', { model: 'm', input: 'x', max_tool_calls: 2, tools: [{ type: 'web_search_preview' }] }).maxWebSearches).toBe(2);
  });

  it('OpenAI: without a service_tier (or with "auto") the gateway asks for "default", not the operator\'s project default', () => {
    for (const tier of [undefined, null, 'auto']) {
      const call = openai.parse('/v1/chat/completions', { model: 'm', messages: [], service_tier: tier });
      expect(call).toMatchObject({ tier: 'standard', sets: { service_tier: 'default' } });
    }
    expect(openai.parse('/v1/responses', { model: 'm', input: 'x', service_tier: 'flex' })).toMatchObject({ tier: 'flex', sets: undefined });
    expect(openai.parse('/v1/embeddings', { model: 'e', input: 'x' }).sets).toBeUndefined();
  });

  it('Anthropic: code execution, the browser toolset, fast mode and regional inference', () => {
    for (const type of ['code_execution_20250825', 'browser_toolset_20260801', 'something_new_20270101']) {
      refuses(anthropic, '/v1/messages', { model: 'm', max_tokens: 1, tools: [{ type, name: 'x' }] }, new RegExp(`"${type}"`));
    }
    refuses(anthropic, '/v1/messages', { model: 'm', max_tokens: 1, speed: 'fast' }, /fast/);
    refuses(anthropic, '/v1/messages', { model: 'm', max_tokens: 1, inference_geo: 'us' }, /inference_geo/);
    const call = anthropic.parse('/v1/messages', { model: 'm', max_tokens: 1, tools: [
      { name: 'f', input_schema: { type: 'object' } }, { type: 'web_fetch_20250910', name: 'web_fetch' }, { type: 'bash_20250124', name: 'bash' },
      { type: 'web_search_20250305', name: 'web_search' },
    ] });
    expect(call.maxWebSearches).toBe(10); // no max_uses: ten are reserved
  });
});
