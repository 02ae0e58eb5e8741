// The config file: routes, plans, prices and defaultPlan, validated field by field. Every problem
// is collected (with the field's path) so config.ts can refuse to start with one message.
import type { NotificationsConfig, OveragePolicy, Plan, RateLimits, Route } from './config.ts';
import { isRecord } from './json.ts';
import type { ModelPrice } from './meters/prices.ts';
import type { ProviderName } from './meters/provider.ts';
import { parseDollars } from './money.ts';
import { parseNotifications, parsePlanAlerts } from './notify/config-parse.ts';

const OVERAGE: readonly OveragePolicy[] = ['block', 'credits', 'stripe'];
const METERS: readonly ProviderName[] = ['openai', 'anthropic'];
const ROUTE_KEYS = ['path', 'upstream', 'priceMicros', 'metered', 'auth', 'stripPrefix', 'headers', 'timeoutMs', 'meter', 'cors'];
// A browser origin: scheme, host and port, nothing after.
const ORIGIN = /^https?:\/\/[^/?#\s]+$/;
const PLAN_KEYS = ['limits', 'burst', 'monthlyQuota', 'overage', 'models', 'byok', 'stripePrice', 'stripeMeter', 'alerts'];
const LIMIT_KEYS = ['perSecond', 'perMinute', 'perDay'];
const RATE_KEYS = ['input', 'cachedInput', 'cacheWrite5m', 'cacheWrite1h', 'output'];
const PRICE_KEYS = [...RATE_KEYS, 'maxOutput', 'webSearch', 'priority', 'flex', 'longContext'];
const FILE_KEYS = ['routes', 'plans', 'defaultPlan', 'prices', 'credits', 'notifications'];
// A header name as RFC 9110 §5.1 allows it (a token).
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export interface ParsedFile {
  routes: Route[];
  plans?: Record<string, Plan>;
  defaultPlan?: string;
  prices: Record<string, ModelPrice>;
  creditPacks?: number[];
  notifications?: NotificationsConfig;
}

/** Default upstream timeouts: plain routes, and AI ("meter") routes. */
export interface Timeouts { plain: number; ai: number }

export function parseConfigFile(raw: unknown, timeouts: Timeouts, problems: string[]): ParsedFile {
  const out: ParsedFile = { routes: [], prices: {} };
  if (!isRecord(raw)) {
    problems.push('config file: expected a JSON object with "routes" and "plans"');
    return out;
  }
  unknownKeys(raw, FILE_KEYS, '', problems);

  if (raw.routes !== undefined) {
    if (!Array.isArray(raw.routes)) problems.push('routes: expected an array');
    else raw.routes.forEach((r, i) => {
      const parsed = parseRoute(r, `routes[${i}]`, timeouts, problems);
      if (parsed) out.routes.push(parsed);
    });
    const seen = new Set<string>();
    for (const r of out.routes) {
      // Routes match case-insensitively (see pipeline/route.ts).
      const path = r.path.toLowerCase();
      if (seen.has(path)) problems.push(`routes: path "${r.path}" is declared twice`);
      seen.add(path);
    }
  }

  if (raw.plans !== undefined) {
    if (!isRecord(raw.plans)) problems.push('plans: expected an object of plan name → plan');
    else {
      out.plans = {};
      for (const [name, p] of Object.entries(raw.plans)) {
        const plan = parsePlan(name, p, `plans.${name}`, problems);
        if (plan) out.plans[name] = plan;
      }
      if (Object.keys(raw.plans).length === 0) problems.push('plans: declare at least one plan');
    }
  }

  if (raw.prices !== undefined) {
    if (!isRecord(raw.prices)) problems.push('prices: expected an object of model → price');
    else for (const [model, p] of Object.entries(raw.prices)) {
      const price = parsePrice(p, `prices.${model}`, problems);
      if (price) out.prices[model] = price;
    }
  }

  if (raw.credits !== undefined) {
    if (!isRecord(raw.credits)) problems.push('credits: expected an object with "packs"');
    else {
      unknownKeys(raw.credits, ['packs'], 'credits', problems);
      const packs = raw.credits.packs;
      if (!Array.isArray(packs) || packs.length === 0) problems.push('credits.packs: expected a non-empty array of dollar strings such as "25.00"');
      else {
        out.creditPacks = [];
        packs.forEach((p, i) => {
          // Whole cents: Stripe charges in cents.
          if (typeof p !== 'string' || !/^\d{1,7}(\.\d{1,2})?$/.test(p) || /^0*(\.0*)?$/.test(p)) {
            problems.push(`credits.packs[${i}]: expected a positive dollar amount in whole cents, got ${JSON.stringify(p)}`);
          } else out.creditPacks!.push(parseDollars(p));
        });
      }
    }
  }

  if (raw.defaultPlan !== undefined) {
    if (typeof raw.defaultPlan !== 'string') problems.push('defaultPlan: expected a plan name');
    else out.defaultPlan = raw.defaultPlan;
  }
  if (raw.notifications !== undefined) out.notifications = parseNotifications(raw.notifications, problems);
  return out;
}

function parseRoute(raw: unknown, at: string, timeouts: Timeouts, problems: string[]): Route | undefined {
  if (!isRecord(raw)) {
    problems.push(`${at}: expected an object`);
    return undefined;
  }
  unknownKeys(raw, ROUTE_KEYS, at, problems);
  const before = problems.length;
  if (typeof raw.path !== 'string' || !raw.path.startsWith('/')) problems.push(`${at}.path: expected a path starting with "/"`);
  else if (raw.path.startsWith('/_tollgate')) problems.push(`${at}.path: /_tollgate/ belongs to the gateway`);
  const upstreams = parseUpstreams(raw.upstream, `${at}.upstream`, problems);
  const priceMicros = optInt(raw.priceMicros, `${at}.priceMicros`, 0, problems) ?? 0;
  let meter: ProviderName | undefined;
  if (raw.meter !== undefined) {
    if (!(METERS as unknown[]).includes(raw.meter)) problems.push(`${at}.meter: expected one of ${METERS.join(', ')}`);
    else meter = raw.meter as ProviderName;
    if (raw.priceMicros !== undefined) problems.push(`${at}: a route is priced by "meter" or by "priceMicros", not both`);
    if (raw.auth === false) problems.push(`${at}: a "meter" route spends the gateway's provider key, so it needs "auth"`);
  }
  const timeout = optInt(raw.timeoutMs, `${at}.timeoutMs`, 1, problems) ?? (raw.meter !== undefined ? timeouts.ai : timeouts.plain);
  const flags: Record<string, boolean> = {};
  for (const [flag, fallback] of [['metered', true], ['auth', true], ['stripPrefix', false]] as const) {
    const v = raw[flag];
    if (v !== undefined && typeof v !== 'boolean') problems.push(`${at}.${flag}: expected true or false`);
    flags[flag] = typeof v === 'boolean' ? v : fallback;
  }
  const headers: Record<string, string> = {};
  if (raw.headers !== undefined) {
    if (!isRecord(raw.headers)) problems.push(`${at}.headers: expected an object of header → value`);
    else for (const [k, v] of Object.entries(raw.headers)) {
      if (!HEADER_NAME.test(k) || typeof v !== 'string' || /[\r\n\0]/.test(v)) {
        problems.push(`${at}.headers.${k}: expected a valid header name with a string value`);
      } else headers[k.toLowerCase()] = v;
    }
  }
  let cors: string[] | undefined;
  if (raw.cors !== undefined) {
    if (raw.cors === '*') cors = ['*'];
    else if (Array.isArray(raw.cors) && raw.cors.length > 0 && raw.cors.every((o) => typeof o === 'string' && ORIGIN.test(o))) {
      cors = (raw.cors as string[]).map((o) => o.toLowerCase());
    } else problems.push(`${at}.cors: expected "*" or an array of origins such as "https://app.example.com"`);
  }
  if (problems.length > before || !upstreams) return undefined;
  return {
    ...(cors && { cors }),
    path: raw.path as string, upstreams, priceMicros, timeoutMs: timeout, headers,
    metered: flags.metered, auth: flags.auth, stripPrefix: flags.stripPrefix, ...(meter && { meter }),
  };
}

/** One URL, or several (requests are spread over them): `"http://a:9000"` or `["http://a:9000", "http://b:9000"]`. */
function parseUpstreams(raw: unknown, at: string, problems: string[]): URL[] | undefined {
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list) || list.length === 0 || !list.every((u) => typeof u === 'string')) {
    problems.push(`${at}: expected an http(s) URL, or a non-empty array of them`);
    return undefined;
  }
  const before = problems.length;
  const urls = (list as string[]).map((u, i) => parseUrl(u, typeof raw === 'string' ? at : `${at}[${i}]`, problems));
  const origins = new Set(urls.map((u) => u?.origin));
  if (origins.size < urls.length) problems.push(`${at}: an upstream is named twice`);
  return problems.length > before ? undefined : (urls as URL[]);
}

