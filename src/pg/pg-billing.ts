// Stripe billing on PostgreSQL, for several nodes: the billing store (as SQLite's,
// db/sqlite-billing-store.ts), money moved by webhooks, and the webhook events. An event may reach
// any node, and Stripe retries and replays: each is applied once across all of them, because its
// id is the primary key of webhook_events, written in the transaction that runs its effect. A
// second node delivering the same event waits on that row and then finds it applied.
import type { BillingAccount, BillingStore, CreditCheckout, CreditPurchase, Dispute, OutboxRow } from '../billing/billing-store.ts';
import type { Change, EventLog, EventTx, LeaseHolder } from '../storage/ports.ts';
import { runAsync, type MaybeAsync } from '../storage/steps.ts';
import { recordChange, type PgChangeFeed } from './pg-changes.ts';
import { addEvents } from './pg-outbox.ts';
import { pgCompleteSignup } from './pg-ui.ts';
import { transaction, type Client, type Pool } from './pool.ts';

type Queryable = Client | Pool;
type Store = MaybeAsync<BillingStore>;

const ACCOUNT = `SELECT id, email, name, plan, status, status_reason AS "statusReason",
  standing_event_at AS "standingEventAt", standing_invoice_id AS "standingInvoiceId", balance_micros AS "balanceMicros",
  debt_micros AS "debtMicros", stripe_customer_id AS "stripeCustomerId", stripe_subscription_id AS "subscriptionId",
  subscription_status AS "subscriptionStatus", subscription_event_at AS "subscriptionEventAt",
  past_due_since AS "pastDueSince", period_start AS "periodStart", period_end AS "periodEnd" FROM accounts`;
const OUTBOX = `SELECT o.id, o.account_id AS "accountId", o.event_name AS "eventName", o.interval_start AS "intervalStart",
  o.value, o.identifier, o.attempts, a.stripe_customer_id AS "stripeCustomerId"
  FROM meter_outbox o JOIN accounts a ON a.id = o.account_id`;

/** Any number, the same in every node: the lock one node reports the meter outbox under. */
const METER_LOCK = 0x7467_6d32;

async function one<T>(c: Queryable, sql: string, values: unknown[]): Promise<T | undefined> {
  return (await c.query(sql, values)).rows[0] as T | undefined;
}

/** Records a change the nodes must hear of: in the caller's transaction, or on its own. */
type Changed = (change: Change) => Promise<void>;

/**
 * The billing store on `c`: a transaction's connection (a webhook's effect) or the pool (checkout,
 * the reporter, the CLI). `changed` records what the request path must hear of (by default as
 * no node's: every node reads it from the changes table).
 */
