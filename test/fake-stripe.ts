// A local stand-in for Stripe's API (the four calls the gateway makes) and for Stripe's webhook
// sender (signed events built from the real payloads in test/fixtures/stripe). The fake
// parses the form-encoded bodies the `stripe` client sends back into objects and records every
// call, so tests assert what the client sent; it can be told to fail and then recover.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

export const FIXTURES = fileURLToPath(new URL('./fixtures/stripe', import.meta.url));

/** A fixture file's exact text (event files are signed as they are). */
export function fixtureText(name: string): string {
  return readFileSync(`${FIXTURES}/${name}`, 'utf8');
}

/** A fixture file parsed; a fresh copy each time, so a test may edit it. */
export function fixture<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(fixtureText(name)) as T;
}

// ---- Stripe's API -------------------------------------------------------------------------

export interface StripeCall {
  method: string;
  path: string;
  /** The form body parsed back into objects and arrays (line_items[0][price_data][…]). */
  params: Record<string, unknown>;
  raw: string;
  idempotencyKey: string | undefined;
  authorization: string | undefined;
  headers: IncomingHttpHeaders;
  /** The HTTP status the fake answered with. */
  status: number;
}

export interface Failure {
  /** How many of the next calls to the path fail (each client retry is a call). */
  times: number;
  status?: number;
  /** The Stripe-Should-Retry header; undefined sends none (the client then retries 5xx). */
  shouldRetry?: boolean;
  type?: string;
  code?: string;
  message?: string;
  /** Do the work (a meter event is kept), then answer with the error: the reply was lost. */
  accept?: boolean;
}

export interface FakeStripe {
  url: string;
  /** STRIPE_API_BASE for the gateway's client. */
  apiBase: string;
  calls: StripeCall[];
  callsTo(path: string): StripeCall[];
  /** Meter events Stripe kept, by identifier (a duplicate identifier is refused, as Stripe does). */
  meterEvents: Map<string, Record<string, unknown>>;
  /** Checkout sessions created, by id, as the fake returned them. */
  sessions: Map<string, Record<string, unknown>>;
  /**
   * A created session as Stripe's checkout.session.completed carries it once the customer paid
   * (`paid: false`: a delayed payment method, settled later).
   */
  completed(id: string, o?: { paid?: boolean; paymentIntent?: string }): Record<string, unknown>;
  fail(path: string, failure: Failure): void;
  /** Every call to the path is answered `ms` later (after its work is done). */
  slow(path: string, ms: number): void;
  close(): Promise<void>;
}

/** `a[b][0][c]=x&…` → { a: { b: [ { c: 'x' } ] } }: the inverse of stripe-node's stringifyRequestData. */
export function parseForm(body: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const m = /^([^[\]]+)((?:\[[^\]]*\])*)$/.exec(key);
    if (!m) throw new Error(`unexpected form key ${key}`);
    const path = [m[1], ...[...m[2].matchAll(/\[([^\]]*)\]/g)].map((p) => p[1])];
    let at: Record<string, unknown> = root;
    path.forEach((segment, i) => {
      if (i === path.length - 1) at[segment] = value;
      else at = (at[segment] ??= {}) as Record<string, unknown>;
    });
  }
  return arrays(root) as Record<string, unknown>;
}

/** Objects keyed 0, 1, 2… become arrays. */
function arrays(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  for (const k of keys) o[k] = arrays(o[k]);
  if (keys.length > 0 && keys.every((k, i) => k === String(i))) return keys.map((k) => o[k]);
  return o;
}

const nowS = () => Math.floor(Date.now() / 1000);

