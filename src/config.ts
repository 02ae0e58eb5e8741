// The only reader of process.env and of the config file. Returns a frozen, validated Config, or
// throws one ConfigError that lists every problem, so a bad deployment fails at start, once.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
/** What happens when the monthly quota is used up. `stripe` (metered overage) comes later. */
export type OveragePolicy = 'block' | 'credits';

export interface RateLimits {
  perSecond?: number;
  perMinute?: number;
  perDay?: number;
}

export interface Plan {
  name: string;
  limits: RateLimits;
  /** Capacity of the per-second bucket (defaults to perSecond). */
  burst?: number;
  /** Metered requests per calendar month (UTC); null means unlimited. */
  monthlyQuota: number | null;
  overage: OveragePolicy;
}

export interface Route {
  path: string;
  upstream: URL;
  priceMicros: number;
  metered: boolean;
  auth: boolean;
  stripPrefix: boolean;
  headers: Readonly<Record<string, string>>;
  timeoutMs: number;
}

export interface Config {
  port: number;
  host: string;
  databasePath: string;
  logLevel: LogLevel;
  upstreamTimeoutMs: number;
  maxBodyBytes: number;
  shutdownTimeoutMs: number;
  /** Where the routes and plans came from: a file path, 'UPSTREAM_URL', or 'demo'. */
  source: string;
  routes: readonly Route[];
  plans: Readonly<Record<string, Plan>>;
  defaultPlan: string;
  /** True when nothing was configured: main.ts starts the built-in echo upstream behind /demo/. */
  demo: boolean;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Used when no config file declares plans: generous, so the gateway works out of the box. */
export const BUILTIN_PLAN: Plan = Object.freeze({
  name: 'default',
  limits: Object.freeze({ perSecond: 100, perMinute: 3000, perDay: 100_000 }),
  burst: 200,
  monthlyQuota: 1_000_000,
  overage: 'block' as const,
});

export const DEMO_PATH = '/demo/';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
const OVERAGE: readonly OveragePolicy[] = ['block', 'credits'];
const ROUTE_KEYS = ['path', 'upstream', 'priceMicros', 'metered', 'auth', 'stripPrefix', 'headers', 'timeoutMs'];
const PLAN_KEYS = ['limits', 'burst', 'monthlyQuota', 'overage'];
const LIMIT_KEYS = ['perSecond', 'perMinute', 'perDay'];
const FILE_KEYS = ['routes', 'plans', 'defaultPlan'];
// A header name as RFC 9110 §5.1 allows it (a token).
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max) {
      problems.push(`${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return n;
  };

  const port = int('PORT', 8080, 0, 65535);
  const host = env.HOST || '127.0.0.1';
  const databasePath = env.DATABASE_PATH || './data/tollgate.db';
  const upstreamTimeoutMs = int('UPSTREAM_TIMEOUT_MS', 30_000, 1);
  const maxBodyBytes = int('MAX_BODY_BYTES', 10 * 1024 * 1024, 0);
  const shutdownTimeoutMs = int('SHUTDOWN_TIMEOUT_MS', 10_000, 0);
  let logLevel: LogLevel = 'info';
  if (env.LOG_LEVEL) {
    if ((LOG_LEVELS as string[]).includes(env.LOG_LEVEL)) logLevel = env.LOG_LEVEL as LogLevel;
    else problems.push(`LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  }

  let routes: Route[] = [];
  let plans: Record<string, Plan> = { default: BUILTIN_PLAN };
  let defaultPlan = 'default';
  let source = 'demo';

  const explicitPath = env.TOLLGATE_CONFIG;
  const configPath = explicitPath || './tollgate.config.json';
  if (explicitPath && !existsSync(explicitPath)) {
    problems.push(`TOLLGATE_CONFIG: file not found: ${explicitPath}`);
  } else if (existsSync(configPath)) {
    source = resolve(configPath);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (err) {
      problems.push(`${configPath}: not valid JSON (${(err as Error).message})`);
    }
    if (parsed !== undefined) {
      const file = parseFile(parsed, upstreamTimeoutMs, problems);
      routes = file.routes;
      if (file.plans) plans = file.plans;
      defaultPlan = file.defaultPlan ?? (file.plans ? Object.keys(file.plans)[0] ?? 'default' : 'default');
      if (!plans[defaultPlan]) problems.push(`defaultPlan: no plan named "${defaultPlan}"`);
    }
  }

  if (env.UPSTREAM_URL) {
    const upstream = parseUrl(env.UPSTREAM_URL, 'UPSTREAM_URL', problems);
    if (upstream) {
      // The catch-all sits below any route from the file: longest prefix wins.
      routes.push(route({ path: '/', upstream }, upstreamTimeoutMs));
      if (source === 'demo') source = 'UPSTREAM_URL';
    }
  }

  if (problems.length > 0) throw new ConfigError(problems);
  const demo = routes.length === 0 && source === 'demo';
  return deepFreeze({
    port, host, databasePath, logLevel, upstreamTimeoutMs, maxBodyBytes, shutdownTimeoutMs,
    source, routes, plans, defaultPlan, demo,
  });
}

