// The only reader of process.env and of the config file. Returns a frozen, validated Config, or
// throws one ConfigError that lists every problem, so a bad deployment fails at start, once.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseConfigFile, parseUrl } from './config-file.ts';
import { DEFAULT_PRICES, type ModelPrice } from './meters/prices.ts';
import type { ProviderName } from './meters/provider.ts';
import { parseTrustProxy } from './pipeline/trusted-proxies.ts';
import type { NotificationType } from './storage/ports.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
/** Which requests get an access-log line: every one, those answered with a status ≥ 400, none. */
export type AccessLog = 'all' | 'errors' | 'off';
/**
 * What happens when the monthly quota is used up: refuse (402), pay from prepaid credits, or allow
 * and report the overage to Stripe as a billing meter event.
 */
export type OveragePolicy = 'block' | 'credits' | 'stripe';

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
  /** AI routes: the models this plan may call; undefined allows every priced model. */
  models?: readonly string[];
  /** AI routes: a client may send its own provider key in X-Provider-Key and pay nothing. */
  byok: boolean;
  /** The Stripe price a subscription to this plan uses (subscriptions map back to plans by it). */
  stripePrice?: string;
  /** The Stripe billing meter's event name that overage is reported under (overage "stripe"). */
  stripeMeter?: string;
  /** When balance.low and quota.threshold fire (defaults: PLAN_ALERTS in notify/config-parse.ts). */
  alerts?: PlanAlerts;
}

export interface PlanAlerts {
  /** balance.low once the balance falls below this (0: never; an account may set its own). */
  lowBalanceMicros: number;
  /** quota.threshold once each of these percentages of the period's quota is used, ascending. */
  quotaPercent: readonly number[];
}

/** Where events go (see src/notify/). */
export interface NotificationsConfig {
  webhooks: readonly WebhookTarget[];
  email: EmailSettings | undefined;
  /** The gateway's address as customers call it: the how-to lines of emails start with it. */
  publicUrl: URL | undefined;
}

export interface WebhookTarget {
  url: URL;
  /** The Standard Webhooks signing secret, "whsec_" and base64 of 24 to 64 random bytes. */
  secret: string;
  /** The event types it receives; undefined: all of them. */
  events: readonly NotificationType[] | undefined;
}

export interface EmailSettings {
  /** smtp://user:pass@host:587 (STARTTLS when offered) or smtps://…:465. */
  smtp: URL;
  from: string;
  /** The operator's addresses. */
  to: readonly string[];
  /** Also the account's own email address. */
  customers: boolean;
  /** The event types mailed; undefined: all of them. */
  events: readonly NotificationType[] | undefined;
}

export interface StripeConfig {
  secretKey: string;
  /** Several during a rotation: a signature made with any of them is accepted. */
  webhookSecrets: readonly string[];
  successUrl: string;
  cancelUrl: string;
  portalReturnUrl: string;
  /** Where the stripe client connects; tests point it at a local fake. */
  apiBase: URL | undefined;
  /** How long a past_due subscription keeps access. */
  pastDueGraceMs: number;
  /** Overage is summed per account over intervals of this length, one meter event each. */
  meterIntervalMs: number;
  /** Top-up amounts a customer may buy, in micro-dollars (whole cents). */
  creditPacks: readonly number[];
}

export interface Route {
  path: string;
  /** One or more: requests are spread over them, and one that keeps failing is left out a while. */
  upstreams: readonly URL[];
  priceMicros: number;
  metered: boolean;
  auth: boolean;
  stripPrefix: boolean;
  headers: Readonly<Record<string, string>>;
  timeoutMs: number;
  /** An AI provider's API: priced by the tokens it reports, errors in its dialect. */
  meter?: ProviderName;
  /** Matches only requests carrying this header (set on ready-made AI routes that share a path). */
  whenHeader?: string;
  /** Browser origins that may call this route ('*': any); the gateway answers their preflights. */
  cors?: readonly string[];
}

/** What one client may hold of the gateway: slow or greedy clients must not starve the rest. */
export interface ClientLimits {
  /** Until a request's headers are complete (→ 408). */
  headersTimeoutMs: number;
  /** Between two chunks of a request body (→ 408). */
  bodyTimeoutMs: number;
  /** How long a response may wait for a client that stopped reading before it is cut. */
  writeTimeoutMs: number;
  /** Upstream requests at once per account (per client address on auth-free routes) (→ 429). */
  maxConcurrent: number;
}

