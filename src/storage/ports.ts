// The storage seam: what the gateway's memory (src/state/) needs of a durable backend, one port
// per promise. The request path touches only memory; these are called to fill it (a key not seen
// yet), to refill or return a lease, and to write what memory decided, in group commits.
//
// A method a networked backend must wait for may return a promise; the SQLite backend
// (src/db/sqlite-storage.ts) returns plain values, so the hot path allocates no promise. A write
// that cannot happen now (another process holds SQLite's write lock) throws StorageBusy: nothing
// was written, and the caller tries again later, off the request path.
import type { BillingStore } from '../billing/billing-store.ts';
import type { TokenStore } from '../limiter/shared-buckets.ts';
import type { QuotaStore } from '../state/quota-slices.ts';
import type { MaybeAsync, Steps } from './steps.ts';
import type { AccountRecord, AccountStatus, KeyRecord, RecentUsage, UsageRecord } from './records.ts';

export type MaybePromise<T> = T | Promise<T>;

/** A write that could not run now and changed nothing; try again shortly. */
export class StorageBusy extends Error {
  constructor(cause: unknown) {
    super('the database is busy', { cause });
    this.name = 'StorageBusy';
  }
}

/** What loading a key brings into memory: the key, its account, and where its counters stand. */
export interface KeyLookup {
  key: KeyRecord;
  account: AccountRecord;
  /** The account's newest usage row (the head of its chain), or 0. */
  lastUsageId: number;
  /** What the customer has: the durable balance and what open leases hold unspent. */
  balanceMicros: number;
  /** What the account's alerts were last written as (see notify/alerts.ts). */
  alerts: StoredAlerts;
}

/** An account's alert settings and state as stored, read with its key. */
export interface StoredAlerts {
  /** The account's own low-balance threshold; null: its plan's. */
  lowBalanceMicros: number | null;
  /** The state written with the account's last alert; null: none yet. */
  state: AlertState | null;
  /** The subscription's billing period end (the quota period's end while one runs). */
  periodEnd: number | null;
}

/** Which alerts of an account may fire: each fires once per crossing and is re-armed when it no longer holds. */
export interface AlertState {
  lowArmed: boolean;
  depletedArmed: boolean;
  /** The quota period whose percentages fired, and the highest that did. */
  quotaPeriod: string | null;
  quotaPercent: number;
}

export const NOTIFICATION_TYPES = [
  'balance.low', 'balance.depleted', 'quota.threshold', 'credits.added', 'payment.failed', 'subscription.changed', 'key.expiring',
] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

/** What an event says besides its type: ids, money (micros, and formatted), times (ISO 8601). */
export type EventData = Readonly<Record<string, string | number | boolean | null>>;

/** An event for the operator's systems (and the customers'), as the outbox keeps it. */
export interface OutboxEvent {
  /** Unique ("evt_…"): the Standard Webhooks webhook-id of every delivery of it, resends included. */
  id: string;
  type: NotificationType;
  accountId: string | null;
  createdAt: number;
  data: EventData;
}

/** An alert decided in memory: the account's alert state after it, and the event it fired (if any). */
export interface Notice {
  accountId: string;
  alerts: AlertState;
  event: OutboxEvent | undefined;
}

/** Keys and accounts as stored. Reads only; may be served from a replica. */
export interface KeyDirectory {
  /** The key whose SHA-256 is `hash`, with its account; undefined when unknown. */
  findKey(hash: string): MaybePromise<KeyLookup | undefined>;
  /** The account as stored now (after a change). */
  findAccount(id: string): MaybePromise<AccountRecord | undefined>;
  /** Quota units counted for the account in `period`. */
  quotaUsed(accountId: string, period: string): MaybePromise<number>;
}

/** A lease as the ledger knows it: how much it holds out of the balance. */
export interface LeaseGrant {
  leaseId: number;
  /** Added to the lease by this call (0: the balance could not give `min`). */
  micros: number;
  /**
   * When micros is 0 and other nodes share the balance: what the balance and their leases of the
   * account hold unspent. Enough for `min` is money that exists elsewhere, so the node asks for it
   * back (a 'reclaim' change) and tries again rather than refuse the request.
   */
  heldElsewhere?: number;
}

/**
 * Balances and their ledger. Every change of a balance is one ledger row in the same
 * transaction; a balance never goes below zero.
 */
