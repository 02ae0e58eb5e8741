// The gateway's own endpoints under /_tollgate/: health and readiness, the customer's usage,
// and Stripe billing (checkout, portal, webhooks). Never proxied.
import type { Billing } from './billing/billing.ts';
import { MAX_WEBHOOK_BYTES } from './billing/webhooks.ts';
import type { Config } from './config.ts';
import type { Store } from './db/store.ts';
import { GatewayError } from './errors.ts';
import type { RateLimiter } from './limiter/token-bucket.ts';
import { formatMicros } from './money.ts';
import { quotaPeriod, type MonthlyPeriods } from './pipeline/admit.ts';
import { authenticate, type KeyCache } from './pipeline/authenticate.ts';
import type { RequestContext } from './pipeline/context.ts';
import { commitPrevious } from './pipeline/meter.ts';
import { rateLimit } from './pipeline/rate-limit.ts';
import { readBody } from './pipeline/read-body.ts';

export interface EndpointDeps {
  config: Config;
  store: Store;
  billing: Billing | undefined;
  keys: KeyCache;
  limiter: RateLimiter;
  periods: MonthlyPeriods;
  now: () => number;
  draining: () => boolean;
}

const JSON_HEADERS = ['content-type', 'application/json'];
const PROBLEM_HEADERS = ['content-type', 'application/problem+json'];

/** The gateway's own endpoints; the billing ones are async (they read a body, call Stripe). */
export function ownEndpoint(ctx: RequestContext, url: string, deps: EndpointDeps): Promise<void> | void {
  const path = url.split('?', 1)[0];
  const method = ctx.req.method;
  const { store } = deps;
  const allow = (...methods: string[]) => {
    if (methods.includes(method!)) return;
    ctx.responseHeaders.push('allow', methods.join(', '));
    throw new GatewayError('METHOD_NOT_ALLOWED');
  };
  switch (path) {
    case '/_tollgate/health':
      allow('GET', 'HEAD');
      return json(ctx, store, 200, { status: 'ok' });
    case '/_tollgate/ready': {
      allow('GET', 'HEAD');
      const draining = deps.draining();
      const ready = !draining && store.isReady();
      return json(ctx, store, ready ? 200 : 503, { status: ready ? 'ready' : draining ? 'draining' : 'not ready' });
    }
    case '/_tollgate/usage':
      allow('GET', 'HEAD');
      return usage(ctx, deps);
    case '/_tollgate/webhooks/stripe':
      allow('POST');
      return stripeWebhook(ctx, deps);
    case '/_tollgate/billing/checkout':
      allow('POST');
      return checkout(ctx, deps);
    case '/_tollgate/billing/portal':
      allow('GET', 'POST');
      return portal(ctx, deps);
    default:
      throw new GatewayError('NOT_FOUND', { detail: `No gateway endpoint at ${path}.` });
  }
}

/** The calling customer and the billing it needs (503 when Stripe is not configured). */
function billingCustomer(ctx: RequestContext, deps: EndpointDeps): { billing: Billing; accountId: string } {
  customer(ctx, deps);
  if (!deps.billing) throw new GatewayError('BILLING_NOT_CONFIGURED');
  return { billing: deps.billing, accountId: ctx.account!.id };
}

/** The calling customer, in good standing or not: these endpoints are how it gets back in. */
function customer(ctx: RequestContext, { keys, config, limiter, now }: EndpointDeps): number {
  const t = now();
  authenticate(ctx, keys, config, t, false);
  rateLimit(ctx, limiter, t);
  return t;
}

async function checkout(ctx: RequestContext, deps: EndpointDeps): Promise<void> {
  const { billing, accountId } = billingCustomer(ctx, deps);
  const raw = await readBody(ctx.req, 64 * 1024, deps.config.clients.bodyTimeoutMs);
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new GatewayError('BAD_REQUEST', { detail: 'The body is not valid JSON.' });
  }
  json(ctx, deps.store, 200, await billing.checkout(accountId, body));
}

async function portal(ctx: RequestContext, deps: EndpointDeps): Promise<void> {
  const { billing, accountId } = billingCustomer(ctx, deps);
  json(ctx, deps.store, 200, await billing.portal(accountId));
}

async function stripeWebhook(ctx: RequestContext, { billing, store, config }: EndpointDeps): Promise<void> {
  if (!billing) throw new GatewayError('BILLING_NOT_CONFIGURED');
  let raw: Buffer;
  try {
    raw = await readBody(ctx.req, MAX_WEBHOOK_BYTES, config.clients.bodyTimeoutMs);
  } catch (err) {
    if ((err as GatewayError).code !== 'PAYLOAD_TOO_LARGE') throw err;
    throw new GatewayError('BAD_REQUEST', { detail: `A webhook body is at most ${MAX_WEBHOOK_BYTES} bytes.` });
  }
  const signature = ctx.req.headers['stripe-signature'];
  const reply = billing.webhook(raw, typeof signature === 'string' ? signature : undefined);
  if (reply.status >= 400) json(ctx, store, reply.status, { ...reply.body, requestId: ctx.requestId }, PROBLEM_HEADERS);
  else json(ctx, store, reply.status, reply.body);
}

/** The customer's own view, with its own key: balance, plan, quota and its latest requests. */
function usage(ctx: RequestContext, deps: EndpointDeps): void {
  const { store, periods } = deps;
  const t = customer(ctx, deps);
  const account = ctx.account!;
  const plan = ctx.plan!;
  const period = quotaPeriod(account, t, periods);
  const balanceMicros = store.balance(account.id);
  json(ctx, store, 200, {
    accountId: account.id,
    plan: plan.name,
    balanceMicros,
    balance: formatMicros(balanceMicros),
    quota: { period, used: store.quotaUsed(account.id, period), limit: plan.monthlyQuota },
    recent: store.recentUsage(account.id, 20).map(({ ts, ...r }) => ({
      time: new Date(ts).toISOString(), ...r, cost: formatMicros(r.priceMicros),
    })),
  });
}

function json(ctx: RequestContext, store: Store, status: number, body: unknown, type = JSON_HEADERS): void {
  const text = JSON.stringify(body);
  commitPrevious(ctx.socket, store);
  ctx.res.writeHead(status, [...ctx.responseHeaders, ...type, 'content-length', String(Buffer.byteLength(text))]);
  ctx.res.end(text);
}
