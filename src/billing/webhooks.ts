// POST /_tollgate/webhooks/stripe: verify the signature on the raw bytes, then apply the event
// exactly once in the same SQLite transaction that records its id. No network call happens
// before the reply, so it comes back in well under Stripe's timeout.
import type Stripe from 'stripe';
import type { Config } from '../config.ts';
import type { EventLog, InboundEvent } from '../storage/ports.ts';
import type { Logger } from '../log.ts';
import { applyStripeEvent, type StripeEvent } from './stripe-events.ts';

export const MAX_WEBHOOK_BYTES = 1024 * 1024;

export interface WebhookReply {
  status: number;
  body: Record<string, unknown>;
}

/** What applying an event needs (a replay too, which checks no signature). */
export interface ApplyDeps {
  config: Config;
  events: EventLog;
  log: Logger;
  /** Each event applied (or not), by type and outcome: applied, ignored, duplicate, failed. */
  onEvent?: (type: string, outcome: string) => void;
}

export interface WebhookDeps extends ApplyDeps {
  /** Stripe's signature check (a client's `webhooks`: the package is loaded only with Stripe configured). */
  stripeWebhooks: Stripe['webhooks'];
}

/** Checks the Stripe-Signature header against every configured secret (several during a rotation). */
function verify(webhooks: Stripe['webhooks'], raw: Buffer, signature: string, secrets: readonly string[]): boolean {
  for (const secret of secrets) {
    try {
      webhooks.signature!.verifyHeader(raw, signature, secret, webhooks.DEFAULT_TOLERANCE);
      return true;
    } catch {
      // try the next secret
    }
  }
  return false;
}

export function receiveStripeWebhook(raw: Buffer, signature: string | undefined, deps: WebhookDeps): Promise<WebhookReply> | WebhookReply {
  const secrets = deps.config.stripe?.webhookSecrets ?? [];
  if (secrets.length === 0) return problem(503, 'Webhooks are not configured: set STRIPE_WEBHOOK_SECRET.');
  if (!signature) return problem(400, 'Missing Stripe-Signature header.');
  if (!verify(deps.stripeWebhooks, raw, signature, secrets)) {
    deps.onEvent?.('unknown', 'bad_signature'); // often a STRIPE_WEBHOOK_SECRET that does not match the endpoint's
    return problem(400, 'The Stripe-Signature does not match the body with any configured secret, or its timestamp is outside the tolerance.');
  }
  let event: StripeEvent;
  try {
    event = JSON.parse(raw.toString('utf8')) as StripeEvent;
  } catch {
    return problem(400, 'The body is not valid JSON.');
  }
  if (typeof event?.id !== 'string' || typeof event.type !== 'string' || typeof event.created !== 'number') {
    return problem(400, 'The body is not a Stripe event (id, type and created are required).');
  }
  return apply({ source: 'stripe', id: event.id, type: event.type, payload: raw.toString('utf8') }, event, deps);
}

/** Applies an event once; also what `tollgate webhooks replay` calls with a stored payload. */
export async function apply(inbound: InboundEvent, event: StripeEvent, deps: ApplyDeps): Promise<WebhookReply> {
  try {
    const outcome = await deps.events.applyOnce(inbound, (tx) => applyStripeEvent(event, { config: deps.config, ...tx }));
    if (outcome.status === 'ignored') logOnce(deps.log, event.type, outcome.note);
    deps.onEvent?.(event.type, outcome.status);
    return { status: 200, body: { received: true, id: event.id, outcome: outcome.status } };
  } catch (err) {
    // Nothing of the effect was kept; Stripe retries on a non-2xx, and the operator can replay.
    const message = (err as Error).message;
    await deps.events.recordFailure(inbound, message);
    deps.onEvent?.(event.type, 'failed');
    deps.log.error('stripe event failed', { eventId: event.id, type: event.type, error: message });
    return problem(500, 'The event could not be applied; it was recorded and will be retried.');
  }
}

/** What each log was told already (per log: gateways in one process, tests, keep their own). */
const logged = new WeakMap<Logger, Set<string>>();

function logOnce(log: Logger, type: string, note: string): void {
  const key = `${type}\u0000${note.replace(/\b(?:cs|ch|dp|pi|cus|sub|in|evt)_\w+/g, '…')}`;
  let told = logged.get(log);
  if (!told) logged.set(log, (told = new Set()));
  if (told.has(key)) return;
  told.add(key);
  log.info('stripe event needed no change', { type, note });
}

function problem(status: number, detail: string): WebhookReply {
  return { status, body: { type: 'urn:tollgate:error:webhook', title: 'Webhook refused', status, detail } };
}