export interface Ledger extends Leases {
  /** Money moved by an operator or a payment, each in a transaction of its own. */
  money: Money;
  holder(holder: LeaseHolder): void;
}

/** The leases of this gateway (a node): its shares of balances, spent in its memory. */
export interface Leases {
  /**
   * Moves between `min` and `max` micro-dollars (as much as the balance holds) out of the balance
   * into this gateway's lease of the account, opening one when `leaseId` is undefined. micros is
   * 0, and nothing changes, when the balance holds less than `min`.
   */
  lease(accountId: string, leaseId: number | undefined, min: number, max: number): MaybePromise<LeaseGrant>;
  /** Puts `micros` of a running lease (unspent and unreserved) back into the balance. */
  giveBack(leaseId: number, micros: number): MaybePromise<void>;
  /**
   * Ends a lease: what its usage rows did not spend goes back to the balance. Its rows must be
   * written first (UsageLog.write). Returns what was given back.
   */
  close(leaseId: number): MaybePromise<number>;
  /**
   * The durable balance plus what open leases hold unspent (what a customer has); `others`: only
   * other nodes' leases (this node knows its own better, in memory).
   */
  balance(accountId: string, others?: boolean): MaybePromise<number>;
  /** Who holds leases of accounts in this process (the gateway's wallets), for debits that find the balance short: see LeaseHolder. */
  holder?(holder: LeaseHolder): void;
}

/**
 * The wallets of this gateway, as money sees them: a debit that finds the durable balance short
 * (a refund, a dispute) asks for what a lease holds unreserved, given back in its transaction.
 */
export interface LeaseHolder {
  /** What this gateway's lease of the account holds unreserved. */
  holding(accountId: string): number;
  /** Gives back up to `micros` of it (with Leases.giveBack); settles once the balance has it. */
  giveBack(accountId: string, micros: number): MaybePromise<void>;
}

/**
 * Credits and debits of the durable balance with their ledger rows, in the transaction of the
 * caller when there is one (a webhook's effect).
 */
export interface Money {
  /** Adds `micros` with a ledger row; returns the durable balance after. */
  credit(accountId: string, micros: number, kind: string, reference: string): number;
  /**
   * Takes `micros` with a ledger row; false, and no change, when the balance cannot pay. When
   * the durable balance alone is short, a lease of the account is asked to give back first
   * (Ledger.onShort).
   */
  debit(accountId: string, micros: number, kind: string, reference: string): boolean;
  /** The durable balance alone. */
  durable(accountId: string): number;
  /** What a debit could take now: the durable balance and what a lease here holds unreserved. */
  available(accountId: string): number;
}

/** What a webhook's effect is handed: the money, billing state and outbox of its transaction. */
export interface EventTx {
  money: MaybeAsync<Pick<Money, 'credit' | 'debit' | 'available'>>;
  billing: MaybeAsync<BillingStore>;
  outbox: MaybeAsync<OutboxWriter>;
}

/**
 * Webhook events, each applied exactly once: the event's id is recorded in the transaction of
 * its effect, and the effect is handed that transaction's money.
 */
export interface EventLog {
  /**
   * Runs `effect` and records the event in one transaction, unless it was applied before (an
   * ignored one runs again). The effect returns undefined when it applied, or a note saying why
   * it did nothing; if it throws, nothing it did is kept. It is written as steps (storage/steps.ts)
   * so that one effect runs in SQLite's synchronous transactions and in PostgreSQL's.
   */
  applyOnce(event: InboundEvent, effect: (tx: EventTx) => Steps<string | undefined>): MaybePromise<ApplyOutcome>;
  /** Keeps a failed event (and counts the attempt) so it can be listed and replayed. */
  recordFailure(event: InboundEvent, error: string): MaybePromise<void>;
}

/** What a group commit writes besides the rows: the counters of one account, as deltas. */
export interface Tally {
  accountId: string;
  /** The oldest and newest rows of the account counted here (throughId: the counter rows' through_id). */
  firstId: number;
  throughId: number;
  // Small arrays, not maps: an account has one or two of each between writes, and with 100 000
  // accounts in memory every byte of a tally counts.
  /** Quota units counted since the last write, by period. */
  quota: { period: string; units: number }[] | undefined;
  /** Micro-dollars the account's rows spent since the last write, by lease. */
  spent: { leaseId: number; micros: number }[] | undefined;
  /** Overage units since the last write, by Stripe meter and interval start. */
  overage: { meter: string; intervalStart: number; units: number }[] | undefined;
  /** The account's daily rollups since the last write, by day, route, model and status. */
  days: DayTotals[];
}