export function pgBillingStore(c: Queryable, now: () => number, changed: Changed = (change) => recordChange(c, change, '')): Store {
  const run = async (sql: string, values: unknown[]) => void await c.query(sql, values);
  const update = async (accountId: string, sql: string, values: unknown[]) => {
    await c.query(sql, [accountId, ...values]);
    // What the request path reads of an account (plan, standing, quota period) is a change it must hear of.
    await changed({ kind: 'account', id: accountId });
  };
  return {
    account: (id) => one<BillingAccount>(c, `${ACCOUNT} WHERE id = $1`, [id]),
    accountByCustomer: (customerId) => one<BillingAccount>(c, `${ACCOUNT} WHERE stripe_customer_id = $1`, [customerId]),
    linkCustomer: (accountId, customerId) => run('UPDATE accounts SET stripe_customer_id = $2 WHERE id = $1', [accountId, customerId]),
    setSubscription: (accountId, s) => update(accountId, `UPDATE accounts SET stripe_subscription_id = $2, subscription_status = $3, plan = $4,
      subscription_event_at = $5, past_due_since = $6, period_start = $7, period_end = $8 WHERE id = $1`,
    [s.subscriptionId, s.status, s.plan, s.eventAt, s.pastDueSince, s.periodStart, s.periodEnd]),
    setStanding: (accountId, status, reason) => update(accountId, 'UPDATE accounts SET status = $2, status_reason = $3 WHERE id = $1', [status, reason]),
    setStandingEvent: (accountId, at, invoiceId) => run('UPDATE accounts SET standing_event_at = $2, standing_invoice_id = $3 WHERE id = $1', [accountId, at, invoiceId]),
    setPeriod: (accountId, start, end) => update(accountId, 'UPDATE accounts SET period_start = $2, period_end = $3 WHERE id = $1', [start, end]),
    clearPastDue: (accountId) => update(accountId, 'UPDATE accounts SET past_due_since = NULL WHERE id = $1', []),
    addDebt: (accountId, micros) => run('UPDATE accounts SET debt_micros = debt_micros + $2 WHERE id = $1', [accountId, micros]),
    reduceDebt: (accountId, micros) => run('UPDATE accounts SET debt_micros = greatest(debt_micros - $2, 0) WHERE id = $1', [accountId, micros]),

    recordFinal: (objectId, accountId, state, at) => run(`INSERT INTO stripe_final_states (object_id, account_id, state, event_at)
      VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [objectId, accountId, state, at]),
    recordSubscriptionPayment: (invoiceId, accountId, micros, currency, paidAt) => run(`INSERT INTO subscription_payments
      (invoice_id, account_id, amount_micros, currency, paid_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
    [invoiceId, accountId, micros, currency, paidAt]),
    finalAt: async (objectId) => (await one<{ at: number }>(c, 'SELECT event_at AS at FROM stripe_final_states WHERE object_id = $1', [objectId]))?.at,

    recordCheckout: (x) => run(`INSERT INTO checkout_sessions (session_id, account_id, amount_micros, created_at) VALUES ($1, $2, $3, $4)
      ON CONFLICT DO NOTHING`, [x.sessionId, x.accountId, x.amountMicros, now()]),
    completeSignup: (sessionId) => pgCompleteSignup(c, changed, sessionId, now()),
    creditCheckout: (sessionId) => one<CreditCheckout>(c, `SELECT session_id AS "sessionId", account_id AS "accountId", amount_micros AS "amountMicros"
      FROM checkout_sessions WHERE session_id = $1`, [sessionId]),

    recordPurchase: async (p) => ((await c.query(`INSERT INTO credit_purchases (session_id, account_id, payment_intent, amount_micros, created_at)
      VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, [p.sessionId, p.accountId, p.paymentIntent, p.amountMicros, now()])).rowCount === 1),
    purchaseByPaymentIntent: (pi) => one<CreditPurchase>(c, `SELECT session_id AS "sessionId", account_id AS "accountId",
      payment_intent AS "paymentIntent", amount_micros AS "amountMicros", refunded_micros AS "refundedMicros" FROM credit_purchases
      WHERE payment_intent = $1`, [pi]),
    setRefunded: (sessionId, micros) => run('UPDATE credit_purchases SET refunded_micros = $2 WHERE session_id = $1', [sessionId, micros]),

    openDispute: (d) => run(`INSERT INTO disputes (id, account_id, disputed_micros, frozen_micros, status, created_at)
      VALUES ($1, $2, $3, $4, $5, $6)`, [d.id, d.accountId, d.disputedMicros, d.frozenMicros, d.status, now()]),
    dispute: (id) => one<Dispute>(c, `SELECT id, account_id AS "accountId", disputed_micros AS "disputedMicros",
      frozen_micros AS "frozenMicros", status FROM disputes WHERE id = $1`, [id]),
    closeDispute: (id, status) => run('UPDATE disputes SET status = $2, closed_at = $3 WHERE id = $1', [id, status, now()]),
    openDisputes: async (accountId) => (await one<{ n: number }>(c, 'SELECT count(*)::int AS n FROM disputes WHERE account_id = $1 AND closed_at IS NULL', [accountId]))!.n,
    disputeClosed: async (id) => (await one<{ closed: boolean }>(c, 'SELECT closed_at IS NOT NULL AS closed FROM disputes WHERE id = $1', [id]))?.closed === true,

    dueMeterEvents: async (before, at) => (await c.query<OutboxRow>(`${OUTBOX} WHERE o.status = 'pending' AND o.interval_start < $1
      AND o.next_attempt_at <= $2 AND o.value > 0 ORDER BY o.interval_start LIMIT 100`, [before, at])).rows,
    pendingMeterEvents: async () => (await c.query<OutboxRow>(`${OUTBOX} WHERE o.status = 'pending' AND o.value > 0 ORDER BY o.interval_start`)).rows,
    markReported: (id) => run(`UPDATE meter_outbox SET status = 'reported', reported_at = $2, attempts = attempts + 1, last_error = NULL
      WHERE id = $1`, [id, now()]),
    markReportFailed: (id, error, retryAt) => run('UPDATE meter_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1',
      [id, error, retryAt]),
  };
}

/**
 * Money moved by a webhook's effect, in its transaction. A debit that finds the durable balance
 * short first has this node's lease give back what it holds unreserved (in the lease's own
 * transaction, before this one locks the account's row: the give-back locks it too). What other
 * nodes' leases hold is theirs to spend: a refund beyond what is here becomes debt.
 */
function pgMoney(c: Client, holder: () => LeaseHolder | undefined, now: () => number, changed: Changed): EventTx['money'] {
  const locked = new Set<string>();
  async function move(accountId: string, micros: number, kind: string, reference: string): Promise<number | undefined> {
    locked.add(accountId);
    const row = await one<{ after: number }>(c, micros < 0
      ? 'UPDATE accounts SET balance_micros = balance_micros + $2::bigint WHERE id = $1 AND balance_micros >= -$2::bigint RETURNING balance_micros AS after'
      : 'UPDATE accounts SET balance_micros = balance_micros + $2 WHERE id = $1 RETURNING balance_micros AS after', [accountId, micros]);
    if (row === undefined) return undefined;
    await c.query(`INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
      VALUES ($1, $2, $3, $4, $5, $6)`, [accountId, micros, row.after, kind, reference, now()]);
    await changed({ kind: 'balance', id: accountId });
    return row.after;
  }
  const durable = async (accountId: string) => (await one<{ micros: number }>(c, 'SELECT balance_micros AS micros FROM accounts WHERE id = $1', [accountId]))?.micros ?? 0;
  return {
    async credit(accountId, micros, kind, reference) {
      const after = await move(accountId, micros, kind, reference);
      if (after === undefined) throw new Error(`no account ${accountId}`);
      return after;
    },
    async debit(accountId, micros, kind, reference) {
      if (micros === 0) return true;
      if (!locked.has(accountId)) {
        const short = micros - await durable(accountId);
        if (short > 0) await holder()?.giveBack(accountId, short);
      }
      return (await move(accountId, -micros, kind, reference)) !== undefined;
    },
    available: async (accountId) => await durable(accountId) + (holder()?.holding(accountId) ?? 0),
  };
}

export interface PgBilling {
  billing: Store;
  events: EventLog;
  alone<T>(report: () => Promise<T>): Promise<T | undefined>;
  /** The wallets of this node, which a debit asks to give back (set by the gateway's memory). */
  holder(h: LeaseHolder): void;
}

export interface PgBillingDeps {
  /**
   * The changes of this node: its listeners hear of an event's changes before its webhook is
   * answered. Without (a tool such as the CLI): recorded as no node's, for every node to read.
   */
  changes?: PgChangeFeed;
  node?: string;
  now?: () => number;
}

export function createPgBilling(pool: Pool, { changes, node = '', now = Date.now }: PgBillingDeps = {}): PgBilling {
  let holder: LeaseHolder | undefined;
  const events: EventLog = {
    applyOnce: (event, effect) => applying(async (c, changed) => {
      // Locks the event's row (inserted now, or waited for until the node applying it commits).
      const { status } = (await one<{ status: string }>(c, `INSERT INTO webhook_events (id, source, type, status, payload, received_at)
        VALUES ($1, $2, $3, 'applying', $4, $5) ON CONFLICT (id) DO UPDATE SET status = webhook_events.status RETURNING status`,
      [event.id, event.source, event.type, event.payload, now()]))!;
      // Only an applied event is final: one ignored or failed runs again, and its effect decides afresh.
      if (status === 'applied') return { status: 'duplicate' as const };
      const tx: EventTx = {
        money: pgMoney(c, () => holder, now, changed),
        billing: pgBillingStore(c, now, changed),
        outbox: { add: (e) => addEvents(c, [e]) },
      };
      const note = await runAsync(effect(tx));
      await c.query(`UPDATE webhook_events SET status = $2, note = $3, applied_at = $4,
        attempts = attempts + CASE WHEN $5 THEN 0 ELSE 1 END WHERE id = $1`,
      [event.id, note === undefined ? 'applied' : 'ignored', note ?? null, now(), status === 'applying']);
      return note === undefined ? { status: 'applied' as const } : { status: 'ignored' as const, note };
    }),

    async recordFailure(event, error) {
      // Never over an application another node committed meanwhile: a replay would apply it again.
      await pool.query(`INSERT INTO webhook_events (id, source, type, status, note, payload, received_at) VALUES ($1, $2, $3, 'failed', $4, $5, $6)
        ON CONFLICT (id) DO UPDATE SET status = 'failed', note = excluded.note, attempts = webhook_events.attempts + 1, applied_at = NULL
        WHERE webhook_events.status <> 'applied'`, [event.id, event.source, event.type, error, event.payload, now()]);
    },
  };

  /** A transaction whose changes are recorded in it and told to this node's listeners once it commits. */
  async function applying<T>(work: (c: Client, changed: Changed) => Promise<T>): Promise<T> {
    const told: Change[] = [];
    const out = await transaction(pool, (c) => work(c, async (change) => {
      await recordChange(c, change, node);
      told.push(change);
    }));
    for (const change of told) changes?.tell(change);
    return out;
  }

  return {
    billing: pgBillingStore(pool, now, changes && (async (change) => changes.publish(change))),
    events,
    holder(h) {
      holder = h;
    },
    async alone(report) {
      // A session lock on one connection: released at unlock, or when the connection dies with its node.
      const c = await pool.connect();
      try {
        if (!(await one<{ got: boolean }>(c, 'SELECT pg_try_advisory_lock($1) AS got', [METER_LOCK]))!.got) return undefined;
        try {
          return await report();
        } finally {
          await c.query('SELECT pg_advisory_unlock($1)', [METER_LOCK]);
        }
      } finally {
        c.release();
      }
    },
  };
}