/** How the gateway's memory meets the database (see src/state/). */
export interface StorageLimits {
  /** The most one lease takes out of a balance; Infinity (the default) takes all of it. */
  leaseMaxMicros: number;
  /** A lease unused this long goes back to the balance. */
  leaseIdleMs: number;
  /** How long an account's counters wait in memory before they are written (many requests, one write). */
  counterDelayMs: number;
  /** Usage rows queued while the database refuses writes, before readiness turns false. */
  maxQueuedRows: number;
  /** Raw usage rows older than this many days are deleted (rollups and the ledger stay); 0: kept. */
  retentionDays: number;
}

/** The admin API's own listener (src/admin/): on only when ADMIN_TOKEN is set. */
export interface AdminConfig {
  port: number;
  host: string;
  /** Bearer tokens accepted (several during a rotation). */
  tokens: readonly string[];
}

/** Where the CLI reaches a running gateway's admin API (--url / TOLLGATE_ADMIN_URL). */
export interface AdminClientConfig {
  url: URL;
  token: string;
}

export interface Config {
  port: number;
  host: string;
  databasePath: string;
  /** postgres://…: several gateways share one PostgreSQL database (src/pg/); unset: the SQLite file. */
  databaseUrl: string | undefined;
  /** On PostgreSQL: how long a node may be silent before the others end its leases. */
  nodeTtlMs: number;
  /** redis://…: the nodes' rate-limit buckets live there rather than in PostgreSQL. */
  redisUrl: string | undefined;
  logLevel: LogLevel;
  accessLog: AccessLog;
  /** Addresses and CIDRs of the proxies whose X-Forwarded-* are believed (none by default). */
  trustProxy: readonly string[];
  upstreamTimeoutMs: number;
  /** The same for AI routes: reasoning models think for minutes before their first byte. */
  aiTimeoutMs: number;
  /** Connections per upstream origin. */
  upstreamConnections: number;
  maxBodyBytes: number;
  shutdownTimeoutMs: number;
  clients: ClientLimits;
  storage: StorageLimits;
  /** Where the routes and plans came from: a file path, 'UPSTREAM_URL', or 'demo'. */
  source: string;
  routes: readonly Route[];
  plans: Readonly<Record<string, Plan>>;
  defaultPlan: string;
  /** True when nothing was configured: main.ts starts the built-in echo upstream behind /demo/. */
  demo: boolean;
  /** Micro-dollars per million tokens, by model: the shipped table overridden by the file's. */
  prices: Readonly<Record<string, ModelPrice>>;
  /** The keys the gateway puts on AI requests in place of the client's Tollgate key. */
  providerKeys: Readonly<Partial<Record<ProviderName, string>>>;
  /** Undefined without STRIPE_SECRET_KEY: the billing endpoints then answer 503. */
  stripe: StripeConfig | undefined;
  /** Undefined without ADMIN_TOKEN: no admin listener. */
  admin: AdminConfig | undefined;
  /** Undefined without a "notifications" block in the config file: no events are sent. */
  notifications: NotificationsConfig | undefined;
  /** Self-serve signup (/_tollgate/signup): off, open (a key for an email), or after a paid Stripe Checkout. */
  signup: SignupMode;
}

export type SignupMode = 'off' | 'open' | 'checkout';
const SIGNUP_MODES: readonly SignupMode[] = ['off', 'open', 'checkout'];

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
  byok: false,
});

export const DEMO_PATH = '/demo/';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
const ACCESS_LOGS: readonly AccessLog[] = ['all', 'errors', 'off'];
// The ready-made AI routes added when a provider's key is set: [path, path at the provider,
// metered, only for requests with this header]. Both providers list models at /v1/models; every
// Anthropic client sends anthropic-version.
const AI_ROUTES: Record<ProviderName, [string, string, boolean, string?][]> = {
  openai: [
    ['/v1/chat/completions', '/chat/completions', true],
    ['/v1/responses', '/responses', true],
    ['/v1/embeddings', '/embeddings', true],
    ['/v1/models', '/models', false],
  ],
  anthropic: [
    ['/v1/messages', '/v1/messages', true],
    ['/v1/messages/count_tokens', '/v1/messages/count_tokens', false],
    ['/v1/models', '/v1/models', false, 'anthropic-version'],
  ],
};

type Env = Record<string, string | undefined>;

