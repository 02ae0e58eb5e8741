// Anthropic's Messages API. A stream reports input and cache tokens in `message_start` and the
// output in each `message_delta`; those figures are cumulative, so they are assigned, not added.
// `input_tokens` excludes cached tokens. An `error` event can arrive after the 200. Paid web
// searches are counted in `usage.server_tool_use`.
import { GatewayError } from '../errors.ts';
import { isRecord } from '../json.ts';
import {
  bare, filterData, freshUsage, limitField, parseJson, tokens, toolsOf, type Provider, type UsageTracker,
} from './provider.ts';
import type { DecodedEvent, SseEvent } from './sse.ts';

const bad = (detail: string) => new GatewayError('BAD_REQUEST', { detail });

// Tool types that run on the client or cost only tokens (web fetch), by prefix; `web_search_*`
// is billed per search. Code execution bills container hours and the browser toolset runs on
// Anthropic's side at a cost a request does not show: those, and any type not known here, are
// refused.
const TOKEN_TOOLS = /^(?:custom$|bash_|text_editor_|computer_|memory_|web_fetch_|tool_search_tool_)/;
const WEB_SEARCH = /^web_search_/;
/** Web searches reserved for a web search tool without max_uses. */
const DEFAULT_MAX_SEARCHES = 10;

function checkRequest(body: Record<string, unknown>): number {
  // Fast mode and pinned inference regions are billed at multiples this gateway does not price.
  if (body.speed !== undefined && body.speed !== null && body.speed !== 'standard') throw bad('speed "fast" is not served by this gateway.');
  if (body.inference_geo !== undefined && body.inference_geo !== null && body.inference_geo !== 'global') {
    throw bad('inference_geo is not served by this gateway: regional inference is billed at rates it does not price.');
  }
  let searches = 0;
  for (const tool of toolsOf(body)) {
    const type = typeof tool.type === 'string' ? tool.type : 'custom';
    if (WEB_SEARCH.test(type)) {
      const max = typeof tool.max_uses === 'number' && Number.isSafeInteger(tool.max_uses) && tool.max_uses > 0 ? tool.max_uses : DEFAULT_MAX_SEARCHES;
      searches += max;
    } else if (!TOKEN_TOOLS.test(type)) throw bad(`The tool "${type}" is not served by this gateway: its cost cannot be metered per request.`);
  }
  return searches;
}

export const anthropic: Provider = {
  name: 'anthropic',

  endpoint(method, path) {
    const p = bare(path);
    if (method === 'GET' && p.endsWith('/models')) return 'free';
    if (method !== 'POST') return undefined;
    if (p.endsWith('/messages/count_tokens')) return 'free';
    return p.endsWith('/messages') ? 'priced' : undefined;
  },

  listsModels: (method, path) => method === 'GET' && bare(path).endsWith('/models'),
  filterModels: filterData,

  parse(_path, body) {
    if (typeof body.model !== 'string' || body.model === '') throw bad('model: Field required');
    let maxOutputTokens: number | undefined;
    try {
      maxOutputTokens = limitField(body, 'max_tokens');
    } catch (err) {
      throw bad((err as Error).message);
    }
    const maxWebSearches = checkRequest(body);
    return {
      model: body.model, maxOutputTokens, choices: 1, sets: undefined, hideUsageChunk: false,
      stream: body.stream === true, tier: 'standard', maxWebSearches,
    };
  },

  auth: (key) => ['x-api-key', key],

  tracker: () => new AnthropicTracker(),
};

class AnthropicTracker implements UsageTracker {
  readonly usage = freshUsage();
  seen = false;
  complete = false;
  readonly tier = 'standard' as const;

  event(ev: SseEvent): boolean {
    switch (ev.event) {
      case 'message_start':
      case 'message_delta': {
        const json = parseJson(ev.data);
        const u = ev.event === 'message_start' ? (isRecord(json?.message) ? json.message.usage : undefined) : json?.usage;
        this.read(u);
        return true;
      }
      case 'message_stop':
        if (this.seen) this.complete = true;
        return true;
      default:
        return true;
    }
  }

  body(json: unknown): void {
    if (!isRecord(json)) return;
    this.read(json.usage);
    if (this.seen) this.complete = true;
  }

  generatedText(events: readonly DecodedEvent[]): string {
    let text = '';
    for (const ev of events) {
      if (ev.event !== 'content_block_delta') continue;
      const delta = parseJson(ev.data)?.delta;
      if (!isRecord(delta)) continue;
      // text_delta, thinking_delta, input_json_delta (tool input); signatures are not text.
      for (const k of ['text', 'thinking', 'partial_json']) if (typeof delta[k] === 'string') text += delta[k];
    }
    return text;
  }

  /** Fields present are the latest cumulative figures; fields absent keep their value. */
  private read(u: unknown): void {
    if (!isRecord(u)) return;
    const { usage } = this;
    // message_delta fields may be null: only a number replaces what message_start said.
    const has = (k: string) => typeof u[k] === 'number';
    if (has('input_tokens')) usage.input = tokens(u.input_tokens);
    if (has('cache_read_input_tokens')) usage.cachedInput = tokens(u.cache_read_input_tokens);
    if (has('cache_creation_input_tokens')) {
      const total = tokens(u.cache_creation_input_tokens);
      const split = isRecord(u.cache_creation) ? u.cache_creation : undefined;
      // message_delta repeats the total without the 5m/1h split: keep the 1-hour share already
      // known; with no split ever seen, every write is a 5-minute one (the default TTL).
      const oneHour = Math.min(total, split ? tokens(split.ephemeral_1h_input_tokens) : usage.cacheWrite1h);
      usage.cacheWrite1h = oneHour;
      usage.cacheWrite5m = total - oneHour;
    }
    if (has('output_tokens')) usage.output = tokens(u.output_tokens);
    if (isRecord(u.server_tool_use)) usage.webSearches = tokens(u.server_tool_use.web_search_requests);
    this.seen = true;
  }
}