/** The route main.ts puts in front of the built-in echo upstream once it knows its port. */
export function demoRoute(upstream: URL, timeoutMs: number): Route {
  return Object.freeze(route({ path: DEMO_PATH, upstream, stripPrefix: true, priceMicros: 1000 }, timeoutMs));
}

function route(r: Partial<Route> & Pick<Route, 'path' | 'upstream'>, timeoutMs: number): Route {
  return {
    priceMicros: 0, metered: true, auth: true, stripPrefix: false, headers: {}, timeoutMs, ...r,
  };
}

interface ParsedFile { routes: Route[]; plans?: Record<string, Plan>; defaultPlan?: string }

function parseFile(raw: unknown, timeoutMs: number, problems: string[]): ParsedFile {
  const out: ParsedFile = { routes: [] };
  if (!isObject(raw)) {
    problems.push('config file: expected a JSON object with "routes" and "plans"');
    return out;
  }
  unknownKeys(raw, FILE_KEYS, '', problems);

  if (raw.routes !== undefined) {
    if (!Array.isArray(raw.routes)) problems.push('routes: expected an array');
    else raw.routes.forEach((r, i) => {
      const parsed = parseRoute(r, `routes[${i}]`, timeoutMs, problems);
      if (parsed) out.routes.push(parsed);
    });
    const seen = new Set<string>();
    for (const r of out.routes) {
      if (seen.has(r.path)) problems.push(`routes: path "${r.path}" is declared twice`);
      seen.add(r.path);
    }
  }

  if (raw.plans !== undefined) {
    if (!isObject(raw.plans)) problems.push('plans: expected an object of plan name → plan');
    else {
      out.plans = {};
      for (const [name, p] of Object.entries(raw.plans)) {
        const plan = parsePlan(name, p, `plans.${name}`, problems);
        if (plan) out.plans[name] = plan;
      }
      if (Object.keys(raw.plans).length === 0) problems.push('plans: declare at least one plan');
    }
  }

  if (raw.defaultPlan !== undefined) {
    if (typeof raw.defaultPlan !== 'string') problems.push('defaultPlan: expected a plan name');
    else out.defaultPlan = raw.defaultPlan;
  }
  return out;
}

function parseRoute(raw: unknown, at: string, timeoutMs: number, problems: string[]): Route | undefined {
  if (!isObject(raw)) {
    problems.push(`${at}: expected an object`);
    return undefined;
  }
  unknownKeys(raw, ROUTE_KEYS, at, problems);
  const before = problems.length;
  if (typeof raw.path !== 'string' || !raw.path.startsWith('/')) problems.push(`${at}.path: expected a path starting with "/"`);
  else if (raw.path.startsWith('/_tollgate')) problems.push(`${at}.path: /_tollgate/ belongs to the gateway`);
  const upstream = typeof raw.upstream === 'string'
    ? parseUrl(raw.upstream, `${at}.upstream`, problems)
    : void problems.push(`${at}.upstream: expected an http(s) URL`);
  const priceMicros = optInt(raw.priceMicros, `${at}.priceMicros`, 0, problems) ?? 0;
  const timeout = optInt(raw.timeoutMs, `${at}.timeoutMs`, 1, problems) ?? timeoutMs;
  const flags: Record<string, boolean> = {};
  for (const [flag, fallback] of [['metered', true], ['auth', true], ['stripPrefix', false]] as const) {
    const v = raw[flag];
    if (v !== undefined && typeof v !== 'boolean') problems.push(`${at}.${flag}: expected true or false`);
    flags[flag] = typeof v === 'boolean' ? v : fallback;
  }
  const headers: Record<string, string> = {};
  if (raw.headers !== undefined) {
    if (!isObject(raw.headers)) problems.push(`${at}.headers: expected an object of header → value`);
    else for (const [k, v] of Object.entries(raw.headers)) {
      if (!HEADER_NAME.test(k) || typeof v !== 'string' || /[\r\n\0]/.test(v)) {
        problems.push(`${at}.headers.${k}: expected a valid header name with a string value`);
      } else headers[k.toLowerCase()] = v;
    }
  }
  if (problems.length > before || !upstream) return undefined;
  return {
    path: raw.path as string, upstream, priceMicros, timeoutMs: timeout, headers,
    metered: flags.metered, auth: flags.auth, stripPrefix: flags.stripPrefix,
  };
}

function parsePlan(name: string, raw: unknown, at: string, problems: string[]): Plan | undefined {
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/i.test(name)) problems.push(`${at}: plan names are letters, digits, - and _`);
  if (!isObject(raw)) {
    problems.push(`${at}: expected an object`);
    return undefined;
  }
  unknownKeys(raw, PLAN_KEYS, at, problems);
  const before = problems.length;
  const limits: RateLimits = {};
  if (raw.limits !== undefined) {
    if (!isObject(raw.limits)) problems.push(`${at}.limits: expected an object`);
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
  if (problems.length > before) return undefined;
  return { name, limits, burst, monthlyQuota, overage };
}

function parseUrl(raw: string, at: string, problems: string[]): URL | undefined {
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

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !(o instanceof URL) && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
