// What each Stripe event does to the gateway's accounts. applyStripeEvent runs inside
// EventLog.applyOnce's transaction, with its money: it returns undefined when it changed something, or a note saying
// why the event needed nothing (recorded with the event). It throws only on a real failure.
// payment.failed and subscription.changed notifications go in the same transaction's outbox.
// Every storage call is a step (`yield* get(…)`, storage/steps.ts): the same code runs in
// SQLite's synchronous transaction and in PostgreSQL's.
import type { Config } from '../config.ts';
import type { EventTx } from '../storage/ports.ts';
import { get, type MaybeAsync, type Steps } from '../storage/steps.ts';
import { formatMicros } from '../money.ts';
import { eventId } from '../notify/events.ts';
import type { BillingAccount, BillingStore as SyncBillingStore } from './billing-store.ts';
import {
  centsToMicros, idOf, invoicePeriod, invoiceSubscription, metadata, obj, str, subscriptionPeriod, subscriptionPrice,
} from './stripe-fields.ts';

export interface StripeEvent {
  id: string;
  type: string;
  api_version: string | null;
  /** Seconds since the epoch. */
  created: number;
  data: { object: Record<string, unknown> };
}

export interface EventDeps extends EventTx {
  config: Config;
}

type BillingStore = MaybeAsync<SyncBillingStore>;
type Handler = (o: Record<string, unknown>, event: StripeEvent, deps: EventDeps) => Steps<string | undefined>;

// Subscription statuses that lose the plan; active and trialing grant it, past_due keeps it for
// a grace period, incomplete waits for the first payment.
const LAPSED = new Set(['unpaid', 'incomplete_expired', 'canceled', 'paused']);
// Statuses Stripe never moves a subscription out of.
const ENDED = new Set(['canceled', 'incomplete_expired']);

const HANDLERS: Record<string, Handler> = {
  'checkout.session.completed': checkoutCompleted,
  'checkout.session.async_payment_succeeded': checkoutCompleted,
  'customer.subscription.created': subscriptionChanged,
  'customer.subscription.updated': subscriptionChanged,
  'customer.subscription.deleted': subscriptionChanged,
  'invoice.paid': invoicePaid,
  'invoice.payment_failed': invoicePaymentFailed,
  'charge.refunded': chargeRefunded,
  'charge.dispute.created': disputeCreated,
  'charge.dispute.closed': disputeClosed,
};

export function* applyStripeEvent(event: StripeEvent, deps: EventDeps): Steps<string | undefined> {
  const handler = HANDLERS[event.type];
  if (!handler) return `event type ${event.type} is not used by the gateway`;
  const o = obj(event.data?.object);
  if (!o) return 'the event carries no data.object';
  return yield* handler(o, event, deps);
}

/** The account an object belongs to: its metadata.account_id, else its customer. */
function* accountFor(o: Record<string, unknown>, billing: BillingStore): Steps<BillingAccount | undefined> {
  const id = str(metadata(o).account_id) ?? str(o.client_reference_id);
  const byId = id === undefined ? undefined : yield* get(billing.account(id));
  if (byId) return byId;
  const customer = idOf(o.customer);
  return customer === undefined ? undefined : yield* get(billing.accountByCustomer(customer));
}

function* link(account: BillingAccount, o: Record<string, unknown>, billing: BillingStore): Steps<void> {
  const customer = idOf(o.customer);
  if (customer !== undefined && account.stripeCustomerId === null) yield* get(billing.linkCustomer(account.id, customer));
}

