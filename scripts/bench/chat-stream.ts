// The streaming case's fake provider: one OpenAI chat completion, streamed as server-sent events
// shaped like OpenAI's own (a role chunk, content chunks, a finish chunk, with `"usage":null` on
// each when stream_options.include_usage is set, then a usage chunk with empty choices, then
// [DONE]). The upstream writes these events; the bench checks what clients receive against them.
// Fixed ids and timestamps make every stream byte-identical, so a whole stream can be compared.

/** Priced in the gateway's config; whole micro-dollars per token, so a stream's cost is exact. */
export const MODEL = 'bench-chat';
export const MODEL_PRICE = { input: 1_000_000, cachedInput: 500_000, output: 2_000_000, maxOutput: 4096 };
export const PROMPT_TOKENS = 24;

const ID = 'chatcmpl-bench0000000000000000000000';
const CREATED = 1_750_000_000;
const FINGERPRINT = 'fp_bench';

export interface ChatStream {
  /** Chunk events (role, content, finish): what the client sees besides [DONE] and usage. */
  events: number;
  /** Content chunks: one token each, what the usage chunk reports as completion_tokens. */
  completionTokens: number;
  costMicros: number;
}

export function chatStream(events: number): ChatStream {
  if (!Number.isSafeInteger(events) || events < 3) throw new RangeError(`a chat stream needs at least 3 events, got ${events}`);
  const completionTokens = events - 2;
  const costMicros = (PROMPT_TOKENS * MODEL_PRICE.input + completionTokens * MODEL_PRICE.output) / 1_000_000;
  return { events, completionTokens, costMicros };
}

const sse = (data: unknown) => `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
// OpenAI names the tier that served the request in every chunk (the gateway asks for "default").
const chunk = (choices: unknown[], usage: unknown) => ({
  id: ID, object: 'chat.completion.chunk', created: CREATED, model: MODEL, service_tier: 'default', system_fingerprint: FINGERPRINT,
  choices, ...(usage === undefined ? {} : { usage }),
});
const choice = (delta: unknown, finish: string | null) => ({ index: 0, delta, logprobs: null, finish_reason: finish });

/**
 * The events as the upstream writes them, [DONE] last. With include_usage every chunk carries
 * `"usage":null` and the usage chunk comes before [DONE] (OpenAI's API reference, stream_options).
 */
export function upstreamEvents(stream: ChatStream, includeUsage: boolean): string[] {
  const usage = includeUsage ? null : undefined;
  const out = [sse(chunk([choice({ role: 'assistant', content: '', refusal: null }, null)], usage))];
  for (let i = 1; i <= stream.completionTokens; i++) out.push(sse(chunk([choice({ content: ` word${i}` }, null)], usage)));
  out.push(sse(chunk([choice({}, 'stop')], usage)));
  if (includeUsage) {
    out.push(sse(chunk([], {
      prompt_tokens: PROMPT_TOKENS,
      completion_tokens: stream.completionTokens,
      total_tokens: PROMPT_TOKENS + stream.completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    })));
  }
  out.push(sse('[DONE]'));
  return out;
}

/**
 * The whole body a client that did not ask for usage receives. Through the gateway the upstream
 * was asked for it all the same (so chunks carry `"usage":null`) and the usage chunk is taken out.
 */
export function expectedBody(stream: ChatStream, via: 'direct' | 'gateway'): string {
  const events = upstreamEvents(stream, via === 'gateway');
  if (via === 'gateway') events.splice(events.length - 2, 1);
  return events.join('');
}

/** The client's request, without stream_options: a small prompt and max_tokens keep every reservation small. */
export function requestBody(stream: ChatStream): string {
  return JSON.stringify({
    model: MODEL,
    stream: true,
    max_tokens: stream.completionTokens,
    messages: [
      { role: 'system', content: 'You are the Tollgate benchmark.' },
      { role: 'user', content: 'Count words.' },
    ],
  });
}
