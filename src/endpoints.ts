// The gateway's own endpoints under /_tollgate/: health and readiness, the customer's usage,
// and Stripe billing (checkout, portal, webhooks). Never proxied.
import type { Billing } from './billing/billing.ts';
import { MAX_WEBHOOK_BYTES } from './billing/webhooks.ts';
import type { Config } from './config.ts';
import { GatewayError } from './errors.ts';
import { formatMicros } from './money.ts';
import { authenticate } from './pipeline/authenticate.ts';
import type { RequestContext } from './pipeline/context.ts';
import { rateLimit } from './pipeline/rate-limit.ts';
import { readBody } from './pipeline/read-body.ts';
import type { GatewayState } from './state/state.ts';
import { isPublicPage, publicPage } from './ui/public.ts';

export interface EndpointDeps {
  config: Config;
  state: GatewayState;
  billing: Billing | undefined;
  now: () => number;
  draining: () => boolean;
}

const JSON_HEADERS = ['content-type', 'application/json'];
const PROBLEM_HEADERS = ['content-type', 'application/problem+json'];

/** The gateway's own endpoints; the billing ones are async (they read a body, call Stripe). */
export function ownEndpoint(ctx: RequestContext, url: string, deps: EndpointDeps): Promise<void> | void {
  const path = url.split('?', 1)[0];
  const method = ctx.req.method;
  const { state } = deps;
  const allow = (...methods: string[]) => {
    if (methods.includes(method!)) return;
    ctx.responseHeaders.push('allow', methods.join(', '));
    throw new GatewayError('METHOD_NOT_ALLOWED');
  };
  switch (path) {
    case '/_tollgate/health':
      allow('GET', 'HEAD');
      return json(ctx, deps, 200, { status: 'ok' });
    case '/_tollgate/ready': {
      allow('GET', 'HEAD');
      const draining = deps.draining();
      const ready = !draining && state.storage.isReady() && state.recorder.accepting;
      return json(ctx, deps, ready ? 200 : 503, { status: ready ? 'ready' : draining ? 'draining' : 'not ready' });
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
      // The customer portal, signup and their stylesheet: pages for a browser (src/ui/).
      if (isPublicPage(path)) return publicPage(ctx, path, url.slice(path.length + 1), deps);
      throw new GatewayError('NOT_FOUND', { detail: `No gateway endpoint at ${path}.` });
  }
}

/** The calling customer and the billing it needs (503 when Stripe is not configured). */
async function billingCustomer(ctx: RequestContext, deps: EndpointDeps): Promise<{ billing: Billing; accountId: string }> {
  await customer(ctx, deps);
  if (!deps.billing) throw new GatewayError('BILLING_NOT_CONFIGURED');
  return { billing: deps.billing, accountId: ctx.account!.id };
}

/** The calling customer, in good standing or not: these endpoints are how it gets back in. */
async function customer(ctx: RequestContext, { state, config, now }: EndpointDeps): Promise<number> {
  const t = now();
  await authenticate(ctx, state.accounts, config, t, false);
  rateLimit(ctx, state.limiter, t);
  return t;
}

async function checkout(ctx: RequestContext, deps: EndpointDeps): Promise<void> {
  const { billing, accountId } = await billingCustomer(ctx, deps);
  const raw = await readBody(ctx.req, 64 * 1024, deps.config.clients.bodyTimeoutMs);
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new GatewayError('BAD_REQUEST', { detail: 'The body is not valid JSON.' });
  }
  json(ctx, deps, 200, await billing.checkout(accountId, body));
}

async function portal(ctx: RequestContext, deps: EndpointDeps): Promise<void> {
  const { billing, accountId } = await billingCustomer(ctx, deps);
  json(ctx, deps, 200, await billing.portal(accountId));
}

async function stripeWebhook(ctx: RequestContext, deps: EndpointDeps): Promise<void> {
  const { billing, config } = deps;
  if (!billing) throw new GatewayError('BILLING_NOT_CONFIGURED');
  let raw: Buffer;
  try {
    raw = await readBody(ctx.req, MAX_WEBHOOK_BYTES, config.clients.bodyTimeoutMs);
  } catch (err) {
    if ((err as GatewayError).code !== 'PAYLOAD_TOO_LARGE') throw err;
    throw new GatewayError('BAD_REQUEST', { detail: `A webhook body is at most ${MAX_WEBHOOK_BYTES} bytes.` });
  }
  const signature = ctx.req.headers['stripe-signature'];
  const reply = await billing.webhook(raw, typeof signature === 'string' ? signature : undefined);
  if (reply.status >= 400) json(ctx, deps, reply.status, { ...reply.body, requestId: ctx.requestId }, PROBLEM_HEADERS);
  else json(ctx, deps, reply.status, reply.body);
}

/**
 * The customer's own view, with its own key: balance, plan, quota and its latest requests, all
 * from memory but the requests, which are a chain of 20 row lookups: the cost does not grow with
 * the usage table.
 */
async function usage(ctx: RequestContext, deps: EndpointDeps): Promise<void> {
  const { state } = deps;
  const t = await customer(ctx, deps);
  const account = ctx.state!;
  const plan = ctx.plan!;
  await state.accounts.quota(account, t);
  const balanceMicros = await state.balance(account.accountId);
  const recent = await state.recent(account, 20);
  json(ctx, deps, 200, {
    accountId: account.accountId,
    plan: plan.name,
    balanceMicros,
    balance: formatMicros(balanceMicros),
    quota: { period: account.period, used: account.used, limit: plan.monthlyQuota },
    recent: recent.map(({ ts, ...r }) => ({
      time: new Date(ts).toISOString(), ...r, cost: formatMicros(r.priceMicros),
    })),
  });
}

function json(ctx: RequestContext, { state }: EndpointDeps, status: number, body: unknown, type = JSON_HEADERS): void {
  const text = JSON.stringify(body);
  state.recorder.beforeResponse(ctx.socket);
  ctx.res.writeHead(status, [...ctx.responseHeaders, ...type, 'content-length', String(Buffer.byteLength(text))]);
  ctx.res.end(text);
}