export async function startFakeStripe(): Promise<FakeStripe> {
  const calls: StripeCall[] = [];
  const meterEvents = new Map<string, Record<string, unknown>>();
  const sessions = new Map<string, Record<string, unknown>>();
  const failures = new Map<string, Failure>();
  const delays = new Map<string, number>();
  // Stripe replays the saved response for a repeated Idempotency-Key (successful ones here).
  const idempotent = new Map<string, { status: number; body: unknown }>();
  let seq = 0;
  const next = (prefix: string) => `${prefix}_fake${String(++seq).padStart(6, '0')}`;

  const portalFixture = fixture('openapi-fixtures3.billing_portal.session.json');
  const meterFixture = fixture('openapi-fixtures3.billing.meter_event.json');
  const sessionFixture = fixture('openapi-fixtures3.checkout.session.json');

  function handle(path: string, params: Record<string, unknown>): { status: number; body: unknown } {
    const meta = (params.metadata ?? {}) as Record<string, string>;
    switch (path) {
      case '/v1/customers': {
        const id = next('cus');
        return { status: 200, body: { id, object: 'customer', created: nowS(), email: params.email ?? null, name: params.name ?? null, metadata: meta, livemode: false } };
      }
      case '/v1/checkout/sessions': {
        const id = next('cs_test');
        const items = (params.line_items ?? []) as { price_data?: { unit_amount?: string; currency?: string } }[];
        const amount = items[0]?.price_data?.unit_amount;
        const session = {
          ...sessionFixture,
          id,
          mode: params.mode,
          customer: params.customer ?? null,
          client_reference_id: params.client_reference_id ?? null,
          metadata: meta,
          success_url: params.success_url,
          cancel_url: params.cancel_url,
          currency: items[0]?.price_data?.currency ?? (params.mode === 'subscription' ? 'usd' : null),
          amount_total: amount === undefined ? null : Number(amount),
          amount_subtotal: amount === undefined ? null : Number(amount),
          payment_intent: null,
          subscription: null,
          payment_status: 'unpaid',
          status: 'open',
          created: nowS(),
          url: `https://checkout.stripe.com/c/pay/${id}`,
        };
        sessions.set(id, session);
        return { status: 200, body: session };
      }
      case '/v1/billing_portal/sessions': {
        const id = next('bps');
        return {
          status: 200,
          body: { ...portalFixture, id, customer: params.customer, return_url: params.return_url ?? null, created: nowS(), livemode: false, url: `https://billing.stripe.com/p/session/${id}` },
        };
      }
      case '/v1/billing/meter_events': {
        const identifier = String(params.identifier ?? next('mev'));
        if (meterEvents.has(identifier)) {
          return stripeError(400, { type: 'invalid_request_error', code: 'resource_already_exists', message: `A meter event with identifier ${identifier} already exists.` });
        }
        const event = {
          ...meterFixture,
          event_name: params.event_name,
          identifier,
          payload: params.payload,
          timestamp: Number(params.timestamp ?? nowS()),
          created: nowS(),
        };
        meterEvents.set(identifier, event);
        return { status: 200, body: event };
      }
      default:
        return stripeError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (POST: ${path}).` });
    }
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const path = req.url!.split('?', 1)[0];
      const params = parseForm(raw);
      const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
      const call: StripeCall = {
        method: req.method!, path, params, raw, idempotencyKey,
        authorization: req.headers.authorization, headers: req.headers, status: 0,
      };
      calls.push(call);
      const extra: Record<string, string> = {};
      let reply: { status: number; body: unknown };
      const failure = failures.get(path);
      const replayKey = idempotencyKey && `${path}\u0000${idempotencyKey}`;
      if (failure && failure.times > 0) {
        failure.times--;
        if (failure.accept) handle(path, params);
        reply = stripeError(failure.status ?? 500, {
          type: failure.type ?? 'api_error',
          code: failure.code,
          message: failure.message ?? 'An unknown error occurred (the fake was told to fail).',
        });
        if (failure.shouldRetry !== undefined) extra['stripe-should-retry'] = String(failure.shouldRetry);
      } else if (replayKey && idempotent.has(replayKey)) {
        reply = idempotent.get(replayKey)!;
        extra['idempotent-replayed'] = 'true';
      } else {
        reply = handle(path, params);
        if (replayKey && reply.status === 200) idempotent.set(replayKey, reply);
      }
      call.status = reply.status;
      const text = JSON.stringify(reply.body);
      const headers = { 'content-type': 'application/json', 'request-id': `req_${seq}`, ...extra };
      setTimeout(() => res.writeHead(reply.status, headers).end(text), delays.get(path) ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    apiBase: url,
    calls,
    callsTo: (path) => calls.filter((c) => c.path === path),
    meterEvents,
    sessions,
    completed(id, { paid = true, paymentIntent = `pi_of_${id}` } = {}) {
      const created = sessions.get(id);
      if (!created) throw new Error(`the fake created no session ${id}`);
      return { ...created, status: 'complete', payment_status: paid ? 'paid' : 'unpaid', payment_intent: paymentIntent, url: null };
    },
    fail: (path, failure) => void failures.set(path, { ...failure }),
    slow: (path, ms) => void delays.set(path, ms),
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

function stripeError(status: number, error: { type: string; code?: string; message: string }): { status: number; body: unknown } {
  return { status, body: { error } };
}

// ---- Stripe's webhook sender --------------------------------------------------------------

export const WEBHOOK_SECRET = 'whsec_test_current_0123456789';
export const OLD_WEBHOOK_SECRET = 'whsec_test_previous_9876543210';
export const SECRET_KEY = 'sk_test_tollgate_fake_51Hx';

/** Everything a billing gateway needs in its environment, pointed at the fake. */
export function billingEnv(stripe: FakeStripe, extra: Record<string, string> = {}): Record<string, string> {
  return {
    STRIPE_SECRET_KEY: SECRET_KEY,
    STRIPE_WEBHOOK_SECRET: `${WEBHOOK_SECRET},${OLD_WEBHOOK_SECRET}`,
    CHECKOUT_SUCCESS_URL: 'https://app.example.com/billing/success',
    CHECKOUT_CANCEL_URL: 'https://app.example.com/billing/cancel',
    PORTAL_RETURN_URL: 'https://app.example.com/account',
    STRIPE_API_BASE: stripe.apiBase,
    METER_INTERVAL_SECONDS: '60',
    PAST_DUE_GRACE_HOURS: '72',
    ...extra,
  };
}

/**
 * Buys credits as a customer does: POST /_tollgate/billing/checkout with its key (the gateway
 * records the session it creates), then the session as Stripe sends it once paid.
 */
export async function paidCheckout(
  stripe: FakeStripe, gatewayUrl: string, key: string, { cents = 2500, paid = true, paymentIntent }: { cents?: number; paid?: boolean; paymentIntent?: string } = {},
): Promise<Record<string, unknown>> {
  const res = await fetch(`${gatewayUrl}/_tollgate/billing/checkout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'credits', amount: (cents / 100).toFixed(2) }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`checkout answered ${res.status}: ${text}`);
  return stripe.completed((JSON.parse(text) as { id: string }).id, { paid, paymentIntent });
}