function parsePlan(name: string, raw: unknown, at: string, problems: string[]): Plan | undefined {
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/i.test(name)) problems.push(`${at}: plan names are letters, digits, - and _`);
  if (!isRecord(raw)) {
    problems.push(`${at}: expected an object`);
    return undefined;
  }
  unknownKeys(raw, PLAN_KEYS, at, problems);
  const before = problems.length;
  const limits: RateLimits = {};
  if (raw.limits !== undefined) {
    if (!isRecord(raw.limits)) problems.push(`${at}.limits: expected an object`);
    else {
      unknownKeys(raw.limits, LIMIT_KEYS, `${at}.limits`, problems);
      for (const k of LIMIT_KEYS as (keyof RateLimits)[]) {
        const v = optInt(raw.limits[k], `${at}.limits.${k}`, 1, problems);
        if (v !== undefined) limits[k] = v;
      }
    }
  }
  const burst = optInt(raw.burst, `${at}.burst`, 1, problems);
  const monthlyQuota = raw.monthlyQuota === null ? null : optInt(raw.monthlyQuota, `${at}.monthlyQuota`, 0, problems) ?? null;
  let overage: OveragePolicy = 'block';
  if (raw.overage !== undefined) {
    if ((OVERAGE as unknown[]).includes(raw.overage)) overage = raw.overage as OveragePolicy;
    else problems.push(`${at}.overage: expected one of ${OVERAGE.join(', ')}`);
  }
  let models: string[] | undefined;
  if (raw.models !== undefined) {
    if (!Array.isArray(raw.models) || !raw.models.every((m) => typeof m === 'string' && m !== '')) {
      problems.push(`${at}.models: expected an array of model names`);
    } else models = raw.models as string[];
  }
  if (raw.byok !== undefined && typeof raw.byok !== 'boolean') problems.push(`${at}.byok: expected true or false`);
  const stripe: Pick<Plan, 'stripePrice' | 'stripeMeter'> = {};
  for (const k of ['stripePrice', 'stripeMeter'] as const) {
    if (raw[k] === undefined) continue;
    if (typeof raw[k] !== 'string' || raw[k] === '') problems.push(`${at}.${k}: expected a Stripe id`);
    else stripe[k] = raw[k] as string;
  }
  if (overage === 'stripe' && !stripe.stripeMeter) problems.push(`${at}.stripeMeter: required with "overage": "stripe"`);
  const alerts = raw.alerts === undefined ? undefined : parsePlanAlerts(raw.alerts, `${at}.alerts`, problems);
  if (problems.length > before) return undefined;
  return { name, limits, burst, monthlyQuota, overage, byok: raw.byok === true, ...(models && { models }), ...stripe, ...(alerts && { alerts }) };
}