/** One day's totals of an account on a route, model ('' for plain routes) and status. */
export interface DayTotals {
  /** Midnight UTC, in ms. */
  day: number;
  route: string;
  model: string;
  status: number;
  requests: number;
  billable: number;
  chargedMicros: number;
  inputTokens: number;
  cachedTokens: number;
  cacheWriteTokens: number;
  outputTokens: number;
}

/** A write that answers later: a promise, or a writer thread's answer (db/usage-thread.ts). */
export interface Later {
  then(ok: () => void, fail: (err: unknown) => void): unknown;
}

/** Usage rows and the counters derived from them. */
export interface UsageLog {
  /**
   * The backend counts each row into the counters as it writes it (PostgreSQL): the gateway keeps
   * no tallies, and write() gets none. Otherwise the gateway hands it tallies, later than the rows.
   */
  readonly countsRows?: boolean;
  /** Writes cross a network and answer later: a connection's next request waits for its last row (Recorder.durable). */
  readonly remote?: boolean;
  /** With remote: a commit costs no round trip (a writer thread), so one starts as soon as a connection waits for it. */
  readonly commitsAtOnce?: boolean;
  /** The id the next row gets: the gateway numbers its rows (one writer per SQLite file; each node its own on PostgreSQL). */
  nextId(): MaybePromise<number>;
  /**
   * Writes rows, tallies and alert notices in one transaction, and records that every row up to
   * `throughId` is counted in the counter rows. Throws StorageBusy when it cannot write now.
   */
  write(rows: readonly UsageRecord[], tallies: readonly Tally[], throughId: number, notices: readonly Notice[]): void | Later;
  /** Blocks until every write() started has answered (a writer thread's log: it answers in µs). */
  waitNow?(): void;
  /**
   * The account's latest written rows, newest first: on SQLite the chain from row `head` back (0:
   * none), on PostgreSQL every node's by the account's index (`head` is this node's alone).
   */
  recent(accountId: string, head: number, limit: number): MaybePromise<RecentUsage[]>;
  /**
   * Deletes up to `limit` of the oldest rows written before `before` (ms), never one not yet
   * counted; returns how many it deleted (0: nothing is that old). Rollups and the ledger stay.
   */
  prune(before: number, limit: number): MaybePromise<number>;
}

/** A webhook event as received: its id, type and raw JSON. */
export interface InboundEvent {
  source: string;
  id: string;
  type: string;
  payload: string;
}

/** What applying an event did: its effect ran, it needed none (with why), or it was seen before. */
export type ApplyOutcome = { status: 'applied' } | { status: 'ignored'; note: string } | { status: 'duplicate' };

/** What a change touched, for the memory that holds a copy of it. */
export type Change =
  | { kind: 'key'; hash: string }
  | { kind: 'account'; id: string }
  | { kind: 'balance'; id: string }
  /** A node found the balance empty while other nodes' leases hold it: they give back what they can (other nodes only). */
  | { kind: 'reclaim'; id: string }
  /** Something changed that the feed cannot name (a hand edit): reload everything. */
  | { kind: 'all' };

/** Changes made by this or another process, delivered to whoever holds copies. */
export interface ChangeFeed {
  /** Records `change` (inside the caller's transaction when there is one) for other processes. */
  publish(change: Change): void;
  /** `listener` hears changes of this process at once, other processes' within 200 ms. */
  subscribe(listener: (change: Change) => void): void;
}

/** Records events for delivery, inside the caller's transaction when there is one. */
export interface OutboxWriter {
  add(event: OutboxEvent): void;
}

export type Channel = 'webhook' | 'email';

/** Where one event goes: a webhook URL or an email address. */
export interface Destination {
  channel: Channel;
  target: string;
}

