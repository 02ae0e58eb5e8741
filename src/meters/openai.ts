// OpenAI's API: chat completions, responses and embeddings are priced by the `usage` they report;
// the model list is free; nothing else is served. In chat streams the usage arrives only in a
// last chunk the client must ask for (stream_options.include_usage), so the gateway always asks
// and hides it when the client did not. `prompt_tokens` includes `cached_tokens` and
// `cache_write_tokens`. What is billed is the service_tier the response reports.
import { GatewayError } from '../errors.ts';
import { isRecord } from '../json.ts';
import type { Tier } from './prices.ts';
import {
  bare, filterData, freshUsage, limitField, parseJson, tokens, toolsOf, type ParsedCall, type Provider, type UsageTracker,
} from './provider.ts';
import { Marker, type DecodedEvent, type SseEvent } from './sse.ts';

type Priced = 'chat' | 'responses' | 'embeddings';

function priced(path: string): Priced | undefined {
  const p = bare(path);
  if (p.endsWith('/chat/completions')) return 'chat';
  if (p.endsWith('/responses')) return 'responses';
  if (p.endsWith('/embeddings')) return 'embeddings';
  return undefined;
}

const bad = (detail: string) => new GatewayError('BAD_REQUEST', { detail });

// service_tier values the gateway can price. Without one (or with "auto") the provider would use
// the operator's project default, possibly a dearer tier than the customer chose: the gateway
// asks for "default" instead.
const TIERS: Readonly<Record<string, Tier>> = { default: 'standard', flex: 'flex', priority: 'priority' };
// Responses tools that cost only tokens (or run on the client), and the web search, billed per call.
// Others run on the operator's account and bill in ways a request does not show (file search
// over its vector stores, code interpreter containers, image generation): refused.
const TOKEN_TOOLS = new Set(['function', 'custom', 'namespace', 'apply_patch', 'local_shell', 'computer', 'computer_use_preview', 'mcp']);
const WEB_SEARCH = /^web_search(?:_preview)?(?:_\d{4}_\d{2}_\d{2})?$/;
/** Web searches reserved for a request that offers the tool without max_tool_calls. */
const DEFAULT_MAX_SEARCHES = 10;

function checkTools(body: Record<string, unknown>): boolean {
  let search = false;
  for (const tool of toolsOf(body)) {
    const type = typeof tool.type === 'string' ? tool.type : '';
    if (WEB_SEARCH.test(type)) search = true;
    else if (type === 'shell' && isRecord(tool.environment) && tool.environment.type === 'local') continue;
    else if (type === 'tool_search' && tool.execution === 'client') continue;
    else if (!TOKEN_TOOLS.has(type)) throw bad(`The tool "${type}" is not served by this gateway: its cost cannot be metered per request.`);
  }
  return search;
}

export const openai: Provider = {
  name: 'openai',

  endpoint(method, path) {
    if (method === 'POST' && priced(path)) return 'priced';
    if ((method === 'GET' || method === 'HEAD') && bare(path).endsWith('/models')) return 'free';
    return undefined;
  },

  listsModels: (method, path) => method === 'GET' && bare(path).endsWith('/models'),
  filterModels: filterData,

  parse(path, body) {
    const kind = priced(path)!;
    if (typeof body.model !== 'string' || body.model === '') throw bad('"model" is required.');
    const stream = body.stream === true;
    let maxOutputTokens: number | undefined;
    let choices = 1;
    let maxToolCalls: number | undefined;
    try {
      maxOutputTokens = kind === 'chat' ? limitField(body, 'max_completion_tokens') ?? limitField(body, 'max_tokens')
        : kind === 'responses' ? limitField(body, 'max_output_tokens') : 0;
      if (kind === 'chat') choices = limitField(body, 'n') ?? 1;
      if (kind === 'responses') maxToolCalls = limitField(body, 'max_tool_calls');
    } catch (err) {
      throw bad((err as Error).message);
    }
    let sets: Record<string, unknown> | undefined;
    let tier: Tier = 'standard';
    let maxWebSearches = 0;
    let hideUsageChunk = false;
    if (kind !== 'embeddings') {
      const asked = body.service_tier;
      if (asked === undefined || asked === null || asked === 'auto') (sets ??= {}).service_tier = 'default';
      else if (typeof asked === 'string' && Object.hasOwn(TIERS, asked)) tier = TIERS[asked];
      else throw bad(`service_tier ${JSON.stringify(asked)} is not served by this gateway; use "default", "flex" or "priority".`);
    }
    if (kind === 'responses') {
      // A background job runs on after the request; its usage is only seen by polling the
      // operator's account, so it cannot be billed here.
      if (body.background === true) throw bad('Background mode is not served by this gateway: send the request without "background" (stream it for long jobs).');
      if (checkTools(body)) maxWebSearches = maxToolCalls ?? DEFAULT_MAX_SEARCHES;
    }
    if (kind === 'chat') {
      if (body.web_search_options !== undefined) throw bad('web_search_options is not served by this gateway: its searches cannot be metered per request.');
      if (stream) {
        const options = isRecord(body.stream_options) ? body.stream_options : {};
        hideUsageChunk = options.include_usage !== true;
        if (hideUsageChunk) (sets ??= {}).stream_options = { ...options, include_usage: true };
      }
    }
    return { model: body.model, maxOutputTokens, choices, sets, hideUsageChunk, stream, tier, maxWebSearches };
  },

  auth: (key) => ['authorization', `Bearer ${key}`],

  tracker: (call) => new OpenAiTracker(call),
};

