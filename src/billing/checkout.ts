// Checkout and the customer portal: the two calls a customer makes with its own key. Each creates
// a Stripe session and returns its URL. A credits session is recorded with its account and
// amount: only a recorded session is credited when paid. The account is also named in
// client_reference_id and metadata on the session and on the payment intent or subscription, so
// subscriptions, refunds and disputes trace back to it. A Stripe customer is created once per
// account and reused.
import type Stripe from 'stripe';
import type { Config, StripeConfig } from '../config.ts';
import { GatewayError } from '../errors.ts';
import { formatMicros, parseDollars } from '../money.ts';
import type { Logger } from '../log.ts';
import type { MaybeAsync } from '../storage/steps.ts';
import type { BillingStore } from './billing-store.ts';
import { isRecord } from '../json.ts';

export interface CheckoutDeps {
  config: Config;
  stripeConfig: StripeConfig;
  billing: MaybeAsync<BillingStore>;
  stripe: Stripe;
  log: Logger;
}

/** Where Stripe sends the customer back; the configured URLs unless given (the signup page gives its own). */
export interface ReturnUrls { success: string; cancel: string }

export async function createCheckout(accountId: string, body: unknown, deps: CheckoutDeps, urls?: ReturnUrls): Promise<{ id: string; url: string }> {
  const { config, stripeConfig } = deps;
  if (!isRecord(body)) throw bad('Send {"type":"credits","amount":"25.00"} or {"type":"plan","plan":"pro"}.');
  const meta = { account_id: accountId };
  const common = {
    client_reference_id: accountId,
    success_url: urls?.success ?? stripeConfig.successUrl,
    cancel_url: urls?.cancel ?? stripeConfig.cancelUrl,
  };
  let params: Stripe.Checkout.SessionCreateParams;
  let credits: number | undefined;
  if (body.type === 'credits') {
    const micros = typeof body.amount === 'string' ? safeDollars(body.amount) : undefined;
    if (micros === undefined || !stripeConfig.creditPacks.includes(micros)) {
      throw bad(`"amount" must be one of the credit packs: ${stripeConfig.creditPacks.map(formatMicros).join(', ')}.`);
    }
    params = {
      ...common,
      mode: 'payment',
      line_items: [{
        quantity: 1,
        price_data: { currency: 'usd', unit_amount: micros / 10_000, product_data: { name: `API credits ($${formatMicros(micros)})` } },
      }],
      metadata: { ...meta, kind: 'credits', amount_micros: String(micros) },
      payment_intent_data: { metadata: meta },
    };
    credits = micros;
  } else if (body.type === 'plan') {
    const plan = typeof body.plan === 'string' ? config.plans[body.plan] : undefined;
    if (!plan?.stripePrice) {
      const sellable = Object.values(config.plans).filter((p) => p.stripePrice).map((p) => p.name);
      throw bad(`"plan" must be a plan sold through Stripe: ${sellable.join(', ') || 'none is configured'}.`);
    }
    // A second subscription would bill twice: a plan change goes through the portal.
    if ((await deps.billing.account(accountId))?.subscriptionId) {
      throw new GatewayError('CONFLICT', { detail: 'This account has a subscription already; change the plan in the billing portal (GET /_tollgate/billing/portal).' });
    }
    params = {
      ...common,
      mode: 'subscription',
      line_items: [{ price: plan.stripePrice, quantity: 1 }],
      metadata: { ...meta, kind: 'plan', plan: plan.name },
      subscription_data: { metadata: { ...meta, plan: plan.name } },
    };
  } else throw bad('"type" must be "credits" or "plan".');

  // Only a valid request gets a Stripe customer.
  params.customer = await customerFor(accountId, deps);
  const session = await callStripe(() => deps.stripe.checkout.sessions.create(params), deps.log);
  if (!session.url) throw new GatewayError('UPSTREAM_UNREACHABLE', { detail: 'Stripe returned a session without a URL.' });
  // Recorded before the customer has the URL, so before it can be paid: the record, not the
  // session's metadata, is what its checkout.session.completed is credited by.
  if (credits !== undefined) await deps.billing.recordCheckout({ sessionId: session.id, accountId, amountMicros: credits });
  return { id: session.id, url: session.url };
}

export async function createPortal(accountId: string, deps: CheckoutDeps): Promise<{ url: string }> {
  const customer = await customerFor(accountId, deps);
  const session = await callStripe(() => deps.stripe.billingPortal.sessions.create({ customer, return_url: deps.stripeConfig.portalReturnUrl }), deps.log);
  return { url: session.url };
}

/** The account's Stripe customer, created on first use. */
async function customerFor(accountId: string, { billing, stripe, log }: CheckoutDeps): Promise<string> {
  const account = await billing.account(accountId);
  if (!account) throw new GatewayError('INVALID_KEY');
  if (account.stripeCustomerId) return account.stripeCustomerId;
  // The idempotency key makes two first checkouts at once get the same customer.
  const customer = await callStripe(() => stripe.customers.create(
    { email: account.email, ...(account.name && { name: account.name }), metadata: { account_id: accountId } },
    { idempotencyKey: `tollgate-customer-${accountId}` },
  ), log);
  await billing.linkCustomer(accountId, customer.id);
  return customer.id;
}

async function callStripe<T>(call: () => Promise<T>, log: Logger): Promise<T> {
  try {
    return await call();
  } catch (err) {
    // Stripe's own message can name the (masked) secret key: it goes to the log, not the customer.
    const e = err as { type?: string; message?: string; requestId?: string };
    log.error('stripe call failed', { type: e.type, error: e.message, stripeRequestId: e.requestId });
    throw new GatewayError('UPSTREAM_UNREACHABLE', { detail: 'Stripe could not create the session; try again shortly.' });
  }
}

function safeDollars(text: string): number | undefined {
  try {
    return parseDollars(text);
  } catch {
    return undefined;
  }
}

function bad(detail: string): GatewayError {
  return new GatewayError('BAD_REQUEST', { detail });
}