function* checkoutCompleted(session: Record<string, unknown>, event: StripeEvent, { money, billing }: EventDeps): Steps<string | undefined> {
  const sessionId = String(session.id);
  if (session.mode === 'subscription') {
    const account = yield* accountFor(session, billing);
    if (!account) return `no account for checkout session ${sessionId}`;
    yield* link(account, session, billing);
    return undefined; // the plan follows customer.subscription.* events
  }
  if (session.mode !== 'payment') return `a ${String(session.mode)}-mode session buys no credits`;
  // Only a session the gateway created for credits buys them, for the account and amount it
  // recorded. Any other paid Checkout of the customer (a Payment Link, another product of the same
  // Stripe account) is not a top-up, and metadata is whatever its creator set.
  const checkout = yield* get(billing.creditCheckout(sessionId));
  if (!checkout) return `checkout session ${sessionId} was not created by this gateway for credits (a Payment Link or another product): no credits`;
  if (session.payment_status !== 'paid') return 'payment not settled yet: credits wait for checkout.session.async_payment_succeeded';
  // Adaptive Pricing keeps the session's currency and amount_total in the integration's currency
  // (usd) since 2025-03-31; anything else is not what the gateway sold.
  if (session.currency !== 'usd' || centsToMicros(session.amount_total) !== checkout.amountMicros) {
    return `session ${sessionId} was created for ${formatMicros(checkout.amountMicros)} usd, but Stripe reports amount_total ${String(session.amount_total)} ${String(session.currency)}: no credits; check the payment in the Stripe dashboard`;
  }
  const account = (yield* get(billing.account(checkout.accountId)))!;
  const amount = checkout.amountMicros;
  if (!(yield* get(billing.recordPurchase({ sessionId, accountId: account.id, paymentIntent: idOf(session.payment_intent) ?? null, amountMicros: amount })))) {
    return `credits for ${sessionId} were granted already (${event.type})`;
  }
  yield* get(money.credit(account.id, amount, 'purchase', sessionId));
  yield* get(billing.completeSignup(sessionId));
  // A refund that found the balance short left a debt: the top-up pays it first.
  const repay = Math.min(account.debtMicros, amount);
  if (repay > 0) {
    yield* get(money.debit(account.id, repay, 'debt_repayment', sessionId));
    yield* get(billing.reduceDebt(account.id, repay));
  }
  return undefined;
}

/**
 * Stripe does not deliver events in order and stamps them in whole seconds, so:
 * - an ended subscription (deleted, canceled, incomplete_expired) is final: its end applies
 *   whatever its stamp, and any event about it afterwards changes nothing;
 * - otherwise an event older than the state applied changes nothing; in the same second,
 *   customer.subscription.created (a subscription's first event) yields to what was applied for
 *   that subscription, and of two updates the later arrival wins (nothing orders them).
 */
function* subscriptionChanged(sub: Record<string, unknown>, event: StripeEvent, { config, billing, outbox }: EventDeps): Steps<string | undefined> {
  const account = yield* accountFor(sub, billing);
  const id = String(sub.id);
  if (!account) return `no account for subscription ${id} (customer ${String(idOf(sub.customer))})`;
  const endedAt = yield* get(billing.finalAt(id));
  if (endedAt !== undefined) return `subscription ${id} ended at ${iso(endedAt)}: a later event for it changes nothing`;
  const status = event.type === 'customer.subscription.deleted' ? 'canceled' : str(sub.status);
  if (status === undefined) return 'the subscription has no status';
  const eventAt = event.created * 1000;
  const last = account.subscriptionEventAt;
  const ended = ENDED.has(status);
  if (ended) yield* get(billing.recordFinal(id, account.id, 'subscription_ended', eventAt));
  const stale = last !== null
    && (eventAt < last || (eventAt === last && event.type === 'customer.subscription.created' && account.subscriptionId === id));
  // Nothing follows the end of the account's current subscription, whatever the stamps say.
  if (stale && !(ended && account.subscriptionId === id)) return `older (${iso(eventAt)}) than the subscription state already applied`;
  yield* link(account, sub, billing);
  const price = subscriptionPrice(sub);
  const pricedPlan = Object.values(config.plans).find((p) => p.stripePrice !== undefined && p.stripePrice === price)?.name;
  const period = subscriptionPeriod(sub, event.api_version);

  let plan: string;
  let pastDueSince: number | null = null;
  if (LAPSED.has(status)) plan = config.defaultPlan;
  else if (status === 'active' || status === 'trialing') {
    if (pricedPlan === undefined) return `price ${String(price)} is no plan's stripePrice`;
    plan = pricedPlan;
  } else if (status === 'past_due') {
    plan = pricedPlan ?? account.plan;
    pastDueSince = account.pastDueSince ?? eventAt;
  } else if (status === 'incomplete') plan = account.plan;
  else return `subscription status ${status} is not handled`;

  // A customer may hold several subscriptions (a second checkout): only the account's current
  // one, or another that is active, changes the account.
  const current = account.subscriptionId;
  if (current !== null && current !== id && status !== 'active' && status !== 'trialing') {
    return `subscription ${id} is not the account's current one (${current})`;
  }
  const live = !LAPSED.has(status);
  yield* get(billing.setSubscription(account.id, {
    subscriptionId: live ? id : null,
    status,
    plan,
    // A late end keeps the newest stamp: older events stay older.
    eventAt: Math.max(eventAt, last ?? eventAt),
    pastDueSince,
    // Lapsed: the quota goes back to calendar months.
    periodStart: live ? period?.start ?? null : null,
    periodEnd: live ? period?.end ?? null : null,
  }));
  if (plan !== account.plan || status !== account.subscriptionStatus) {
    yield* get(outbox.add({
      id: eventId(), type: 'subscription.changed', accountId: account.id, createdAt: eventAt,
      data: {
        accountId: account.id, subscriptionId: id, status, previousStatus: account.subscriptionStatus, plan, previousPlan: account.plan,
        periodEnd: live && period ? iso(period.end) : null,
      },
    }));
  }
  return undefined;
}