// Only a few events carry usage or an error; decoding every token delta would cost more than it
// tells, so events are tested on their bytes first.
const USAGE_OBJECT = /"usage"\s*:\s*\{/;
const SERVICE_TIER = /"service_tier"\s*:\s*"(\w+)"/;
const USAGE_KEY = new Marker('"usage"');
const SERVICE_TIER_KEY = new Marker('"service_tier"');
const WEB_SEARCH_CALL = new Marker('"web_search_call"');
const DONE = Buffer.from('[DONE]');
// Responses API events that carry the final `response.usage`.
const RESPONSE_DONE = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/** USAGE_OBJECT on the event's bytes: a `"usage"` key whose value is an object (not the chunks' `null`). */
function hasUsageObject(ev: SseEvent): boolean {
  const key = USAGE_KEY.bytes.length;
  for (let i = ev.find(USAGE_KEY); i !== -1; i = ev.find(USAGE_KEY, i + key)) {
    let p = skipBlanks(ev, i + key);
    if (ev.byteAt(p) === COLON) p = skipBlanks(ev, p + 1);
    else if (!lineEnd(ev.byteAt(p))) continue;
    if (ev.byteAt(p) === BRACE) return true;
    // JSON broken over data lines has "data:" between its bytes: test the decoded data.
    if (lineEnd(ev.byteAt(p))) return USAGE_OBJECT.test(ev.data);
  }
  return false;
}

const COLON = 0x3a;
const BRACE = 0x7b;
const lineEnd = (c: number | undefined) => c === 0x0a || c === 0x0d;

function skipBlanks(ev: SseEvent, p: number): number {
  for (let c = ev.byteAt(p); c === 0x20 || c === 0x09; c = ev.byteAt(++p));
  return p;
}

function tierOf(v: unknown): Tier | undefined {
  if (typeof v !== 'string') return undefined;
  return v === 'priority' ? 'priority' : v === 'flex' ? 'flex' : 'standard';
}

/** The web search calls among a response's output items: each is billed. */
function searchCalls(output: unknown): number {
  return Array.isArray(output) ? output.filter((item) => isRecord(item) && item.type === 'web_search_call').length : 0;
}

class OpenAiTracker implements UsageTracker {
  readonly usage = freshUsage();
  seen = false;
  complete = false;
  tier: Tier | undefined = undefined;

  constructor(private readonly call: ParsedCall) {}

  event(ev: SseEvent): boolean {
    if (ev.event === 'error' || ev.dataIs(DONE)) return true;
    if (this.tier === undefined && ev.includes(SERVICE_TIER_KEY)) this.tier = tierOf(SERVICE_TIER.exec(ev.data)?.[1]);
    if (ev.event.endsWith('.delta')) return true; // text, for an estimate (generatedText)
    // Responses: a web search started (the final response counts them all).
    if (ev.event === 'response.output_item.added' && ev.includes(WEB_SEARCH_CALL)) this.usage.webSearches++;
    if (!hasUsageObject(ev)) return true;
    const json = parseJson(ev.data);
    if (!json) return true;
    if (isRecord(json.response) && (RESPONSE_DONE.has(ev.event) || RESPONSE_DONE.has(json.type as string))) {
      this.readResponse(json.response);
      return true;
    }
    if (isRecord(json.usage)) {
      this.read(json.usage);
      this.tier = tierOf(json.service_tier) ?? this.tier;
      // The usage chunk the gateway asked for: no choices, only usage.
      if (this.call.hideUsageChunk && Array.isArray(json.choices) && json.choices.length === 0) return false;
    }
    return true;
  }

  body(json: unknown): void {
    if (!isRecord(json)) return;
    if (json.object === 'response') this.readResponse(json);
    else {
      this.read(json.usage);
      this.tier = tierOf(json.service_tier) ?? this.tier;
    }
  }

  generatedText(events: readonly DecodedEvent[]): string {
    let text = '';
    for (const ev of events) {
      // Audio is base64, not text; an error and [DONE] are not JSON of a generation.
      if (ev.event === 'response.audio.delta' || ev.event === 'error') continue;
      const json = parseJson(ev.data);
      if (!json) continue;
      if (typeof json.delta === 'string') text += json.delta; // a Responses *.delta event
      if (!Array.isArray(json.choices)) continue;
      for (const choice of json.choices) {
        const delta = isRecord(choice) && isRecord(choice.delta) ? choice.delta : undefined;
        if (!delta) continue;
        for (const k of ['content', 'refusal', 'reasoning', 'reasoning_content']) if (typeof delta[k] === 'string') text += delta[k];
        const calls = Array.isArray(delta.tool_calls) ? delta.tool_calls : [delta.function_call];
        for (const call of calls) {
          const fn = isRecord(call) && isRecord(call.function) ? call.function : call;
          if (isRecord(fn) && typeof fn.arguments === 'string') text += fn.arguments;
        }
      }
    }
    return text;
  }

  private readResponse(response: Record<string, unknown>): void {
    this.read(response.usage);
    this.tier = tierOf(response.service_tier) ?? this.tier;
    this.usage.webSearches = searchCalls(response.output);
  }

  private read(u: unknown): void {
    if (!isRecord(u)) return;
    // Chat and embeddings: prompt/completion tokens. Responses: input/output tokens.
    const prompt = tokens(u.prompt_tokens ?? u.input_tokens);
    const details = u.prompt_tokens_details ?? u.input_tokens_details;
    const cached = Math.min(prompt, isRecord(details) ? tokens(details.cached_tokens) : 0);
    const written = Math.min(prompt - cached, isRecord(details) ? tokens(details.cache_write_tokens) : 0);
    this.usage.input = prompt - cached - written;
    this.usage.cachedInput = cached;
    this.usage.cacheWrite5m = written;
    this.usage.output = tokens(u.completion_tokens ?? u.output_tokens);
    this.seen = true;
    this.complete = true;
  }
}
