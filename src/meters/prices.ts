// Token prices in integer micro-dollars per million tokens, and the cost of one request's usage,
// rounded up to the micro-dollar. Integer arithmetic only (BigInt: a long context times a high
// price can pass 2^53 before the division).

/** The rates one request is billed at, micro-dollars per million tokens. */
export interface TokenRates {
  /** Uncached input tokens. */
  input: number;
  /** Input read from the provider's prompt cache (defaults to `input`). */
  cachedInput?: number;
  /** Cache writes: Anthropic's 5-minute ones and OpenAI's; Anthropic's 1-hour ones (default to `input`). */
  cacheWrite5m?: number;
  cacheWrite1h?: number;
  output: number;
}

export interface ModelPrice extends TokenRates {
  /** The model's largest output, reserved when a request names no max_tokens. */
  maxOutput: number;
  /** Rates for the whole request once its prompt (uncached, cached and written input) passes `above` tokens. */
  longContext?: TokenRates & { above: number };
  /** OpenAI's priority processing; a request asking for it is refused when the model has none. */
  priority?: TokenRates;
  /** OpenAI's flex processing; without it flex is billed at the standard rates (never below cost). */
  flex?: TokenRates;
  /** Micro-dollars per web search call; a request offering web search is refused without it. */
  webSearch?: number;
}

/** The processing tier a request ran in (OpenAI's service_tier; Anthropic's is always standard here). */
export type Tier = 'standard' | 'priority' | 'flex';

export interface TokenUsage {
  /** Input tokens not read from or written to a cache. */
  input: number;
  cachedInput: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  output: number;
  /** Paid server-side web searches. */
  webSearches: number;
}

export const NO_USAGE: Readonly<TokenUsage> = Object.freeze({ input: 0, cachedInput: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 0, webSearches: 0 });

const M = 1_000_000n;

/** The prompt's size as long-context pricing counts it. */
export function promptTokens(u: TokenUsage): number {
  return u.input + u.cachedInput + u.cacheWrite5m + u.cacheWrite1h;
}

/** The rates a request of `prompt` tokens in `tier` is billed at. */
export function ratesFor(price: ModelPrice, tier: Tier, prompt: number): TokenRates {
  // A tier without its own price bills at the standard rates: admit refuses priority without a
  // price, and flex is never dearer than standard.
  const base = (tier === 'priority' ? price.priority : tier === 'flex' ? price.flex : undefined) ?? price;
  const long = price.longContext !== undefined && prompt > price.longContext.above ? price.longContext : undefined;
  if (!long) return base;
  if (base === price) return long;
  // A tier's published rates exclude long context: take the dearer of the two, rate by rate.
  return {
    input: Math.max(base.input, long.input),
    cachedInput: Math.max(base.cachedInput ?? base.input, long.cachedInput ?? long.input),
    cacheWrite5m: Math.max(base.cacheWrite5m ?? base.input, long.cacheWrite5m ?? long.input),
    cacheWrite1h: Math.max(base.cacheWrite1h ?? base.input, long.cacheWrite1h ?? long.input),
    output: Math.max(base.output, long.output),
  };
}

export function costMicros(price: ModelPrice, u: TokenUsage, tier: Tier = 'standard'): number {
  const r = ratesFor(price, tier, promptTokens(u));
  const total =
    BigInt(u.input) * BigInt(r.input) +
    BigInt(u.cachedInput) * BigInt(r.cachedInput ?? r.input) +
    BigInt(u.cacheWrite5m) * BigInt(r.cacheWrite5m ?? r.input) +
    BigInt(u.cacheWrite1h) * BigInt(r.cacheWrite1h ?? r.input) +
    BigInt(u.output) * BigInt(r.output) +
    BigInt(u.webSearches) * BigInt(price.webSearch ?? 0) * M;
  return Number((total + M - 1n) / M);
}

/**
 * The price of exactly this model name. Dated snapshots are not priced as their alias: some cost
 * more (gpt-4o-2024-05-13 is twice gpt-4o), and a new snapshot may be repriced, so each one the
 * gateway sells is listed.
 */
export function findPrice(table: Readonly<Record<string, ModelPrice>>, model: string): ModelPrice | undefined {
  return Object.hasOwn(table, model) ? table[model] : undefined;
}

const usd = (dollarsPerMillion: number) => Math.round(dollarsPerMillion * 1_000_000);

