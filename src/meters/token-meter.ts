// Pricing an AI request by its tokens: reserve the worst case before forwarding, watch the
// response for the provider's usage report, settle to the actual cost afterwards (which can
// exceed the reservation when the input held more tokens than bytes: images, files). When the
// report never comes (client gone, stream cut, timeout) the cost is estimated from the usage seen
// so far and the text generated: never zero, never more than the reservation.
import { costMicros, ratesFor, type ModelPrice, type Tier, type TokenUsage } from './prices.ts';
import type { ParsedCall, Provider, UsageTracker } from './provider.ts';
import { eventsOf, SseSplitter } from './sse.ts';
import { countTokens, loadTokenizer } from './text-tokens.ts';

/** A non-streaming response larger than this is passed through unparsed (and estimated). */
const MAX_BUFFERED = 16 * 1024 * 1024;
const NOTHING = Buffer.alloc(0);

/**
 * The most a request can cost: every byte of its body an input token at the dearest input rate
 * (a cache write can cost more than plain input) of its tier — at the long-context rates when the
 * body is that long —, its output limit at the output rate, and every web search it allows.
 */
export function reservationMicros(price: ModelPrice, bodyBytes: number, maxOutputTokens: number, tier: Tier = 'standard', maxWebSearches = 0): number {
  const r = ratesFor(price, tier, bodyBytes);
  const dearestInput = Math.max(r.input, r.cachedInput ?? 0, r.cacheWrite5m ?? 0, r.cacheWrite1h ?? 0);
  const flat: ModelPrice = { input: dearestInput, output: r.output, maxOutput: 0, webSearch: price.webSearch };
  return costMicros(flat, { input: bodyBytes, cachedInput: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: maxOutputTokens, webSearches: maxWebSearches });
}

/** The text of a request body's prompt: its string values but the model name (JSON framing is not a token). */
function promptText(body: Buffer): string {
  let text = '';
  const walk = (v: unknown, key: string): void => {
    if (typeof v === 'string') {
      if (key !== 'model') text += v;
    } else if (Array.isArray(v)) for (const x of v) walk(x, key);
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  try {
    walk(JSON.parse(body.toString('utf8')), '');
  } catch {
    return body.toString('utf8');
  }
  return text;
}

export interface Settlement {
  costMicros: number;
  usage: TokenUsage;
  /** The provider's own figures were missing: the cost is an estimate. */
  estimated: boolean;
}

/** One AI request: what it asked for, what was reserved, and what the response reported. */
export class AiExchange {
  readonly tracker: UsageTracker;
  /** 'stream' parses server-sent events; 'buffer' holds a JSON body to read its usage; 'raw' passes through. */
  mode: 'stream' | 'buffer' | 'raw' = 'raw';
  private splitter: SseSplitter | undefined;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** A priced stream's chunks as they came: read again only for an estimate (generatedText). */
  private readonly streamed: Buffer[] = [];
  /** Response bytes that reached the client: the usage row's response_bytes, and the estimate's base. */
  streamedBytes = 0;
  /** The response was 2xx: the provider did (some of) the work. */
  succeeded = false;

  constructor(
    provider: Provider,
    readonly call: ParsedCall,
    /** Undefined when the request costs the account nothing (free endpoint, own provider key). */
    readonly price: ModelPrice | undefined,
    readonly reservedMicros: number,
    /** The body sent upstream. */
    readonly body: Buffer,
  ) {
    this.tracker = provider.tracker(call);
    this.openaiTokens = provider.name === 'openai';
    // Ready long before a stream could be cut; until then an estimate counts characters / 4.
    if (this.openaiTokens && price !== undefined) void loadTokenizer(call.model);
  }

  private readonly openaiTokens: boolean;

  /** Called with the upstream status and content type; decides how the body is handled. */
  start(status: number, contentType: string | undefined): void {
    this.succeeded = status >= 200 && status < 300;
    if (!this.succeeded) this.mode = 'raw'; // provider errors pass through unchanged
    else if (contentType?.startsWith('text/event-stream')) {
      this.mode = 'stream';
      // Only a stream with an event to hide waits for each event's end before sending it.
      this.splitter = new SseSplitter((ev) => this.tracker.event(ev), this.call.hideUsageChunk);
    } else this.mode = 'buffer';
  }

  /** What to send the client for this chunk (empty when nothing yet): the upstream's bytes or views of them. */
  data(chunk: Buffer): Buffer {
    if (this.mode === 'stream') {
      if (this.price !== undefined) this.streamed.push(chunk); // nothing to estimate otherwise
      const out = this.splitter!.push(chunk);
      this.streamedBytes += out.length;
      return out;
    }
    if (this.mode === 'buffer') {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes <= MAX_BUFFERED) return NOTHING;
      this.mode = 'raw';
      const all = Buffer.concat(this.held);
      this.held = [];
      this.streamedBytes += all.length;
      return all;
    }
    this.streamedBytes += chunk.length;
    return chunk;
  }

  /** The rest to send once the upstream finished (a held JSON body, a cut-off event). */
  end(): Buffer {
    if (this.mode === 'stream') {
      const rest = this.splitter!.end();
      this.streamedBytes += rest.length;
      return rest;
    }
    if (this.mode !== 'buffer') return NOTHING;
    const body = Buffer.concat(this.held);
    this.held = [];
    try {
      this.tracker.body(JSON.parse(body.toString('utf8')));
    } catch {
      // Not JSON: settled as an estimate.
    }
    this.streamedBytes += body.length;
    return body;
  }

  /** The text the stream generated so far (content, reasoning, tool arguments). */
  generatedText(): string {
    return this.tracker.generatedText(eventsOf(this.streamed));
  }

  /** The exact cost, when settle() knows it now (before the response headers go out). */
  knownCost(): number | undefined {
    if (this.price !== undefined && !this.tracker.complete) return undefined;
    const s = this.settle();
    return s instanceof Promise ? undefined : s.costMicros;
  }

  /**
   * The cost, computed once the response is over (the usage report no longer changes). At once
   * when the provider reported it (as knownCost() says); an estimate may count tokens later.
   */
  settle(): Settlement | Promise<Settlement> {
    return (this.settled ??= this.compute());
  }

  private settled: Settlement | Promise<Settlement> | undefined;

  private compute(): Settlement | Promise<Settlement> {
    const { usage, complete, seen } = this.tracker;
    const price = this.price;
    if (price === undefined || !this.succeeded) return { costMicros: 0, usage, estimated: false };
    const tier = this.tracker.tier ?? this.call.tier;
    if (complete) return { costMicros: costMicros(price, usage, tier), usage, estimated: false };
    // No final report: the input as reported (Anthropic's message_start) or the prompt's text,
    // and the output as the tokens of the text generated so far — what the provider bills for
    // a generation of that length, never the SSE and JSON framing around it.
    const estimate = ([input, output]: number[]): Settlement => {
      const u: TokenUsage = { ...usage, input: seen ? usage.input : input, output: Math.max(usage.output, output) };
      return { costMicros: Math.min(this.reservedMicros, Math.max(1, costMicros(price, u, tier))), usage: u, estimated: true };
    };
    const counts = countTokens([seen ? '' : promptText(this.body), this.generatedText()], this.call.model, this.openaiTokens);
    return counts instanceof Promise ? counts.then(estimate) : estimate(counts);
  }
}