/** A delivery due for an attempt, with its event. */
export interface Delivery extends Destination {
  id: number;
  event: OutboxEvent;
  attempts: number;
  /** When its first attempt failed (the start of its retries), or null. */
  failingSince: number | null;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** A delivery as listed. */
export interface DeliveryRecord extends Destination {
  id: number;
  eventId: string;
  type: NotificationType;
  accountId: string | null;
  status: DeliveryStatus;
  attempts: number;
  /** The receiver's last answer: an HTTP status, an SMTP reply code; null: none (unreachable). */
  lastStatus: number | null;
  lastError: string | null;
  createdAt: number;
  nextAttemptAt: number | null;
  deliveredAt: number | null;
}

/**
 * Events and their deliveries. An event is written in the commit of the change that caused it;
 * fanOut gives it one delivery per destination that wants it; the deliverer (notify/) attempts
 * them off the request path and records each outcome.
 */
export interface Outbox extends OutboxWriter {
  /**
   * Gives up to `limit` events not handed out yet their deliveries, in one transaction:
   * `destinations` says where each goes (`email`: its account's address). Returns how many.
   */
  fanOut(destinations: (event: OutboxEvent, email: string | null) => Destination[], limit: number): MaybePromise<number>;
  /** Pending deliveries whose next attempt is due at `now`, oldest due first. */
  due(now: number, limit: number): MaybePromise<Delivery[]>;
  /** The receiver took it: it is never sent again (unless resent by hand). */
  delivered(id: number, now: number, status: number): MaybePromise<void>;
  /** An attempt failed: try again at `retryAt`, or give up (null). */
  failed(id: number, now: number, status: number | null, error: string, retryAt: number | null): MaybePromise<void>;
  /** key.expiring for up to `limit` keys expiring within `withinMs` of `now` not told of yet; returns how many. */
  keysExpiring(now: number, withinMs: number, limit: number): MaybePromise<number>;
  /** Deliveries, newest first: all, or only those that gave up; `before`: older than that id. */
  list(o: { failed: boolean; limit: number; before?: number; accountId?: string }): MaybePromise<DeliveryRecord[]>;
  /** Sends a delivery again (delivered or given up), with a fresh day of retries; undefined when unknown. */
  resend(id: number, now: number): MaybePromise<DeliveryRecord | undefined>;
}

/**
 * What the request path needs of a backend: keys, leases, usage rows and changes. The gateway's
 * memory (src/state/) runs on this alone; PostgreSQL implements it for several nodes (src/pg/).
 */
export interface CoreStorage {
  keys: KeyDirectory;
  ledger: Leases;
  usage: UsageLog;
  changes: ChangeFeed;
  /** This gateway's name in the leases it holds. */
  readonly node: string;
  /** Several nodes share the database: when this one may not spend its leases (see Fencing). */
  readonly fencing?: Fencing;
  /** Several nodes share the rate limits: the accounts' token buckets (limiter/shared-buckets.ts). */
  readonly rateBuckets?: TokenStore;
  /** Several nodes share the monthly quotas: they take slices of them (state/quota-slices.ts). */
  readonly quotas?: QuotaStore;
  /**
   * Counts usage rows written before a crash into the counters they missed, and ends the leases
   * a previous run of this node left open (what they did not spend returns to the balance).
   * Called at start, before serving, and at shutdown once the rows are written (the counters
   * they owe are counted in this one pass, not written account by account).
   */
  recover(): MaybePromise<{ leasesClosed: number; rowsCounted: number }>;
  isReady(): boolean;
  close(): MaybePromise<void>;
}

/**
 * A node of several is safe to spend its leases only while the others cannot have taken it for
 * dead (its heartbeats late: pg/node-life.ts). Told when that changes; `reaped`: they did, and
 * its leases are gone.
 */
export interface Fencing {
  spendable(): boolean;
  onFenced(listener: (reaped: boolean) => void): void;
}

/** Stripe's side of the accounts, and the webhook events applied to them (both backends). */
export interface BillingStorage {
  billing: MaybeAsync<BillingStore>;
  events: EventLog;
  /** Several gateways share the meter outbox: runs a report while no other one does (else undefined). */
  alone?: <T>(report: () => Promise<T>) => Promise<T | undefined>;
}

/** Where notifications wait for delivery (both backends). */
export interface NotifyStorage {
  outbox: MaybeAsync<Outbox>;
}

/** Everything the gateway stores on SQLite: the core, and the money, billing and outbox around it. */
export interface Storage extends CoreStorage, BillingStorage, NotifyStorage {
  ledger: Ledger;
  billing: BillingStore;
  events: EventLog;
  outbox: Outbox;
}

export type { AccountStatus };