export interface LoadOptions {
  /**
   * False for operator commands (the CLI): the settings only a serving gateway uses may be missing
   * (the Stripe key a plan sells through, the Checkout and portal URLs, an AI route's provider key);
   * a command that needs one of them checks for it itself.
   */
  serving?: boolean;
}

export function loadConfig(env: Env = process.env, { serving = true }: LoadOptions = {}): Config {
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
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL: expected a PostgreSQL URL (postgres://user:password@host:5432/db)');
  }
  const nodeTtlMs = int('NODE_TTL_MS', 10_000, 300);
  const redisUrl = env.REDIS_URL || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) problems.push('REDIS_URL: expected a Redis URL (redis://host:6379)');
  if (redisUrl !== undefined && databaseUrl === undefined) {
    problems.push('REDIS_URL: Redis shares rate limits between gateways on one PostgreSQL; set DATABASE_URL too, or unset REDIS_URL');
  }
  const upstreamTimeoutMs = int('UPSTREAM_TIMEOUT_MS', 30_000, 1);
  const aiTimeoutMs = int('AI_UPSTREAM_TIMEOUT_MS', 600_000, 1);
  const maxBodyBytes = int('MAX_BODY_BYTES', 10 * 1024 * 1024, 0);
  // Long enough for most AI streams to finish; one still running after it is cut and estimated.
  const shutdownTimeoutMs = int('SHUTDOWN_TIMEOUT_MS', 60_000, 0);
  const upstreamConnections = int('UPSTREAM_CONNECTIONS', 256, 1);
  const clients: ClientLimits = {
    headersTimeoutMs: int('CLIENT_HEADERS_TIMEOUT_MS', 10_000, 1),
    bodyTimeoutMs: int('CLIENT_BODY_TIMEOUT_MS', 30_000, 1),
    writeTimeoutMs: int('CLIENT_WRITE_TIMEOUT_MS', 60_000, 1),
    maxConcurrent: int('MAX_CONCURRENT_PER_CLIENT', 64, 1),
  };
  const storage: StorageLimits = {
    leaseMaxMicros: env.LEASE_MAX_MICROS ? int('LEASE_MAX_MICROS', 0, 1) : Infinity,
    leaseIdleMs: int('LEASE_IDLE_MS', 600_000, 1),
    counterDelayMs: int('COUNTER_DELAY_MS', 120_000, 0),
    maxQueuedRows: int('MAX_QUEUED_ROWS', 100_000, 1),
    retentionDays: int('USAGE_RETENTION_DAYS', 90, 0),
  };
  if (clients.maxConcurrent >= upstreamConnections) {
    problems.push(`MAX_CONCURRENT_PER_CLIENT (${clients.maxConcurrent}) must be below UPSTREAM_CONNECTIONS (${upstreamConnections}), or one client can take every connection`);
  }
  let logLevel: LogLevel = 'info';
  if (env.LOG_LEVEL) {
    if ((LOG_LEVELS as string[]).includes(env.LOG_LEVEL)) logLevel = env.LOG_LEVEL as LogLevel;
    else problems.push(`LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  }
  let accessLog: AccessLog = 'all';
  if (env.ACCESS_LOG) {
    if ((ACCESS_LOGS as string[]).includes(env.ACCESS_LOG)) accessLog = env.ACCESS_LOG as AccessLog;
    else problems.push(`ACCESS_LOG: expected one of ${ACCESS_LOGS.join(', ')}, got "${env.ACCESS_LOG}"`);
  }
  const trustProxy = parseTrustProxy(env.TRUST_PROXY, problems);

  let routes: Route[] = [];
  let plans: Record<string, Plan> = { default: BUILTIN_PLAN };
  let defaultPlan = 'default';
  let source = 'demo';
  let prices: Record<string, ModelPrice> = { ...DEFAULT_PRICES };
  let creditPacks = DEFAULT_PACKS;
  let notifications: NotificationsConfig | undefined;

  const explicitPath = env.TOLLGATE_CONFIG;
  const configPath = explicitPath || './tollgate.config.json';
  if (explicitPath && !existsSync(explicitPath)) {
    problems.push(`TOLLGATE_CONFIG: file not found: ${explicitPath}`);
  } else if (existsSync(configPath)) {
    source = resolve(configPath);
    let parsed: unknown;
    const text = readFileSync(configPath, 'utf8');
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      problems.push(`${configPath}: not valid JSON: ${whereInJson(text, (err as Error).message)}`);
    }
    if (parsed !== undefined) {
      const file = parseConfigFile(parsed, { plain: upstreamTimeoutMs, ai: aiTimeoutMs }, problems);
      routes = file.routes;
      if (file.plans) plans = file.plans;
      prices = { ...prices, ...file.prices };
      creditPacks = file.creditPacks ?? creditPacks;
      notifications = file.notifications;
      defaultPlan = file.defaultPlan ?? (file.plans ? Object.keys(file.plans)[0] ?? 'default' : 'default');
      if (!plans[defaultPlan]) problems.push(`defaultPlan: no plan named "${defaultPlan}"`);
    }
  }

  if (env.UPSTREAM_URL) {
    const upstream = parseUrl(env.UPSTREAM_URL, 'UPSTREAM_URL', problems);
    if (upstream && routes.some((r) => r.path === '/')) {
      problems.push('UPSTREAM_URL: the config file already declares a route for "/"');
    } else if (upstream) {
      // The catch-all sits below any route from the file: longest prefix wins.
      routes.push(route({ path: '/', upstreams: [upstream] }, upstreamTimeoutMs));
      if (source === 'demo') source = 'UPSTREAM_URL';
    }
  }

  const fileRoutes = new Set(routes.map((r) => r.path));
  const providerKeys: Partial<Record<ProviderName, string>> = {};
  const providerBase: Record<ProviderName, [string, string]> = {
    openai: ['OPENAI_BASE_URL', 'https://api.openai.com/v1'],
    anthropic: ['ANTHROPIC_BASE_URL', 'https://api.anthropic.com'],
  };
  for (const provider of ['openai', 'anthropic'] as const) {
    const keyVar = `${provider.toUpperCase()}_API_KEY`;
    const key = env[keyVar];
    if (key) providerKeys[provider] = key;
    const [baseVar, fallback] = providerBase[provider];
    const base = parseUrl(env[baseVar] || fallback, baseVar, problems);
    if (!key || !base) continue;
    const basePath = base.pathname.replace(/\/$/, '');
    for (const [path, at, metered, whenHeader] of AI_ROUTES[provider]) {
      if (fileRoutes.has(path)) continue; // the file's own route wins
      const upstream = new URL(base.origin + basePath + at);
      routes.push(route({ path, upstreams: [upstream], metered, stripPrefix: true, meter: provider, ...(whenHeader && { whenHeader }) }, aiTimeoutMs));
    }
  }
  const byokAllowed = Object.values(plans).some((p) => p.byok);
  for (const r of routes) {
    if (serving && r.meter && !providerKeys[r.meter] && !byokAllowed) {
      problems.push(`route ${r.path}: meter "${r.meter}" needs ${r.meter.toUpperCase()}_API_KEY (or a plan with "byok": true)`);
    }
  }

  const stripe = stripeConfig(env, int, creditPacks, serving, problems);
  for (const plan of Object.values(plans)) {
    if (serving && (plan.overage === 'stripe' || plan.stripePrice) && !stripe) {
      problems.push(`plans.${plan.name}: uses Stripe, which needs STRIPE_SECRET_KEY`);
    }
  }

  const admin = adminConfig(env, int, { port, host }, problems);
  let signup: SignupMode = 'off';
  if (env.SIGNUP) {
    if (SIGNUP_MODES.includes(env.SIGNUP as SignupMode)) signup = env.SIGNUP as SignupMode;
    else problems.push(`SIGNUP: expected one of ${SIGNUP_MODES.join(', ')}, got "${env.SIGNUP}"`);
  }
  if (serving && signup === 'checkout' && !stripe) problems.push('SIGNUP: "checkout" needs Stripe (STRIPE_SECRET_KEY)');

  if (problems.length > 0) throw new ConfigError(problems);
  const demo = routes.length === 0 && source === 'demo';
  return deepFreeze({
    port, host, databasePath, databaseUrl, nodeTtlMs, redisUrl, logLevel, accessLog, trustProxy, upstreamTimeoutMs, aiTimeoutMs, upstreamConnections, maxBodyBytes, shutdownTimeoutMs, clients, storage,
    source, routes, plans, defaultPlan, demo, prices, providerKeys, stripe, admin, notifications, signup,
  });
}

/** Shorter tokens could be guessed over the network; `openssl rand -hex 32` makes a good one. */
const MIN_ADMIN_TOKEN = 16;

function adminConfig(env: Env, int: (name: string, fallback: number, min: number, max?: number) => number,
  gateway: { port: number; host: string }, problems: string[]): AdminConfig | undefined {
  const port = int('ADMIN_PORT', 8081, 0, 65535);
  const host = env.ADMIN_HOST || '127.0.0.1';
  if (!env.ADMIN_TOKEN) return undefined;
  const tokens = env.ADMIN_TOKEN.split(',').map((t) => t.trim()).filter(Boolean);
  if (tokens.length === 0) problems.push('ADMIN_TOKEN: no token in it (tokens are comma-separated)');
  for (const [i, t] of tokens.entries()) {
    if (t.length < MIN_ADMIN_TOKEN) problems.push(`ADMIN_TOKEN: token ${i + 1} has ${t.length} characters; at least ${MIN_ADMIN_TOKEN} are needed (e.g. openssl rand -hex 32)`);
  }
  if (port !== 0 && port === gateway.port && host === gateway.host) problems.push(`ADMIN_PORT: ${port} is the gateway's own PORT`);
  return { port, host, tokens };
}

/**
 * The CLI's remote mode: `--url` (else TOLLGATE_ADMIN_URL) with TOLLGATE_ADMIN_TOKEN; undefined
 * when no URL is given (the CLI then works on the database file).
 */
export function loadAdminClient(env: Env, url: string | undefined): AdminClientConfig | undefined {
  const raw = url ?? env.TOLLGATE_ADMIN_URL;
  if (!raw) return undefined;
  const problems: string[] = [];
  const parsed = parseUrl(raw, url === undefined ? 'TOLLGATE_ADMIN_URL' : '--url', problems);
  const token = env.TOLLGATE_ADMIN_TOKEN?.trim();
  if (!token) problems.push('TOLLGATE_ADMIN_TOKEN: required to reach the admin API (one of the gateway\'s ADMIN_TOKEN tokens)');
  if (problems.length > 0 || !parsed || !token) throw new ConfigError(problems);
  return { url: parsed, token };
}

/** V8 says "… in JSON at position 27"; an editor wants "line 3, column 5". */
export function whereInJson(text: string, message: string): string {
  const m = / in JSON at position (\d+)/.exec(message);
  if (!m) return message;
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return `line ${line}, column ${column}: ${message.replace(/ in JSON at position \d+.*$/, '')}`;
}

const DEFAULT_PACKS = [10_000_000, 25_000_000, 50_000_000, 100_000_000];

function stripeConfig(env: Env, int: (name: string, fallback: number, min: number) => number, creditPacks: number[], serving: boolean, problems: string[]): StripeConfig | undefined {
  const secretKey = env.STRIPE_SECRET_KEY;
  if (!secretKey) return undefined;
  const url = (name: string): string => {
    const raw = env[name];
    if (!raw) {
      if (serving) problems.push(`${name}: required with STRIPE_SECRET_KEY`);
    } else if (!/^https?:\/\//.test(raw)) problems.push(`${name}: expected an http(s) URL, got "${raw}"`);
    return raw ?? '';
  };
  return {
    secretKey,
    webhookSecrets: (env.STRIPE_WEBHOOK_SECRET ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    successUrl: url('CHECKOUT_SUCCESS_URL'),
    cancelUrl: url('CHECKOUT_CANCEL_URL'),
    portalReturnUrl: url('PORTAL_RETURN_URL'),
    apiBase: env.STRIPE_API_BASE ? parseUrl(env.STRIPE_API_BASE, 'STRIPE_API_BASE', problems) : undefined,
    pastDueGraceMs: int('PAST_DUE_GRACE_HOURS', 72, 0) * 3_600_000,
    meterIntervalMs: int('METER_INTERVAL_SECONDS', 60, 1) * 1000,
    creditPacks,
  };
}

/** The route main.ts puts in front of the built-in echo upstream once it knows its port. */
export function demoRoute(upstream: URL, timeoutMs: number): Route {
  return Object.freeze(route({ path: DEMO_PATH, upstreams: [upstream], stripPrefix: true, priceMicros: 1000 }, timeoutMs));
}

export function route(r: Partial<Route> & Pick<Route, 'path' | 'upstreams'>, timeoutMs: number): Route {
  return {
    priceMicros: 0, metered: true, auth: true, stripPrefix: false, headers: {}, timeoutMs, ...r,
  };
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !(o instanceof URL) && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
