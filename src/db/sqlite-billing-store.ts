// BillingStore on the SQLite file. Statements are prepared once; webhook effects call these
// inside EventLog.applyOnce's transaction.
import type {
  BillingAccount, BillingStore, CreditCheckout, CreditPurchase, Dispute, OutboxRow,
} from '../billing/billing-store.ts';
import { completeSignup } from '../billing/signup-claims.ts';
import type { ChangeFeed } from '../storage/ports.ts';
import type { Db } from './open.ts';
import { writing } from './sqlite-busy.ts';

const ACCOUNT = `SELECT id, email, name, plan, status, status_reason AS statusReason,
  standing_event_at AS standingEventAt, standing_invoice_id AS standingInvoiceId, balance_micros AS balanceMicros,
  debt_micros AS debtMicros, stripe_customer_id AS stripeCustomerId, stripe_subscription_id AS subscriptionId,
  subscription_status AS subscriptionStatus, subscription_event_at AS subscriptionEventAt,
  past_due_since AS pastDueSince, period_start AS periodStart, period_end AS periodEnd FROM accounts`;
const OUTBOX = `SELECT o.id, o.account_id AS accountId, o.event_name AS eventName, o.interval_start AS intervalStart,
  o.value, o.identifier, o.attempts, a.stripe_customer_id AS stripeCustomerId
  FROM meter_outbox o JOIN accounts a ON a.id = o.account_id`;

