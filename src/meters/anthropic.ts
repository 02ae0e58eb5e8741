// Anthropic's Messages API. A stream reports input and cache tokens in `message_start` and the
// output in each `message_delta`; those figures are cumulative, so they are assigned, not added.
// `input_tokens` excludes cached tokens. An `error` event can arrive after the 200.
import { GatewayError } from '../errors.ts';
import { isRecord } from '../json.ts';
import { bare, freshUsage, limitField, tokens, type Provider, type UsageTracker } from './provider.ts';
import type { SseEvent } from './sse.ts';

export const anthropic: Provider = {
  name: 'anthropic',

  endpoint(method, path) {
    if (method !== 'POST') return undefined;
    const p = bare(path);
    if (p.endsWith('/messages/count_tokens')) return 'free';
    return p.endsWith('/messages') ? 'priced' : undefined;
  },

  parse(_path, body) {
    if (typeof body.model !== 'string' || body.model === '') throw new GatewayError('BAD_REQUEST', { detail: 'model: Field required' });
    let maxOutputTokens: number | undefined;
    try {
      maxOutputTokens = limitField(body, 'max_tokens');
    } catch (err) {
      throw new GatewayError('BAD_REQUEST', { detail: (err as Error).message });
    }
    return { model: body.model, maxOutputTokens, choices: 1, rewritten: undefined, hideUsageChunk: false };
  },

  auth: (key) => ['x-api-key', key],

  tracker: () => new AnthropicTracker(),
};

class AnthropicTracker implements UsageTracker {
  readonly usage = freshUsage();
  seen = false;
  complete = false;

  event(ev: SseEvent): boolean {
    switch (ev.event) {
      case 'message_start':
      case 'message_delta': {
        const json = parse(ev.data);
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
    this.seen = true;
  }
}

function parse(data: string): Record<string, unknown> | undefined {
  try {
    const json: unknown = JSON.parse(data);
    return isRecord(json) ? json : undefined;
  } catch {
    return undefined;
  }
}
