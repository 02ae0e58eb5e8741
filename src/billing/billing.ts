// Stripe billing as the server and the CLI use it: webhooks, checkout, the portal and the
// overage reporter, over one Stripe client and the billing store.
import type Stripe from 'stripe';
import type { Config, StripeConfig } from '../config.ts';
import type { BillingStorage } from '../storage/ports.ts';
import type { Logger } from '../log.ts';
import { createCheckout, createPortal, type ReturnUrls } from './checkout.ts';
import { MeterReporter } from './meter-reporter.ts';
import { receiveStripeWebhook, type WebhookReply } from './webhooks.ts';

export interface Billing {
  webhook(raw: Buffer, signature: string | undefined): Promise<WebhookReply> | WebhookReply;
  checkout(accountId: string, body: unknown, urls?: ReturnUrls): Promise<{ id: string; url: string }>;
  portal(accountId: string): Promise<{ url: string }>;
  reporter: MeterReporter;
}

/**
 * STRIPE_API_BASE points the client elsewhere (tests: a local fake of Stripe's API). The package
 * is loaded here, not at startup: it holds about 4 MB of heap a gateway without Stripe never uses.
 */
export async function createStripeClient(sc: StripeConfig): Promise<Stripe> {
  const base = sc.apiBase;
  const { default: Stripe } = await import('stripe');
  return new Stripe(sc.secretKey, {
    maxNetworkRetries: 2,
    timeout: 20_000,
    telemetry: false,
    ...(base && {
      host: base.hostname,
      port: base.port || (base.protocol === 'https:' ? 443 : 80),
      protocol: base.protocol === 'https:' ? 'https' : 'http',
    }),
  });
}

export interface BillingDeps {
  config: Config;
  storage: BillingStorage;
  log: Logger;
  stripe?: Stripe;
  now?: () => number;
  /** Each Stripe event received, by type and outcome (metrics). */
  onWebhookEvent?: (type: string, outcome: string) => void;
}

/** Undefined without Stripe settings: the billing endpoints then answer 503. */
export async function createBilling(deps: BillingDeps): Promise<Billing | undefined> {
  const stripeConfig = deps.config.stripe;
  if (!stripeConfig) return undefined;
  const stripe = deps.stripe ?? await createStripeClient(stripeConfig);
  const { billing, events } = deps.storage;
  const checkoutDeps = { config: deps.config, stripeConfig, billing, stripe, log: deps.log };
  const webhookDeps = { config: deps.config, stripeWebhooks: stripe.webhooks, events, log: deps.log, onEvent: deps.onWebhookEvent };
  return {
    webhook: (raw, signature) => receiveStripeWebhook(raw, signature, webhookDeps),
    checkout: (accountId, body, urls) => createCheckout(accountId, body, checkoutDeps, urls),
    portal: (accountId) => createPortal(accountId, checkoutDeps),
    reporter: new MeterReporter({ billing, alone: deps.storage.alone, stripe, stripeConfig, log: deps.log, now: deps.now }),
  };
}