/** A price written in dollars per million tokens: [input, cached input, output]. */
function openai(input: number, cached: number | undefined, output: number, maxOutput: number, extra: Partial<ModelPrice> = {}): ModelPrice {
  return { input: usd(input), ...(cached !== undefined && { cachedInput: usd(cached) }), output: usd(output), maxOutput, ...extra };
}
const tier = (input: number, cached: number, output: number): TokenRates => ({ input: usd(input), cachedInput: usd(cached), output: usd(output) });
// GPT-5.4 and later: past 272K input tokens the whole request costs 2× input and 1.5× output.
const long272k = (input: number, cached: number, output: number) => ({ longContext: { above: 272_000, ...tier(2 * input, 2 * cached, 1.5 * output) } });
// OpenAI bills a web search call at $10 per 1000 (the search content tokens as input tokens).
const OPENAI_SEARCH = 10_000;

/** Anthropic's rates: input, 5-minute write, 1-hour write, cache hit, output. */
function claude(input: number, write5m: number, write1h: number, hit: number, output: number, maxOutput: number, extra: Partial<ModelPrice> = {}): ModelPrice {
  return { input: usd(input), cacheWrite5m: usd(write5m), cacheWrite1h: usd(write1h), cachedInput: usd(hit), output: usd(output), maxOutput, webSearch: ANTHROPIC_SEARCH, ...extra };
}
// Anthropic bills web search at $10 per 1000 searches; web fetch costs only its tokens.
const ANTHROPIC_SEARCH = 10_000;
const claudeLong = (above: number, input: number, write5m: number, write1h: number, hit: number, output: number) => ({
  longContext: { above, input: usd(input), cacheWrite5m: usd(write5m), cacheWrite1h: usd(write1h), cachedInput: usd(hit), output: usd(output) },
});

function withSnapshots(table: Record<string, ModelPrice>, snapshots: Record<string, string>): Record<string, ModelPrice> {
  for (const [snapshot, alias] of Object.entries(snapshots)) table[snapshot] = table[alias];
  return table;
}

