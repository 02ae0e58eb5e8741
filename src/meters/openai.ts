// OpenAI's API: chat completions, responses and embeddings are priced by the `usage` they report;
// the model list is free; nothing else is served. In chat streams the usage arrives only in a last chunk the client must ask
// for (stream_options.include_usage), so the gateway always asks and hides it when the client
// did not. `prompt_tokens` includes `cached_tokens`.
import { GatewayError } from '../errors.ts';
import { isRecord } from '../json.ts';
import { bare, freshUsage, limitField, tokens, type ParsedCall, type Provider, type UsageTracker } from './provider.ts';
import type { SseEvent } from './sse.ts';

type Priced = 'chat' | 'responses' | 'embeddings';

function priced(path: string): Priced | undefined {
  const p = bare(path);
  if (p.endsWith('/chat/completions')) return 'chat';
  if (p.endsWith('/responses')) return 'responses';
  if (p.endsWith('/embeddings')) return 'embeddings';
  return undefined;
}

export const openai: Provider = {
  name: 'openai',

  endpoint(method, path) {
    if (method === 'POST' && priced(path)) return 'priced';
    if ((method === 'GET' || method === 'HEAD') && bare(path).endsWith('/models')) return 'free';
    return undefined;
  },

  parse(path, body) {
    const kind = priced(path)!;
    if (typeof body.model !== 'string' || body.model === '') throw new GatewayError('BAD_REQUEST', { detail: '"model" is required.' });
    const stream = body.stream === true;
    let maxOutputTokens: number | undefined;
    let choices = 1;
    try {
      maxOutputTokens = kind === 'chat' ? limitField(body, 'max_completion_tokens') ?? limitField(body, 'max_tokens')
        : kind === 'responses' ? limitField(body, 'max_output_tokens') : 0;
      if (kind === 'chat') choices = limitField(body, 'n') ?? 1;
    } catch (err) {
      throw new GatewayError('BAD_REQUEST', { detail: (err as Error).message });
    }
    let rewritten: Record<string, unknown> | undefined;
    let hideUsageChunk = false;
    if (kind === 'chat' && stream) {
      const options = isRecord(body.stream_options) ? body.stream_options : {};
      hideUsageChunk = options.include_usage !== true;
      if (hideUsageChunk) rewritten = { ...body, stream_options: { ...options, include_usage: true } };
    }
    return { model: body.model, maxOutputTokens, choices, rewritten, hideUsageChunk };
  },

  auth: (key) => ['authorization', `Bearer ${key}`],

  tracker: (call) => new OpenAiTracker(call),
};

// Only a few events carry usage or an error; parsing every token delta would cost more than it tells.
const USAGE_OBJECT = /"usage"\s*:\s*\{/;
// Responses API events that carry the final `response.usage`.
const RESPONSE_DONE = new Set(['response.completed', 'response.incomplete', 'response.failed']);

class OpenAiTracker implements UsageTracker {
  readonly usage = freshUsage();
  seen = false;
  complete = false;

  constructor(private readonly call: ParsedCall) {}

  event(ev: SseEvent): boolean {
    if (ev.data === '[DONE]' || ev.event === 'error') return true;
    if (!USAGE_OBJECT.test(ev.data)) return true;
    let json: unknown;
    try {
      json = JSON.parse(ev.data);
    } catch {
      return true;
    }
    if (!isRecord(json)) return true;
    if (isRecord(json.response) && (RESPONSE_DONE.has(ev.event) || RESPONSE_DONE.has(json.type as string))) {
      this.read(json.response.usage);
      return true;
    }
    if (isRecord(json.usage)) {
      this.read(json.usage);
      // The usage chunk the gateway asked for: no choices, only usage.
      if (this.call.hideUsageChunk && Array.isArray(json.choices) && json.choices.length === 0) return false;
    }
    return true;
  }

  body(json: unknown): void {
    if (isRecord(json)) this.read(json.usage);
  }

  private read(u: unknown): void {
    if (!isRecord(u)) return;
    // Chat and embeddings: prompt/completion tokens. Responses: input/output tokens.
    const input = tokens(u.prompt_tokens ?? u.input_tokens);
    const details = u.prompt_tokens_details ?? u.input_tokens_details;
    const cached = Math.min(input, isRecord(details) ? tokens(details.cached_tokens) : 0);
    this.usage.input = input - cached;
    this.usage.cachedInput = cached;
    this.usage.output = tokens(u.completion_tokens ?? u.output_tokens);
    this.seen = true;
    this.complete = true;
  }
}
