// A local stand-in for api.openai.com and api.anthropic.com: two node:http servers (one origin
// each, as the real ones) that speak their wire formats (JSON bodies, server-sent event streams,
// error shapes, service tiers, server tool counts), check the provider key they receive, record
// every request, and let a test script what a model answers.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { expect } from 'vitest';
import { startBackendGateway, type Backend, type BackendGateway, type UsageRow } from './backend-gateway.ts';

/**
 * Token counts as the provider reports them. OpenAI: `input` is prompt_tokens / input_tokens and
 * includes `cached` and `cacheWrite5m` (cache_write_tokens). Anthropic: `input` is input_tokens
 * and excludes `cached` (cache_read_input_tokens) and the cache writes.
 */
export interface FakeUsage { input: number; cached: number; cacheWrite5m: number; cacheWrite1h: number; output: number }

export interface Behaviour {
  usage: FakeUsage;
  /** Text deltas in a stream (and words in a non-streaming answer). */
  deltas: number;
  /** Milliseconds between stream events. */
  delayMs: number;
  /** Answer with this status and `errorBody` instead of a result. */
  status?: number;
  errorBody?: unknown;
  /** Extra response headers (on errors too). */
  headers?: Record<string, string>;
  /** Anthropic: after this many text deltas send `event: error` (overloaded_error) and end. */
  errorAfter?: number;
  /** After this many text deltas destroy the socket mid-stream. */
  cutAfter?: number;
  /** After this many text deltas stop sending and wait (the socket stays open). */
  stallAfter?: number;
  /** OpenAI responses: the terminal event (and non-streaming status). */
  responsesFinal?: 'completed' | 'incomplete' | 'failed';
  /** Hold the request until release() is called (before any byte of the answer). */
  hold?: boolean;
  /** OpenAI: the service_tier the response reports (default: the one asked for, else "default"). */
  serviceTier?: string;
  /** Paid web searches: Anthropic's server_tool_use count, OpenAI's web_search_call output items. */
  webSearches?: number;
}

export interface Recorded {
  provider: 'openai' | 'anthropic';
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body as received. */
  raw: string;
  body: Record<string, unknown> | undefined;
  /** The provider key the request carried, if it was a valid one. */
  key: string | undefined;
}

export interface FakeProviders {
  /** OpenAI's origin (its API under /v1). */
  url: string;
  /** Anthropic's origin. */
  anthropicUrl: string;
  openaiKey: string;
  anthropicKey: string;
  requests: Recorded[];
  /** What a model answers; models not set get the defaults. */
  behave(model: string, b: Partial<Behaviour>): void;
  /** Keys accepted besides the gateway's own (BYOK). */
  acceptKey(key: string): void;
  /** Requests waiting because of `hold`. */
  held(): number;
  release(): void;
  close(): Promise<void>;
}