function parsePrice(raw: unknown, at: string, problems: string[]): ModelPrice | undefined {
  if (!isRecord(raw)) {
    problems.push(`${at}: expected an object of micro-dollars per million tokens`);
    return undefined;
  }
  unknownKeys(raw, PRICE_KEYS, at, problems);
  const before = problems.length;
  const price: Record<string, unknown> = rates(raw, at, problems) ?? {};
  for (const k of ['maxOutput', 'webSearch']) {
    const v = optInt(raw[k], `${at}.${k}`, 0, problems);
    if (v !== undefined) price[k] = v;
    else if (k === 'maxOutput') problems.push(`${at}.${k}: required`);
  }
  // Dearer processing: OpenAI's tiers, and rates for prompts past `above` tokens.
  for (const k of ['priority', 'flex', 'longContext']) {
    const v = raw[k];
    if (v === undefined) continue;
    if (!isRecord(v)) {
      problems.push(`${at}.${k}: expected an object of micro-dollars per million tokens`);
      continue;
    }
    unknownKeys(v, k === 'longContext' ? [...RATE_KEYS, 'above'] : RATE_KEYS, `${at}.${k}`, problems);
    const r: Record<string, number> | undefined = rates(v, `${at}.${k}`, problems);
    if (k === 'longContext') {
      const above = optInt(v.above, `${at}.${k}.above`, 1, problems);
      if (above === undefined) problems.push(`${at}.${k}.above: required (prompt tokens)`);
      else if (r) r.above = above;
    }
    if (r) price[k] = r;
  }
  return problems.length > before ? undefined : (price as unknown as ModelPrice);
}

function rates(raw: Record<string, unknown>, at: string, problems: string[]): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  const before = problems.length;
  for (const k of RATE_KEYS) {
    const v = optInt(raw[k], `${at}.${k}`, 0, problems);
    if (v !== undefined) out[k] = v;
    else if ((k === 'input' || k === 'output') && raw[k] === undefined) problems.push(`${at}.${k}: required`);
  }
  return problems.length > before ? undefined : out;
}

export function parseUrl(raw: string, at: string, problems: string[]): URL | undefined {
  try {
    const url = new URL(raw);
    if (url.protocol === 'http:' || url.protocol === 'https:') {
      if (url.search || url.hash || url.username) problems.push(`${at}: no query, fragment or credentials in "${raw}"`);
      else return url;
    } else problems.push(`${at}: expected an http(s) URL, got "${raw}"`);
  } catch {
    problems.push(`${at}: not a URL: "${raw}"`);
  }
  return undefined;
}

function optInt(v: unknown, at: string, min: number, problems: string[]): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    problems.push(`${at}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return v;
}

function unknownKeys(obj: Record<string, unknown>, allowed: string[], at: string, problems: string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) problems.push(`${at ? `${at}.` : ''}${k}: unknown field (allowed: ${allowed.join(', ')})`);
  }
}


