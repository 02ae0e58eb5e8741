// Token prices in integer micro-dollars per million tokens, and the cost of one request's usage,
// rounded up to the micro-dollar. Integer arithmetic only (BigInt: a long context times a high
// price can pass 2^53 before the division).

export interface ModelPrice {
  /** Uncached input tokens. */
  input: number;
  /** Input read from the provider's prompt cache (defaults to `input`). */
  cachedInput?: number;
  /** Anthropic cache writes with a 5-minute and a 1-hour lifetime (default to `input`). */
  cacheWrite5m?: number;
  cacheWrite1h?: number;
  output: number;
  /** The model's largest output, reserved when a request names no max_tokens. */
  maxOutput: number;
}

export interface TokenUsage {
  /** Input tokens not read from or written to a cache. */
  input: number;
  cachedInput: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  output: number;
}

export const NO_USAGE: Readonly<TokenUsage> = Object.freeze({ input: 0, cachedInput: 0, cacheWrite5m: 0, cacheWrite1h: 0, output: 0 });

const M = 1_000_000n;

export function costMicros(price: ModelPrice, u: TokenUsage): number {
  const total =
    BigInt(u.input) * BigInt(price.input) +
    BigInt(u.cachedInput) * BigInt(price.cachedInput ?? price.input) +
    BigInt(u.cacheWrite5m) * BigInt(price.cacheWrite5m ?? price.input) +
    BigInt(u.cacheWrite1h) * BigInt(price.cacheWrite1h ?? price.input) +
    BigInt(u.output) * BigInt(price.output);
  return Number((total + M - 1n) / M);
}

// Dated snapshots ("gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929") are priced as their alias.
const DATED = /-(?:\d{4}-\d{2}-\d{2}|\d{8})$/;

export function findPrice(table: Readonly<Record<string, ModelPrice>>, model: string): ModelPrice | undefined {
  return Object.hasOwn(table, model) ? table[model] : Object.hasOwn(table, model.replace(DATED, '')) ? table[model.replace(DATED, '')] : undefined;
}

const usd = (dollarsPerMillion: number) => Math.round(dollarsPerMillion * 1_000_000);

/**
 * The shipped table: list prices published by OpenAI and Anthropic (standard tier, USD per
 * million tokens) as of 2025. Check them against the providers' pages and override them in the
 * config file's "prices" for production.
 */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  'gpt-5': { input: usd(1.25), cachedInput: usd(0.125), output: usd(10), maxOutput: 128_000 },
  'gpt-5-mini': { input: usd(0.25), cachedInput: usd(0.025), output: usd(2), maxOutput: 128_000 },
  'gpt-5-nano': { input: usd(0.05), cachedInput: usd(0.005), output: usd(0.4), maxOutput: 128_000 },
  'gpt-4.1': { input: usd(2), cachedInput: usd(0.5), output: usd(8), maxOutput: 32_768 },
  'gpt-4.1-mini': { input: usd(0.4), cachedInput: usd(0.1), output: usd(1.6), maxOutput: 32_768 },
  'gpt-4.1-nano': { input: usd(0.1), cachedInput: usd(0.025), output: usd(0.4), maxOutput: 32_768 },
  'gpt-4o': { input: usd(2.5), cachedInput: usd(1.25), output: usd(10), maxOutput: 16_384 },
  'gpt-4o-mini': { input: usd(0.15), cachedInput: usd(0.075), output: usd(0.6), maxOutput: 16_384 },
  'o3': { input: usd(2), cachedInput: usd(0.5), output: usd(8), maxOutput: 100_000 },
  'o4-mini': { input: usd(1.1), cachedInput: usd(0.275), output: usd(4.4), maxOutput: 100_000 },
  'text-embedding-3-small': { input: usd(0.02), output: 0, maxOutput: 0 },
  'text-embedding-3-large': { input: usd(0.13), output: 0, maxOutput: 0 },
  'claude-opus-4-5': { input: usd(5), cachedInput: usd(0.5), cacheWrite5m: usd(6.25), cacheWrite1h: usd(10), output: usd(25), maxOutput: 64_000 },
  'claude-opus-4-1': { input: usd(15), cachedInput: usd(1.5), cacheWrite5m: usd(18.75), cacheWrite1h: usd(30), output: usd(75), maxOutput: 32_000 },
  'claude-sonnet-4-5': { input: usd(3), cachedInput: usd(0.3), cacheWrite5m: usd(3.75), cacheWrite1h: usd(6), output: usd(15), maxOutput: 64_000 },
  'claude-sonnet-4': { input: usd(3), cachedInput: usd(0.3), cacheWrite5m: usd(3.75), cacheWrite1h: usd(6), output: usd(15), maxOutput: 64_000 },
  'claude-haiku-4-5': { input: usd(1), cachedInput: usd(0.1), cacheWrite5m: usd(1.25), cacheWrite1h: usd(2), output: usd(5), maxOutput: 64_000 },
  'claude-3-5-haiku': { input: usd(0.8), cachedInput: usd(0.08), cacheWrite5m: usd(1), cacheWrite1h: usd(1.6), output: usd(4), maxOutput: 8_192 },
});