/**
 * The account an invoice event is about, when the event decides its payment standing; else the
 * note saying why it changes nothing. Stripe does not deliver events in order and stamps them in
 * whole seconds, so:
 * - a paid invoice is final (Stripe makes no further attempt on it): its invoice.paid applies over
 *   a failure of that invoice whatever the stamps, and a payment_failed for it afterwards changes
 *   nothing;
 * - otherwise the newer `created` decides, and an older event changes nothing;
 * - in the same second a failure holds against another invoice's payment, in either order: the
 *   failed invoice is still owed, and paying another says nothing about it.
 */
function* standingEvent(inv: Record<string, unknown>, event: StripeEvent, paid: boolean, billing: BillingStore): Steps<BillingAccount | string> {
  const account = yield* accountFor(inv, billing);
  if (!account) return `no account for customer ${String(idOf(inv.customer))}`;
  const id = str(inv.id);
  if (id === undefined) return 'the invoice has no id';
  const at = event.created * 1000;
  const last = account.standingEventAt;
  const standing = account.standingInvoiceId;
  if (paid) yield* get(billing.recordFinal(id, account.id, 'invoice_paid', at));
  else if ((yield* get(billing.finalAt(id))) !== undefined) return `invoice ${id} was paid already: a failed attempt on it changes nothing`;
  if (last !== null && standing !== id) {
    if (at < last) return `older (${iso(at)}) than the payment state already applied`;
    const standingFailed = standing !== null && (yield* get(billing.finalAt(standing))) === undefined;
    if (paid && at === last && standingFailed) return `paid in the same second as the failed payment of invoice ${standing}, which it does not pay`;
  }
  yield* get(billing.setStandingEvent(account.id, Math.max(at, last ?? at), id));
  return account;
}

function* invoicePaid(inv: Record<string, unknown>, event: StripeEvent, { billing }: EventDeps): Steps<string | undefined> {
  yield* recordRevenue(inv, event, billing);
  const account = yield* standingEvent(inv, event, true, billing);
  if (typeof account === 'string') return account;
  if (account.status === 'suspended' && account.statusReason === 'payment_failed') yield* get(billing.setStanding(account.id, 'active', null));
  yield* get(billing.clearPastDue(account.id));
  if (invoiceSubscription(inv, event.api_version) !== undefined) {
    const period = invoicePeriod(inv);
    if (period) yield* get(billing.setPeriod(account.id, period.start, period.end));
  }
  return undefined;
}

/** A paid subscription invoice is revenue whatever it does to the standing (an older event still paid). */
function* recordRevenue(inv: Record<string, unknown>, event: StripeEvent, billing: BillingStore): Steps<void> {
  const account = yield* accountFor(inv, billing);
  const id = str(inv.id);
  const micros = centsToMicros(inv.amount_paid);
  if (!account || id === undefined || !micros || invoiceSubscription(inv, event.api_version) === undefined) return;
  const paidAt = obj(inv.status_transitions)?.paid_at;
  yield* get(billing.recordSubscriptionPayment(id, account.id, micros, str(inv.currency) ?? 'usd', (typeof paidAt === 'number' ? paidAt : event.created) * 1000));
}