/** The sync-engine subscription fixtures' price, and the openapi fixture's. */
export const LEGACY_PRICE = 'price_1IDQm5JDPojXS6LNM31hxKzp';
export const CURRENT_PRICE = 'price_1PgafmB7WZ01zgkW6dKueIc5';

/** A config file with plans sold through Stripe, a metered plan and credit packs. */
export function billingFile(upstreamUrl: string): Record<string, unknown> {
  const limits = { perSecond: 1000 };
  return {
    routes: [{ path: '/api/', upstream: upstreamUrl, priceMicros: 1000 }],
    plans: {
      free: { limits, monthlyQuota: 5, overage: 'credits' },
      pro: { limits, monthlyQuota: 1000, stripePrice: 'price_pro' },
      team: { limits, monthlyQuota: 5000, stripePrice: 'price_team' },
      legacy: { limits, monthlyQuota: 2000, stripePrice: LEGACY_PRICE },
      current: { limits, monthlyQuota: 3000, stripePrice: CURRENT_PRICE },
      metered: { limits, monthlyQuota: 3, overage: 'stripe', stripeMeter: 'api_requests', stripePrice: 'price_metered' },
    },
    defaultPlan: 'free',
    credits: { packs: ['10.00', '25.00', '50.00'] },
  };
}

export interface EventInit {
  id?: string;
  /** Seconds since the epoch. */
  created?: number;
  apiVersion?: string | null;
  previous?: Record<string, unknown>;
}

let eventSeq = 0;

/** An event envelope around `object`, shaped like openapi-fixtures3.event.json. */
export function stripeEvent(type: string, object: Record<string, unknown>, init: EventInit = {}): Record<string, unknown> {
  const template = fixture('openapi-fixtures3.event.json');
  return {
    ...template,
    id: init.id ?? `evt_test_${Date.now().toString(36)}_${++eventSeq}`,
    type,
    api_version: init.apiVersion === undefined ? '2026-10-28.endive' : init.apiVersion,
    created: init.created ?? Math.floor(Date.now() / 1000),
    livemode: false,
    data: { object, ...(init.previous && { previous_attributes: init.previous }) },
  };
}

export function signature(payload: string | Buffer, secret = WEBHOOK_SECRET, timestamp?: number): string {
  return Stripe.webhooks.generateTestHeaderString({ payload: payload.toString(), secret, ...(timestamp !== undefined && { timestamp }) });
}

export interface WebhookResponse { status: number; body: Record<string, unknown>; contentType: string | null; ms: number }

/** POSTs exactly these bytes to the gateway's webhook endpoint with the given (or a valid) signature. */
export async function postWebhook(
  gatewayUrl: string,
  payload: string | Buffer | Record<string, unknown>,
  { secret = WEBHOOK_SECRET, timestamp, header }: { secret?: string; timestamp?: number; header?: string | null } = {},
): Promise<WebhookResponse> {
  const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const sig = header === undefined ? signature(body, secret, timestamp) : header;
  if (sig !== null) headers['stripe-signature'] = sig;
  const started = performance.now();
  const res = await fetch(`${gatewayUrl}/_tollgate/webhooks/stripe`, { method: 'POST', headers, body });
  const text = await res.text();
  const ms = performance.now() - started;
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, contentType: res.headers.get('content-type'), ms };
}
