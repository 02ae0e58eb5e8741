// What the gateway needs to know of an AI provider's API: what a request asks for, and where its
// responses report the tokens used. openai.ts and anthropic.ts implement it.
import type { Tier, TokenUsage } from './prices.ts';
import { isRecord } from '../json.ts';
import type { DecodedEvent, SseEvent } from './sse.ts';

export type ProviderName = 'openai' | 'anthropic';

/**
 * What the gateway serves of a provider's API: 'priced' endpoints are paid by their tokens, 'free'
 * ones (model lists, token counts) cost nothing. Anything else — batches, files, fine-tuning,
 * stored responses — would act on the operator's provider account, so it is not served at all.
 */
export type EndpointKind = 'priced' | 'free';

export interface ParsedCall {
  model: string;
  /** max_tokens / max_completion_tokens / max_output_tokens, when the request names one. */
  maxOutputTokens: number | undefined;
  /** How many completions the request asks for (OpenAI's `n`): each may use maxOutputTokens. */
  choices: number;
  /**
   * Fields the gateway sets in the body it sends, added or in place of the client's (OpenAI: the
   * usage chunk of a stream, the default tier); undefined when the client's body goes as it came.
   */
  sets: Record<string, unknown> | undefined;
  /** The client did not ask for the usage chunk the gateway added: it must not see it. */
  hideUsageChunk: boolean;
  /** The response comes as server-sent events. */
  stream: boolean;
  /** The processing tier asked for (what is billed is the tier the response reports). */
  tier: Tier;
  /** The most paid web searches the request allows (0: it offers none), for the reservation. */
  maxWebSearches: number;
}

export interface UsageTracker {
  /** Latest usage reported so far (cumulative figures are assigned, never added). */
  readonly usage: TokenUsage;
  /** Some usage was reported. */
  seen: boolean;
  /** The final usage was reported: the figures are the provider's, not partial. */
  complete: boolean;
  /** The processing tier the response reports, once it did. */
  tier: Tier | undefined;
  /** The text generated in these events of the stream (content, reasoning, tool arguments), for an estimate of the output. */
  generatedText(events: readonly DecodedEvent[]): string;
  /** Reads one stream event; false when the client must not see it. */
  event(ev: SseEvent): boolean;
  /** Reads a whole (non-streaming) JSON response. */
  body(json: unknown): void;
}

export interface Provider {
  name: ProviderName;
  /** Whether the gateway serves this method and path (the client's), and how it is priced. */
  endpoint(method: string, path: string): EndpointKind | undefined;
  /** Reads a priced request. Throws GatewayError('BAD_REQUEST') when the body is not one it takes. */
  parse(path: string, body: Record<string, unknown>): ParsedCall;
  /** Whether this free endpoint lists models (its answer is filtered to the models sold). */
  listsModels(method: string, path: string): boolean;
  /** The model list without the models `keep` refuses. */
  filterModels(list: unknown, keep: (model: string) => boolean): unknown;
  /** The header carrying the provider's key: [name, value]. */
  auth(key: string): [string, string];
  tracker(call: ParsedCall): UsageTracker;
}

/** The path without its query and trailing slashes. */
export function bare(path: string): string {
  const q = path.indexOf('?');
  return (q === -1 ? path : path.slice(0, q)).replace(/\/+$/, '');
}

export function freshUsage(): TokenUsage {
  return { input: 0, cachedInput: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 0, webSearches: 0 };
}

/** A non-negative integer token count, or 0 for anything else a provider might send. */
export function tokens(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : 0;
}

/** The request's tools as objects (a missing or malformed list is the provider's to refuse). */
export function toolsOf(body: Record<string, unknown>): Record<string, unknown>[] {
  return Array.isArray(body.tools) ? body.tools.filter(isRecord) : [];
}

/** A list of `{ id, … }` objects under `data` (both providers' model lists), filtered by id. */
export function filterData(list: unknown, keep: (model: string) => boolean): unknown {
  if (!isRecord(list) || !Array.isArray(list.data)) return list;
  return { ...list, data: list.data.filter((m) => isRecord(m) && typeof m.id === 'string' && keep(m.id)) };
}

/** Parses one event's JSON data; undefined when it is not a JSON object. */
export function parseJson(data: string): Record<string, unknown> | undefined {
  try {
    const json: unknown = JSON.parse(data);
    return isRecord(json) ? json : undefined;
  } catch {
    return undefined;
  }
}

/** A positive integer limit from the request, or undefined; anything else is the client's error. */
export function limitField(body: Record<string, unknown>, name: string): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new TypeError(`${name} must be a positive integer`);
  return v;
}