export function createSqliteBillingStore(db: Db, changes: ChangeFeed, now: () => number = Date.now): BillingStore {
  const q = {
    account: db.prepare(`${ACCOUNT} WHERE id = ?`),
    byCustomer: db.prepare(`${ACCOUNT} WHERE stripe_customer_id = ?`),
    link: db.prepare('UPDATE accounts SET stripe_customer_id = ? WHERE id = ?'),
    subscription: db.prepare(`UPDATE accounts SET stripe_subscription_id = @subscriptionId, subscription_status = @status,
      plan = @plan, subscription_event_at = @eventAt, past_due_since = @pastDueSince,
      period_start = @periodStart, period_end = @periodEnd WHERE id = @accountId`),
    standing: db.prepare('UPDATE accounts SET status = ?, status_reason = ? WHERE id = ?'),
    standingEvent: db.prepare('UPDATE accounts SET standing_event_at = ?, standing_invoice_id = ? WHERE id = ?'),
    period: db.prepare('UPDATE accounts SET period_start = ?, period_end = ? WHERE id = ?'),
    clearPastDue: db.prepare('UPDATE accounts SET past_due_since = NULL WHERE id = ?'),
    addDebt: db.prepare('UPDATE accounts SET debt_micros = debt_micros + ? WHERE id = ?'),
    reduceDebt: db.prepare('UPDATE accounts SET debt_micros = max(debt_micros - ?, 0) WHERE id = ?'),
    subscriptionPayment: db.prepare(`INSERT INTO subscription_payments (invoice_id, account_id, amount_micros, currency, paid_at)
      VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
    recordFinal: db.prepare(`INSERT INTO stripe_final_states (object_id, account_id, state, event_at) VALUES (?, ?, ?, ?)
      ON CONFLICT DO NOTHING`),
    finalAt: db.prepare('SELECT event_at FROM stripe_final_states WHERE object_id = ?').pluck(),
    checkout: db.prepare(`INSERT INTO checkout_sessions (session_id, account_id, amount_micros, created_at)
      VALUES (@sessionId, @accountId, @amountMicros, @now) ON CONFLICT DO NOTHING`),
    creditCheckout: db.prepare(`SELECT session_id AS sessionId, account_id AS accountId, amount_micros AS amountMicros
      FROM checkout_sessions WHERE session_id = ?`),
    purchase: db.prepare(`INSERT INTO credit_purchases (session_id, account_id, payment_intent, amount_micros, created_at)
      VALUES (@sessionId, @accountId, @paymentIntent, @amountMicros, @now) ON CONFLICT DO NOTHING`),
    purchaseByPi: db.prepare(`SELECT session_id AS sessionId, account_id AS accountId, payment_intent AS paymentIntent,
      amount_micros AS amountMicros, refunded_micros AS refundedMicros FROM credit_purchases WHERE payment_intent = ?`),
    refunded: db.prepare('UPDATE credit_purchases SET refunded_micros = ? WHERE session_id = ?'),
    openDispute: db.prepare(`INSERT INTO disputes (id, account_id, disputed_micros, frozen_micros, status, created_at)
      VALUES (@id, @accountId, @disputedMicros, @frozenMicros, @status, @now)`),
    dispute: db.prepare(`SELECT id, account_id AS accountId, disputed_micros AS disputedMicros, frozen_micros AS frozenMicros, status
      FROM disputes WHERE id = ?`),
    closeDispute: db.prepare('UPDATE disputes SET status = ?, closed_at = ? WHERE id = ?'),
    openDisputes: db.prepare('SELECT count(*) FROM disputes WHERE account_id = ? AND closed_at IS NULL').pluck(),
    isClosed: db.prepare('SELECT closed_at IS NOT NULL FROM disputes WHERE id = ?').pluck(),
    due: db.prepare(`${OUTBOX} WHERE o.status = 'pending' AND o.interval_start < ? AND o.next_attempt_at <= ? AND o.value > 0
      ORDER BY o.interval_start LIMIT 100`),
    pending: db.prepare(`${OUTBOX} WHERE o.status = 'pending' AND o.value > 0 ORDER BY o.interval_start`),
    reported: db.prepare(`UPDATE meter_outbox SET status = 'reported', reported_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?`),
    reportFailed: db.prepare('UPDATE meter_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?'),
  };

  const changed = (accountId: string, _result: unknown): void => changes.publish({ kind: 'account', id: accountId });
  // Writes take their turn with the usage writer thread (db/sqlite-busy.ts): most run inside an
  // event's transaction, which has it already; a checkout's record and the meter reports do not.

  return {
    account: (id) => q.account.get(id) as BillingAccount | undefined,
    accountByCustomer: (customerId) => q.byCustomer.get(customerId) as BillingAccount | undefined,
    linkCustomer: (accountId, customerId) => void writing(() => q.link.run(customerId, accountId)),
    // What the request path reads of an account (plan, standing, quota period) is a change it must hear of.
    setSubscription: (accountId, s) => changed(accountId, writing(() => q.subscription.run({ accountId, ...s }))),
    setStanding: (accountId, status, reason) => changed(accountId, writing(() => q.standing.run(status, reason, accountId))),
    setStandingEvent: (accountId, at, invoiceId) => void writing(() => q.standingEvent.run(at, invoiceId, accountId)),
    setPeriod: (accountId, start, end) => changed(accountId, writing(() => q.period.run(start, end, accountId))),
    clearPastDue: (accountId) => changed(accountId, writing(() => q.clearPastDue.run(accountId))),
    addDebt: (accountId, micros) => void writing(() => q.addDebt.run(micros, accountId)),
    reduceDebt: (accountId, micros) => void writing(() => q.reduceDebt.run(micros, accountId)),

    recordFinal: (objectId, accountId, state, at) => void writing(() => q.recordFinal.run(objectId, accountId, state, at)),
    recordSubscriptionPayment: (invoiceId, accountId, micros, currency, paidAt) => void writing(() => q.subscriptionPayment.run(invoiceId, accountId, micros, currency, paidAt)),
    finalAt: (objectId) => q.finalAt.get(objectId) as number | undefined,
    recordCheckout: (c) => void writing(() => q.checkout.run({ ...c, now: now() })),
    creditCheckout: (sessionId) => q.creditCheckout.get(sessionId) as CreditCheckout | undefined,

    completeSignup: (sessionId) => writing(() => completeSignup(db, changes, sessionId, now())),
    recordPurchase: (p) => writing(() => q.purchase.run({ ...p, now: now() })).changes === 1,
    purchaseByPaymentIntent: (pi) => q.purchaseByPi.get(pi) as CreditPurchase | undefined,
    setRefunded: (sessionId, micros) => void writing(() => q.refunded.run(micros, sessionId)),

    openDispute: (d) => void writing(() => q.openDispute.run({ ...d, now: now() })),
    dispute: (id) => q.dispute.get(id) as Dispute | undefined,
    closeDispute: (id, status) => void writing(() => q.closeDispute.run(status, now(), id)),
    openDisputes: (accountId) => q.openDisputes.get(accountId) as number,
    disputeClosed: (id) => q.isClosed.get(id) === 1,

    dueMeterEvents: (before, at) => q.due.all(before, at) as OutboxRow[],
    pendingMeterEvents: () => q.pending.all() as OutboxRow[],
    markReported: (id) => void writing(() => q.reported.run(now(), id)),
    markReportFailed: (id, error, retryAt) => void writing(() => q.reportFailed.run(error, retryAt, id)),

  };
}