/**
 * The shipped table: standard-tier list prices in USD per million tokens, checked on 2026-12-01
 * against OpenAI's model and priority-processing pages (developers.openai.com/api/docs/models,
 * openai.com/api-priority-processing) and Anthropic's pricing and model pages
 * (platform.claude.com/docs/en/about-claude/pricing). GPT-5.6 Sol is at its promotional price
 * (announced until at least 2026-11-21): check it. Models the SDKs name whose price could not be
 * confirmed (gpt-5.6 priority, claude-fable-5-2, claude-mythos-5-2, claude-mythos-preview, search
 * and audio previews, …) are left out and refused. Override or add models in the config file's
 * "prices" for production.
 */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze(withSnapshots({
  'gpt-5.6-sol': openai(4, 0.4, 20, 128_000, { cacheWrite5m: usd(5), webSearch: OPENAI_SEARCH, ...long272k(4, 0.4, 20) }),
  'gpt-5.6-terra': openai(2, 0.2, 12, 128_000, { cacheWrite5m: usd(2.5), webSearch: OPENAI_SEARCH, ...long272k(2, 0.2, 12) }),
  'gpt-5.6-luna': openai(0.2, 0.02, 1.2, 128_000, { cacheWrite5m: usd(0.25), webSearch: OPENAI_SEARCH, ...long272k(0.2, 0.02, 1.2) }),
  'gpt-5.5': openai(5, 0.5, 30, 128_000, { priority: tier(12.5, 1.25, 75), webSearch: OPENAI_SEARCH, ...long272k(5, 0.5, 30) }),
  'gpt-5.4': openai(2.5, 0.25, 15, 128_000, { priority: tier(5, 0.5, 30), webSearch: OPENAI_SEARCH, ...long272k(2.5, 0.25, 15) }),
  'gpt-5.4-mini': openai(0.75, 0.075, 4.5, 128_000, { priority: tier(1.5, 0.15, 9), webSearch: OPENAI_SEARCH }),
  'gpt-5.4-nano': openai(0.2, 0.02, 1.25, 128_000, { webSearch: OPENAI_SEARCH }),
  'gpt-5.2': openai(1.75, 0.175, 14, 128_000, { priority: tier(3.5, 0.35, 28), webSearch: OPENAI_SEARCH }),
  'gpt-5.1': openai(1.25, 0.125, 10, 128_000, { priority: tier(2.5, 0.25, 20), webSearch: OPENAI_SEARCH }),
  'gpt-5': openai(1.25, 0.125, 10, 128_000, { priority: tier(2.5, 0.25, 20), webSearch: OPENAI_SEARCH }),
  'gpt-5-mini': openai(0.25, 0.025, 2, 128_000, { priority: tier(0.45, 0.045, 3.6), webSearch: OPENAI_SEARCH }),
  'gpt-5-nano': openai(0.05, 0.005, 0.4, 128_000, { webSearch: OPENAI_SEARCH }),
  'gpt-4.1': openai(2, 0.5, 8, 32_768, { priority: tier(3.5, 0.875, 14), webSearch: OPENAI_SEARCH }),
  'gpt-4.1-mini': openai(0.4, 0.1, 1.6, 32_768, { webSearch: OPENAI_SEARCH }),
  'gpt-4.1-nano': openai(0.1, 0.025, 0.4, 32_768),
  'gpt-4o': openai(2.5, 1.25, 10, 16_384, { webSearch: OPENAI_SEARCH }),
  // The first gpt-4o snapshot kept its launch price and had no prompt caching.
  'gpt-4o-2024-05-13': openai(5, undefined, 15, 4_096),
  'gpt-4o-mini': openai(0.15, 0.075, 0.6, 16_384, { webSearch: OPENAI_SEARCH }),
  'o3': openai(2, 0.5, 8, 100_000, { webSearch: OPENAI_SEARCH }),
  'o4-mini': openai(1.1, 0.275, 4.4, 100_000, { webSearch: OPENAI_SEARCH }),
  'text-embedding-3-small': openai(0.02, undefined, 0, 0),
  'text-embedding-3-large': openai(0.13, undefined, 0, 0),
  'text-embedding-ada-002': openai(0.1, undefined, 0, 0),
  'claude-fable-5-1': claude(10, 12.5, 20, 0.25, 50, 128_000),
  'claude-mythos-5-1': claude(10, 12.5, 20, 0.25, 50, 128_000),
  'claude-fable-5': claude(10, 12.5, 20, 1, 50, 128_000),
  'claude-mythos-5': claude(10, 12.5, 20, 1, 50, 128_000),
  'claude-opus-5-5': claude(4, 5, 8, 0.2, 20, 128_000),
  'claude-opus-5': claude(5, 6.25, 10, 0.5, 25, 128_000),
  'claude-opus-4-8': claude(5, 6.25, 10, 0.5, 25, 128_000),
  'claude-opus-4-7': claude(5, 6.25, 10, 0.5, 25, 128_000),
  'claude-opus-4-6': claude(5, 6.25, 10, 0.5, 25, 128_000),
  'claude-opus-4-5': claude(5, 6.25, 10, 0.5, 25, 64_000),
  'claude-sonnet-5-5': claude(2, 2.5, 4, 0.1, 10, 128_000),
  'claude-sonnet-5': claude(2, 2.5, 4, 0.2, 10, 128_000),
  'claude-sonnet-4-6': claude(3, 3.75, 6, 0.3, 15, 64_000),
  // Sonnet 4.5 with the 1M-context beta: past 200K input tokens the whole request is dearer.
  'claude-sonnet-4-5': claude(3, 3.75, 6, 0.3, 15, 64_000, claudeLong(200_000, 6, 7.5, 12, 0.6, 22.5)),
  // Haiku 5.5 is priced by prompt length: past 100K tokens every token of the request costs 5×.
  'claude-haiku-5-5': claude(0.1, 0.125, 0.2, 0.01, 0.5, 64_000, claudeLong(100_000, 0.5, 0.625, 1, 0.05, 2.5)),
  'claude-haiku-4-5': claude(1, 1.25, 2, 0.1, 5, 64_000),
}, {
  'gpt-5.4-mini-2026-03-17': 'gpt-5.4-mini',
  'gpt-5.4-nano-2026-03-17': 'gpt-5.4-nano',
  'gpt-5.2-2025-12-11': 'gpt-5.2',
  'gpt-5.1-2025-11-13': 'gpt-5.1',
  'gpt-5-2025-08-07': 'gpt-5',
  'gpt-5-mini-2025-08-07': 'gpt-5-mini',
  'gpt-5-nano-2025-08-07': 'gpt-5-nano',
  'gpt-4.1-2025-04-14': 'gpt-4.1',
  'gpt-4.1-mini-2025-04-14': 'gpt-4.1-mini',
  'gpt-4.1-nano-2025-04-14': 'gpt-4.1-nano',
  'gpt-4o-2024-11-20': 'gpt-4o',
  'gpt-4o-2024-08-06': 'gpt-4o',
  'gpt-4o-mini-2024-07-18': 'gpt-4o-mini',
  'o3-2025-04-16': 'o3',
  'o4-mini-2025-04-16': 'o4-mini',
  'claude-opus-4-5-20251101': 'claude-opus-4-5',
  'claude-sonnet-4-5-20250929': 'claude-sonnet-4-5',
  'claude-haiku-4-5-20251001': 'claude-haiku-4-5',
}));