export const DEFAULT_USAGE: FakeUsage = { input: 20, cached: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 10 };
const DEFAULT: Behaviour = { usage: DEFAULT_USAGE, deltas: 3, delayMs: 0 };
const CREATED = 1_767_225_600; // 2026-01-01T00:00:00Z

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startFakeProviders(
  { openaiKey = 'sk-proj-FAKEopenaiKEY0123456789', anthropicKey = 'sk-ant-api03-FAKEanthropicKEY0123456789' } = {},
): Promise<FakeProviders> {
  const behaviours = new Map<string, Partial<Behaviour>>();
  const keys = { openai: new Set([openaiKey]), anthropic: new Set([anthropicKey]) };
  const requests: Recorded[] = [];
  let waiting: (() => void)[] = [];
  let seq = 0;

  const serve = (provider: 'openai' | 'anthropic') => createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> | undefined;
      try {
        body = raw ? JSON.parse(raw) as Record<string, unknown> : undefined;
      } catch {
        body = undefined;
      }
      const path = req.url!.split('?', 1)[0];
      // Each provider's own header: Authorization: Bearer for OpenAI, x-api-key for Anthropic.
      const presented = provider === 'openai'
        ? /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
        : req.headers['x-api-key'] as string | undefined;
      const key = presented !== undefined && keys[provider].has(presented) ? presented : undefined;
      requests.push({ provider, method: req.method!, path: req.url!, headers: req.headers, raw, body, key });
      const model = typeof body?.model === 'string' ? body.model : '';
      const b: Behaviour = { ...DEFAULT, ...behaviours.get(model) };
      const id = ++seq;
      void answer(provider, path, req.method!, body ?? {}, b, key !== undefined, req.headers, res, id).catch(() => res.destroy());
    });
  });

  async function answer(
    provider: 'openai' | 'anthropic', path: string, method: string, body: Record<string, unknown>, b: Behaviour,
    authorized: boolean, headers: IncomingHttpHeaders, res: ServerResponse, id: number,
  ): Promise<void> {
    if (!authorized) {
      return provider === 'openai'
        ? json(res, 401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } })
        : json(res, 401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
    }
    if (provider === 'anthropic' && typeof headers['anthropic-version'] !== 'string') {
      return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'anthropic-version: header is required' } });
    }
    if (b.hold) await new Promise<void>((r) => waiting.push(r));
    if (b.status !== undefined) return json(res, b.status, b.errorBody ?? {}, b.headers);
    const extra = b.headers ?? {};
    if (provider === 'openai') {
      if (method === 'GET' && path === '/v1/models') {
        return json(res, 200, { object: 'list', data: [
          { id: 'gpt-4o', object: 'model', created: CREATED, owned_by: 'system' },
          { id: 'o1-pro', object: 'model', created: CREATED, owned_by: 'system' },
          { id: 'test-gpt', object: 'model', created: CREATED, owned_by: 'system' },
          { id: 'ft:gpt-4o:acme::abc123', object: 'model', created: CREATED, owned_by: 'acme' },
        ] }, extra);
      }
      if (path === '/v1/chat/completions') return chat(res, body, b, id, extra);
      if (path === '/v1/responses') return responses(res, body, b, id, extra);
      if (path === '/v1/embeddings') return embeddings(res, body, b, extra);
      return json(res, 404, { error: { message: `Invalid URL (${method} ${path})`, type: 'invalid_request_error', param: null, code: null } });
    }
    if (method === 'GET' && path === '/v1/models') {
      const model = (id: string, name: string) => ({
        type: 'model', id, display_name: name, created_at: '2026-01-01T00:00:00Z', deprecated_at: null, lifecycle: 'active',
        capabilities: null, line: null, max_input_tokens: 200_000,
      });
      const data = [model('claude-sonnet-4-5-20250929', 'Claude Sonnet 4.5'), model('claude-mythos-preview', 'Claude Mythos Preview'), model('test-sonnet', 'Test Sonnet')];
      return json(res, 200, { data, has_more: false, first_id: data[0].id, last_id: data[data.length - 1].id }, extra);
    }
    if (path === '/v1/messages/count_tokens') return json(res, 200, { input_tokens: b.usage.input }, extra);
    if (path === '/v1/messages') return messages(res, body, b, id, extra);
    return json(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'Not found' } });
  }

  // ---- OpenAI ----

  /** The tier a response reports: the one asked for (OpenAI serves it or says what it used). */
  function tierUsed(body: Record<string, unknown>, b: Behaviour): string {
    return b.serviceTier ?? (body.service_tier === 'priority' || body.service_tier === 'flex' ? body.service_tier : 'default');
  }

  function chatUsage(u: FakeUsage) {
    return {
      prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output,
      prompt_tokens_details: { cached_tokens: u.cached, cache_write_tokens: u.cacheWrite5m, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
  }

  async function chat(res: ServerResponse, body: Record<string, unknown>, b: Behaviour, n: number, extra: Record<string, string>) {
    const id = `chatcmpl-${n}`;
    const model = body.model as string;
    const words = Array.from({ length: b.deltas }, (_, i) => `word${i} `);
    if (body.stream !== true) {
      return json(res, 200, {
        id, object: 'chat.completion', created: CREATED, model,
        choices: [{ index: 0, message: { role: 'assistant', content: words.join(''), refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
        usage: chatUsage(b.usage), service_tier: tierUsed(body, b), system_fingerprint: 'fp_fake',
      }, extra);
    }
    const options = body.stream_options as { include_usage?: boolean } | undefined;
    const includeUsage = options?.include_usage === true;
    const chunk = (delta: unknown, finish: string | null) => ({
      id, object: 'chat.completion.chunk', created: CREATED, model, service_tier: tierUsed(body, b), system_fingerprint: 'fp_fake',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      // With include_usage every chunk carries "usage": null; the last one carries the figures.
      ...(includeUsage && { usage: null }),
    });
    const s = startStream(res, extra);
    await s.send(`data: ${JSON.stringify(chunk({ role: 'assistant', content: '', refusal: null }, null))}\n\n`, b.delayMs);
    for (let i = 0; i < words.length; i++) {
      if (await s.interrupt(i, b)) return;
      await s.send(`data: ${JSON.stringify(chunk({ content: words[i] }, null))}\n\n`, b.delayMs);
    }
    await s.send(`data: ${JSON.stringify(chunk({}, 'stop'))}\n\n`, b.delayMs);
    if (includeUsage) {
      const last = { id, object: 'chat.completion.chunk', created: CREATED, model, service_tier: tierUsed(body, b), system_fingerprint: 'fp_fake', choices: [], usage: chatUsage(b.usage) };
      await s.send(`data: ${JSON.stringify(last)}\n\n`, b.delayMs);
    }
    s.end('data: [DONE]\n\n');
  }

  function searchCall(n: number, i: number) {
    return { id: `ws_${n}_${i}`, type: 'web_search_call', status: 'completed', action: { type: 'search', query: `query ${i}`, sources: null } };
  }

  function responseObject(body: Record<string, unknown>, b: Behaviour, n: number, status: string, text: string | undefined) {
    const u = b.usage;
    const searches = Array.from({ length: b.webSearches ?? 0 }, (_, i) => searchCall(n, i));
    return {
      id: `resp_${n}`, object: 'response', created_at: CREATED, status, background: false, error: null,
      incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
      instructions: null, max_output_tokens: body.max_output_tokens ?? null, model: body.model,
      output: text === undefined ? [] : [...searches, {
        id: `msg_${n}`, type: 'message', status: status === 'in_progress' ? 'in_progress' : 'completed', role: 'assistant',
        content: [{ type: 'output_text', annotations: [], logprobs: [], text }],
      }],
      parallel_tool_calls: true, previous_response_id: null, store: true, temperature: 1, text: { format: { type: 'text' }, verbosity: 'medium' },
      tool_choice: 'auto', tools: body.tools ?? [], top_p: 1, truncation: 'disabled', service_tier: tierUsed(body, b),
      usage: status === 'in_progress' ? null : {
        input_tokens: u.input, input_tokens_details: { cached_tokens: u.cached, cache_write_tokens: u.cacheWrite5m },
        output_tokens: u.output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: u.input + u.output,
      },
      user: null, metadata: {},
    };
  }

  async function responses(res: ServerResponse, body: Record<string, unknown>, b: Behaviour, n: number, extra: Record<string, string>) {
    const words = Array.from({ length: b.deltas }, (_, i) => `word${i} `);
    const final = b.responsesFinal ?? 'completed';
    if (body.stream !== true) return json(res, 200, responseObject(body, b, n, final, words.join('')), extra);
    let sequence = 0;
    const event = (type: string, data: Record<string, unknown>) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...data })}\n\n`;
    const s = startStream(res, extra);
    const itemId = `msg_${n}`;
    await s.send(event('response.created', { response: responseObject(body, b, n, 'in_progress', undefined) }), b.delayMs);
    await s.send(event('response.in_progress', { response: responseObject(body, b, n, 'in_progress', undefined) }), b.delayMs);
    const searches = b.webSearches ?? 0;
    for (let i = 0; i < searches; i++) {
      const { id } = searchCall(n, i);
      await s.send(event('response.output_item.added', { output_index: i, item: { id, type: 'web_search_call', status: 'in_progress', action: { type: 'search', query: `query ${i}` } } }), b.delayMs);
      await s.send(event('response.web_search_call.in_progress', { output_index: i, item_id: id }), b.delayMs);
      await s.send(event('response.web_search_call.searching', { output_index: i, item_id: id }), b.delayMs);
      await s.send(event('response.web_search_call.completed', { output_index: i, item_id: id }), b.delayMs);
      await s.send(event('response.output_item.done', { output_index: i, item: searchCall(n, i) }), b.delayMs);
    }
    const at = searches; // the message's output_index
    await s.send(event('response.output_item.added', { output_index: at, item: { id: itemId, type: 'message', status: 'in_progress', content: [], role: 'assistant' } }), b.delayMs);
    await s.send(event('response.content_part.added', { item_id: itemId, output_index: at, content_index: 0, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } }), b.delayMs);
    for (let i = 0; i < words.length; i++) {
      if (await s.interrupt(i, b)) return;
      await s.send(event('response.output_text.delta', { item_id: itemId, output_index: at, content_index: 0, delta: words[i], logprobs: [] }), b.delayMs);
    }
    const text = words.join('');
    await s.send(event('response.output_text.done', { item_id: itemId, output_index: at, content_index: 0, text, logprobs: [] }), b.delayMs);
    await s.send(event('response.content_part.done', { item_id: itemId, output_index: at, content_index: 0, part: { type: 'output_text', annotations: [], logprobs: [], text } }), b.delayMs);
    await s.send(event('response.output_item.done', { output_index: at, item: { id: itemId, type: 'message', status: 'completed', content: [{ type: 'output_text', annotations: [], logprobs: [], text }], role: 'assistant' } }), b.delayMs);
    s.end(event(`response.${final}`, { response: responseObject(body, b, n, final, text) }));
  }

  function embeddings(res: ServerResponse, body: Record<string, unknown>, b: Behaviour, extra: Record<string, string>) {
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    const vector = [0.25, -0.5, 0.125];
    // The SDK asks for base64 (little-endian float32) and decodes it itself.
    const encode = body.encoding_format === 'base64'
      ? () => Buffer.from(new Float32Array(vector).buffer).toString('base64')
      : () => vector;
    return json(res, 200, {
      object: 'list',
      data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: encode() })),
      model: body.model,
      usage: { prompt_tokens: b.usage.input, total_tokens: b.usage.input },
    }, extra);
  }

  // ---- Anthropic ----

  /** Anthropic reports server tool use only when a server tool ran. */
  function serverToolUse(b: Behaviour) {
    return b.webSearches === undefined ? {} : { server_tool_use: { web_search_requests: b.webSearches, web_fetch_requests: 0 } };
  }

  function anthropicUsage(b: Behaviour, output: number) {
    const u = b.usage;
    return {
      input_tokens: u.input, cache_creation_input_tokens: u.cacheWrite5m + u.cacheWrite1h, cache_read_input_tokens: u.cached,
      cache_creation: { ephemeral_5m_input_tokens: u.cacheWrite5m, ephemeral_1h_input_tokens: u.cacheWrite1h },
      output_tokens: output, service_tier: 'standard', inference_geo: 'global', ...serverToolUse(b),
    };
  }

  async function messages(res: ServerResponse, body: Record<string, unknown>, b: Behaviour, n: number, extra: Record<string, string>) {
    const id = `msg_fake${n}`;
    const model = body.model as string;
    const words = Array.from({ length: b.deltas }, (_, i) => `word${i} `);
    if (body.stream !== true) {
      return json(res, 200, {
        id, type: 'message', role: 'assistant', model, content: [{ type: 'text', text: words.join('') }],
        stop_reason: 'end_turn', stop_sequence: null, usage: anthropicUsage(b, b.usage.output),
      }, extra);
    }
    const event = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    const s = startStream(res, extra);
    await s.send(event('message_start', { message: {
      id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null,
      usage: anthropicUsage(b, 1),
    } }), b.delayMs);
    await s.send(event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }), b.delayMs);
    await s.send(event('ping', {}), b.delayMs);
    for (let i = 0; i < words.length; i++) {
      if (b.errorAfter === i) {
        // The 200 is gone: Anthropic reports the failure as an event and ends the stream.
        return s.end(event('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }));
      }
      if (await s.interrupt(i, b)) return;
      await s.send(event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: words[i] } }), b.delayMs);
    }
    await s.send(event('content_block_stop', { index: 0 }), b.delayMs);
    // Cumulative figures: the input and cache counts again, the output so far.
    const { usage: u } = b;
    await s.send(event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: {
      input_tokens: u.input, cache_creation_input_tokens: u.cacheWrite5m + u.cacheWrite1h, cache_read_input_tokens: u.cached, output_tokens: u.output,
      ...serverToolUse(b),
    } }), b.delayMs);
    s.end(event('message_stop', {}));
  }

  // ---- Wire helpers ----

  function json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-request-id': 'req_fake_upstream', ...extra });
    res.end(text);
  }

  function startStream(res: ServerResponse, extra: Record<string, string>) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': 'req_fake_upstream', ...extra });
    res.flushHeaders();
    return {
      async send(text: string, delayMs: number) {
        if (res.destroyed) throw new Error('client gone');
        res.write(text);
        if (delayMs > 0) await sleep(delayMs);
      },
      /** True when the behaviour stops the stream before delta `i`. */
      async interrupt(i: number, b: Behaviour) {
        if (b.cutAfter === i) {
          res.socket?.destroy();
          return true;
        }
        if (b.stallAfter === i) {
          await new Promise<void>((r) => res.on('close', r));
          return true;
        }
        return false;
      },
      end(text: string) {
        if (!res.destroyed) res.end(text);
      },
    };
  }

  const servers = [serve('openai'), serve('anthropic')];
  const urls = await Promise.all(servers.map(async (server) => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }));
  return {
    url: urls[0],
    anthropicUrl: urls[1],
    openaiKey,
    anthropicKey,
    requests,
    behave(model, b) {
      behaviours.set(model, b);
    },
    acceptKey(key) {
      keys.openai.add(key);
      keys.anthropic.add(key);
    },
    held: () => waiting.length,
    release() {
      const w = waiting;
      waiting = [];
      for (const r of w) r();
    },
    async close() {
      for (const w of waiting) w();
      await Promise.all(servers.map((server) => new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      })));
    },
  };
}

/** Polls until `check` returns a value other than undefined (rows written after the response). */
export async function waitFor<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 1500): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('waitFor: timed out');
    await sleep(5);
  }
}

// ---- A gateway in front of the fake, and what the AI tests read back ----

/** Micro-dollars per million tokens for the test models; costs are worked out by hand in the tests. */
export const TEST_PRICES = {
  'test-gpt': {
    input: 2_500_000, cachedInput: 1_250_000, output: 10_000_000, maxOutput: 16_384, webSearch: 10_000,
    priority: { input: 5_000_000, cachedInput: 2_500_000, output: 20_000_000 },
  },
  'test-sonnet': { input: 3_000_000, cachedInput: 300_000, cacheWrite5m: 3_750_000, cacheWrite1h: 6_000_000, output: 15_000_000, maxOutput: 64_000, webSearch: 10_000 },
  'test-embed': { input: 20_000, output: 0, maxOutput: 0 },
} as const;

/** ⌈micros·tokens / 10^6⌉ summed first: the whole request rounds up once. */
export function ceilMicros(perMillionSum: number): number {
  expect(Number.isSafeInteger(perMillionSum)).toBe(true);
  return Math.ceil(perMillionSum / 1_000_000);
}

export const PLANS = {
  pro: { limits: { perSecond: 1000 }, burst: 1000, monthlyQuota: null, overage: 'credits' },
  limited: { limits: { perMinute: 2 }, monthlyQuota: null, overage: 'credits' },
  gptOnly: { limits: { perSecond: 1000 }, monthlyQuota: null, overage: 'credits', models: ['test-gpt', 'test-embed'] },
  sonnetOnly: { limits: { perSecond: 1000 }, monthlyQuota: null, overage: 'credits', models: ['test-sonnet'] },
  byok: { limits: { perMinute: 3 }, monthlyQuota: null, overage: 'credits', byok: true },
};

/** A gateway for the AI routes on `backend`, pointed at the fake providers. */
export async function startAiGateway(fake: FakeProviders, env: Record<string, string> = {}, backend: Backend = 'sqlite'): Promise<BackendGateway> {
  return startBackendGateway(backend, {
    env: {
      OPENAI_API_KEY: fake.openaiKey, ANTHROPIC_API_KEY: fake.anthropicKey,
      OPENAI_BASE_URL: `${fake.url}/v1`, ANTHROPIC_BASE_URL: fake.anthropicUrl,
      // A client that aborted a stream may leave a fresh connection that never sends a request;
      // Node counts it as active, so close() would wait out the whole shutdown timeout.
      SHUTDOWN_TIMEOUT_MS: '300', ...env,
    },
    file: { prices: TEST_PRICES, plans: PLANS, defaultPlan: 'pro' },
  });
}

export function openaiClient(gw: { url: string }, key: string, headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0, organization: null, project: null, defaultHeaders: headers });
}

export function anthropicClient(gw: { url: string }, key: string, headers: Record<string, string> = {}): Anthropic {
  return new Anthropic({ apiKey: key, baseURL: gw.url, maxRetries: 0, defaultHeaders: headers });
}

export type AiUsageRow = UsageRow;

/** The request's usage row, once the gateway has written it. */
export function usageRow(gw: BackendGateway, requestId: string): Promise<AiUsageRow> {
  return waitFor(() => gw.usageRow(requestId));
}

/** An account on `plan` with `micros` of credit and one key. */
export async function customer(gw: BackendGateway, plan: string, micros = 0): Promise<{ account: { id: string }; key: string }> {
  const { id, key } = await gw.seed(plan, micros);
  return { account: { id }, key };
}

/**
 * The durable balance equals its ledger's sum and never went below zero; returns what the
 * customer has (that balance and what the gateway's leases of it hold unreserved).
 */
export async function expectBalanced(gw: BackendGateway, accountId: string): Promise<number> {
  const { balance, ledgerSum } = await gw.books(accountId);
  expect(balance).toBe(ledgerSum);
  expect(balance).toBeGreaterThanOrEqual(0);
  for (const e of await gw.ledger(accountId)) expect(e.balanceAfterMicros).toBeGreaterThanOrEqual(0);
  return gw.balance(accountId);
}

/** Nothing a client can read names the provider keys. */
export function expectNoProviderKey(fake: FakeProviders, ...texts: unknown[]): void {
  for (const t of texts) {
    const s = typeof t === 'string' ? t : t instanceof Headers ? [...t.entries()].join('\n') : JSON.stringify(t);
    expect(s).not.toContain(fake.openaiKey);
    expect(s).not.toContain(fake.anthropicKey);
  }
}

/** No request that reached the fake carries any of the Tollgate keys (headers or body). */
export function expectNoTollgateKey(fake: FakeProviders, keys: string[]): void {
  const all = JSON.stringify(fake.requests);
  for (const k of keys) expect(all).not.toContain(k);
  for (const r of fake.requests) {
    expect(r.headers['x-provider-key']).toBeUndefined();
    expect(r.headers['x-tollgate-account']).toBeUndefined();
  }
}
