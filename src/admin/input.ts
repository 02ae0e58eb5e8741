// Reading an admin request's query and body: anything unexpected is a 422 that names it (an
// unknown field is refused rather than ignored, so a typo never passes for a default).
import { GatewayError } from '../errors.ts';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

// Deliberately loose (RFC 5322 is not a regex): one @, something on each side, a dot in the domain.
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

export function isEmail(text: string): boolean {
  return EMAIL.test(text);
}

export function invalid(detail: string): GatewayError {
  return new GatewayError('INVALID_INPUT', { detail });
}

/** The query's parameters, refusing any not in `allowed` and any given twice. */
export function query(q: URLSearchParams, allowed: readonly string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of q) {
    if (!allowed.includes(name)) throw invalid(`unknown query parameter "${name}" (this endpoint takes: ${allowed.join(', ') || 'none'})`);
    if (out[name] !== undefined) throw invalid(`query parameter "${name}" given twice`);
    out[name] = value;
  }
  return out;
}

/** ?limit=: 1 to MAX_LIMIT, DEFAULT_LIMIT when absent. */
export function limit(value: string | undefined, fallback = DEFAULT_LIMIT): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_LIMIT) throw invalid(`limit: a whole number from 1 to ${MAX_LIMIT}, got "${value}"`);
  return n;
}

export function oneOf<T extends string>(value: string | undefined, name: string, values: readonly T[]): T | undefined {
  if (value === undefined || (values as readonly string[]).includes(value)) return value as T | undefined;
  throw invalid(`${name}: one of ${values.join(', ')}, got "${value}"`);
}

/** The JSON body as an object with only the fields `allowed`. */
export function body(value: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('the body must be a JSON object');
  for (const name of Object.keys(value)) {
    if (!allowed.includes(name)) throw invalid(`unknown field "${name}" (this endpoint takes: ${allowed.join(', ')})`);
  }
  return value as Record<string, unknown>;
}

export function text(o: Record<string, unknown>, name: string, { required = false, max = 200 } = {}): string | undefined {
  const v = o[name];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw invalid(`${name}: a string of 1 to ${max} characters`);
  return v;
}

/** A string, or null to clear it. */
export function nullableText(o: Record<string, unknown>, name: string, max = 200): string | null | undefined {
  return o[name] === null ? null : text(o, name, { max });
}

export function integer(o: Record<string, unknown>, name: string, { min = 0, required = false } = {}): number | undefined {
  const v = o[name];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw invalid(`${name}: a whole number from ${min}`);
  return v;
}
