// GET /admin/v1/config: the running configuration (routes, plans, prices), read-only. Secrets are
// never in it: route header values, provider keys, Stripe keys and admin tokens are replaced by
// REDACTED (their presence shows; their value does not).
import type { Config, Plan, Route } from '../config.ts';
import type { ModelPrice } from '../meters/prices.ts';
import { ok, type AdminRoute } from './http.ts';
import { query } from './input.ts';

export const REDACTED = '[redacted]';

export interface RouteDoc {
  path: string; upstreams: string[]; priceMicros: number; metered: boolean; auth: boolean; stripPrefix: boolean;
  headers: Record<string, string>; timeoutMs: number; meter: string | null; whenHeader: string | null; cors: readonly string[] | null;
}

export interface PlanDoc {
  name: string; limits: Plan['limits']; burst: number | null; monthlyQuota: number | null; overage: Plan['overage'];
  models: readonly string[] | null; byok: boolean; stripePrice: string | null; stripeMeter: string | null;
}

export interface ConfigDoc {
  source: string;
  demo: boolean;
  defaultPlan: string;
  routes: RouteDoc[];
  plans: Record<string, PlanDoc>;
  prices: Readonly<Record<string, ModelPrice>>;
  providers: Record<string, { apiKey: string | null }>;
  stripe: null | {
    secretKey: string; webhookSecrets: string[]; successUrl: string; cancelUrl: string; portalReturnUrl: string;
    pastDueGraceMs: number; meterIntervalMs: number; creditPacks: readonly number[];
  };
  admin: null | { host: string; port: number; tokens: string[] };
}

const hide = (secret: string | undefined) => (secret ? REDACTED : null);

function routeDoc(r: Route): RouteDoc {
  return {
    path: r.path, upstreams: r.upstreams.map((u) => u.href), priceMicros: r.priceMicros, metered: r.metered, auth: r.auth, stripPrefix: r.stripPrefix,
    headers: Object.fromEntries(Object.keys(r.headers).map((name) => [name, REDACTED])), timeoutMs: r.timeoutMs,
    meter: r.meter ?? null, whenHeader: r.whenHeader ?? null, cors: r.cors ?? null,
  };
}

function planDoc(p: Plan): PlanDoc {
  return {
    name: p.name, limits: p.limits, burst: p.burst ?? null, monthlyQuota: p.monthlyQuota, overage: p.overage, models: p.models ?? null,
    byok: p.byok, stripePrice: p.stripePrice ?? null, stripeMeter: p.stripeMeter ?? null,
  };
}

export function configDoc(c: Config): ConfigDoc {
  return {
    source: c.source, demo: c.demo, defaultPlan: c.defaultPlan,
    routes: c.routes.map(routeDoc),
    plans: Object.fromEntries(Object.entries(c.plans).map(([name, p]) => [name, planDoc(p)])),
    prices: c.prices,
    providers: { openai: { apiKey: hide(c.providerKeys.openai) }, anthropic: { apiKey: hide(c.providerKeys.anthropic) } },
    stripe: c.stripe ? {
      secretKey: REDACTED, webhookSecrets: c.stripe.webhookSecrets.map(() => REDACTED),
      successUrl: c.stripe.successUrl, cancelUrl: c.stripe.cancelUrl, portalReturnUrl: c.stripe.portalReturnUrl,
      pastDueGraceMs: c.stripe.pastDueGraceMs, meterIntervalMs: c.stripe.meterIntervalMs, creditPacks: c.stripe.creditPacks,
    } : null,
    admin: c.admin ? { host: c.admin.host, port: c.admin.port, tokens: c.admin.tokens.map(() => REDACTED) } : null,
  };
}

export const configRoutes: AdminRoute[] = [
  {
    method: 'GET', path: '/admin/v1/config',
    handle: ({ ops, query: q }) => (query(q, []), ok(ops.config())),
  },
];