function* invoicePaymentFailed(inv: Record<string, unknown>, event: StripeEvent, { billing, outbox }: EventDeps): Steps<string | undefined> {
  const account = yield* standingEvent(inv, event, false, billing);
  if (typeof account === 'string') return account;
  // A dispute's suspension says more; do not overwrite its reason.
  if (account.status !== 'suspended') yield* get(billing.setStanding(account.id, 'suspended', 'payment_failed'));
  // Once per crossing: Stripe's further failed attempts on an account already suspended for them say nothing new.
  if (account.statusReason !== 'payment_failed') {
    const next = typeof inv.next_payment_attempt === 'number' ? iso(inv.next_payment_attempt * 1000) : null;
    yield* get(outbox.add({
      id: eventId(), type: 'payment.failed', accountId: account.id, createdAt: event.created * 1000,
      data: {
        accountId: account.id, invoiceId: str(inv.id) ?? null, amountDueMicros: centsToMicros(inv.amount_due) ?? null,
        attemptCount: typeof inv.attempt_count === 'number' ? inv.attempt_count : null, nextPaymentAttempt: next,
        hostedInvoiceUrl: str(inv.hosted_invoice_url) ?? null, suspended: true,
      },
    }));
  }
  return undefined;
}

function* chargeRefunded(charge: Record<string, unknown>, _event: StripeEvent, { money, billing }: EventDeps): Steps<string | undefined> {
  const pi = idOf(charge.payment_intent);
  const purchase = pi === undefined ? undefined : yield* get(billing.purchaseByPaymentIntent(pi));
  if (!purchase) return `charge ${String(charge.id)} paid for no credit purchase`;
  const refunded = centsToMicros(charge.amount_refunded);
  if (refunded === undefined) return 'the charge has no amount_refunded';
  // amount_refunded is a running total: debit only what is new since the last refund event.
  const delta = Math.min(refunded, purchase.amountMicros) - purchase.refundedMicros;
  if (delta <= 0) return 'nothing refunded beyond what was already debited';
  const account = (yield* get(billing.account(purchase.accountId)))!;
  const take = Math.min(delta, (yield* get(money.available(account.id))));
  if (take > 0) yield* get(money.debit(account.id, take, 'refund', String(charge.id)));
  if (delta > take) yield* get(billing.addDebt(account.id, delta - take));
  yield* get(billing.setRefunded(purchase.sessionId, purchase.refundedMicros + delta));
  return undefined;
}

function* disputeCreated(dispute: Record<string, unknown>, _event: StripeEvent, { money, billing }: EventDeps): Steps<string | undefined> {
  const id = String(dispute.id);
  if (yield* get(billing.dispute(id))) return `dispute ${id} is open already`;
  const pi = idOf(dispute.payment_intent);
  const purchase = pi === undefined ? undefined : yield* get(billing.purchaseByPaymentIntent(pi));
  if (!purchase) return `dispute ${id} is about no credit purchase`;
  const account = (yield* get(billing.account(purchase.accountId)))!;
  const disputed = Math.min(centsToMicros(dispute.amount) ?? 0, purchase.amountMicros - purchase.refundedMicros);
  const frozen = Math.min(disputed, (yield* get(money.available(account.id))));
  if (frozen > 0) yield* get(money.debit(account.id, frozen, 'dispute_hold', id));
  yield* get(billing.openDispute({ id, accountId: account.id, disputedMicros: disputed, frozenMicros: frozen, status: str(dispute.status) ?? 'open' }));
  yield* get(billing.setStanding(account.id, 'suspended', 'dispute'));
  return undefined;
}

function* disputeClosed(dispute: Record<string, unknown>, _event: StripeEvent, { money, billing }: EventDeps): Steps<string | undefined> {
  const id = String(dispute.id);
  const open = yield* get(billing.dispute(id));
  if (!open) return `dispute ${id} was never opened here`;
  if (yield* get(billing.disputeClosed(id))) return `dispute ${id} is settled already`;
  const status = str(dispute.status) ?? 'closed';
  // Lost: the bank took the money back; the frozen credits stay gone, and what was disputed beyond
  // them (credits already spent) becomes debt, as for a refund. Any other end (won, an inquiry
  // closed with a warning) takes nothing: the frozen credits come back.
  if (status !== 'lost' && open.frozenMicros > 0) yield* get(money.credit(open.accountId, open.frozenMicros, 'dispute_release', id));
  if (status === 'lost' && open.disputedMicros > open.frozenMicros) yield* get(billing.addDebt(open.accountId, open.disputedMicros - open.frozenMicros));
  yield* get(billing.closeDispute(id, status));
  const account = (yield* get(billing.account(open.accountId)))!;
  if (account.statusReason === 'dispute' && (yield* get(billing.openDisputes(account.id))) === 0) yield* get(billing.setStanding(account.id, 'active', null));
  return undefined;
}

const iso = (ms: number): string => new Date(ms).toISOString();
