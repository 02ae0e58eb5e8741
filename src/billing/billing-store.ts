// What Stripe billing reads and writes, behind one interface for both backends: SQLite's answers
// at once (this shape), PostgreSQL's later (MaybeAsync<BillingStore>, storage/steps.ts). A
// webhook's effect calls it inside EventLog.applyOnce's transaction, so an event's effects and
// its record commit together or not at all.

export interface BillingAccount {
  id: string;
  email: string;
  name: string | null;
  plan: string;
  status: 'active' | 'suspended';
  statusReason: string | null;
  /** `created` (ms) of the newest payment event (invoice paid or failed) applied, and its invoice. */
  standingEventAt: number | null;
  standingInvoiceId: string | null;
  balanceMicros: number;
  debtMicros: number;
  stripeCustomerId: string | null;
  subscriptionId: string | null;
  subscriptionStatus: string | null;
  /** `created` (ms) of the newest subscription event applied. */
  subscriptionEventAt: number | null;
  pastDueSince: number | null;
  periodStart: number | null;
  periodEnd: number | null;
}

export interface SubscriptionState {
  subscriptionId: string | null;
  status: string | null;
  plan: string;
  eventAt: number;
  pastDueSince: number | null;
  periodStart: number | null;
  periodEnd: number | null;
}

/** A subscription that ended (canceled, incomplete_expired), an invoice that was paid. */
export type FinalState = 'subscription_ended' | 'invoice_paid';

/** A credits checkout the gateway created: what its payment is worth. */
export interface CreditCheckout {
  sessionId: string;
  accountId: string;
  amountMicros: number;
}

export interface CreditPurchase {
  sessionId: string;
  accountId: string;
  paymentIntent: string | null;
  amountMicros: number;
  refundedMicros: number;
}

export interface Dispute {
  id: string;
  accountId: string;
  /** What the dispute is about, in credits (at most what the purchase left). */
  disputedMicros: number;
  /** What was taken out of the balance while it is open (at most the balance then). */
  frozenMicros: number;
  status: string;
}

export interface OutboxRow {
  id: number;
  accountId: string;
  eventName: string;
  intervalStart: number;
  value: number;
  identifier: string;
  attempts: number;
  stripeCustomerId: string | null;
}

export interface BillingStore {
  account(id: string): BillingAccount | undefined;
  accountByCustomer(customerId: string): BillingAccount | undefined;
  linkCustomer(accountId: string, customerId: string): void;
  setSubscription(accountId: string, s: SubscriptionState): void;
  setStanding(accountId: string, status: 'active' | 'suspended', reason: string | null): void;
  setStandingEvent(accountId: string, at: number, invoiceId: string): void;
  setPeriod(accountId: string, start: number, end: number): void;
  clearPastDue(accountId: string): void;
  addDebt(accountId: string, micros: number): void;
  /** Takes up to `micros` of debt away (what a top-up paid of it). */
  reduceDebt(accountId: string, micros: number): void;

  /** Remembers an object Stripe never moves out of `state`; a second record of it is a no-op. */
  recordFinal(objectId: string, accountId: string, state: FinalState, at: number): void;
  /** A paid subscription invoice, once per invoice (revenue: see migrations/0011). */
  recordSubscriptionPayment(invoiceId: string, accountId: string, micros: number, currency: string, paidAt: number): void;
  /** When the object reached its final state (ms), if it did. */
  finalAt(objectId: string): number | undefined;

  recordCheckout(c: CreditCheckout): void;
  /** A credits session was paid: if it was a signup's (SIGNUP=checkout), its account gets its first key. */
  completeSignup(sessionId: string): void;
  creditCheckout(sessionId: string): CreditCheckout | undefined;

  /** False when the session was recorded already. */
  recordPurchase(p: Omit<CreditPurchase, 'refundedMicros'>): boolean;
  purchaseByPaymentIntent(paymentIntent: string): CreditPurchase | undefined;
  setRefunded(sessionId: string, refundedMicros: number): void;

  openDispute(d: Dispute): void;
  dispute(id: string): Dispute | undefined;
  closeDispute(id: string, status: string): void;
  disputeClosed(id: string): boolean;
  openDisputes(accountId: string): number;

  /** Outbox rows of intervals that ended by `before`, due for a (re)try at `now`. */
  dueMeterEvents(before: number, now: number): OutboxRow[];
  pendingMeterEvents(): OutboxRow[];
  markReported(id: number): void;
  markReportFailed(id: number, error: string, retryAt: number): void;
}
