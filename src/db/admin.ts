// Operator actions on accounts, keys, credits and webhook events: what the CLI and the admin API
// call. Not on the request path. Reads are SQL on the file; changes go through the storage ports,
// so money moves with its ledger row and every change is published: a gateway in this process
// hears of it at once, one in another process within 200 ms. Each change is recorded in the
// audit log, by the Admin's actor, in the change's own transaction.
import { apply } from '../billing/webhooks.ts';
import type { StripeEvent } from '../billing/stripe-events.ts';
import type { Config } from '../config.ts';
import { displayPrefix, generateKey, hashKey, newId } from '../keys.ts';
import type { Logger } from '../log.ts';
import { formatMicros } from '../money.ts';
import type { DeliveryRecord, EventLog, Storage } from '../storage/ports.ts';
import type { AccountRecord, AccountStatus, RecentUsage } from '../storage/records.ts';
import { auditPage, CLI_ACTOR, recordAudit, type Actor, type AuditAction, type AuditEntry, type Page } from './audit.ts';
import type { Db } from './open.ts';
import { writing } from './sqlite-busy.ts';
import { findRequest, type RequestSearch } from './request-lookup.ts';
import { emptyDay, seriesByDay, totalsByStatus, type DayRow } from './usage-totals.ts';

import {
  ConflictError, EmailTakenError, InsufficientBalanceError, InvalidInputError, NotFoundError,
  type Account, type AccountChange, type AccountQuery, type ApiKey, type LedgerEntry, type LedgerPage, type LiveView,
  type Replay, type UsageSummary, type WebhookEvent,
} from './admin-types.ts';

export type { Actor, AuditEntry, Page } from './audit.ts';
export * from './admin-types.ts';

// The balance a customer has: the durable one and what open leases hold unspent (as far as the
// gateway has written its counters: a running gateway's own view, LiveView, is exact).
const ACCOUNT_COLS = `id, email, name, plan, status, status_reason AS statusReason, balance_micros + coalesce((SELECT sum(granted_micros - consumed_micros)
  FROM leases l WHERE l.account_id = accounts.id AND l.closed_at IS NULL), 0) AS balanceMicros, created_at AS createdAt`;
const LEDGER_COLS = `id, amount_micros AS amountMicros, balance_after_micros AS balanceAfterMicros, kind, reference,
  created_at AS createdAt`;
const KEY_COLS = `id, account_id AS accountId, name, prefix, created_at AS createdAt, expires_at AS expiresAt,
  revoked_at AS revokedAt, replaced_by AS replacedBy, hash`;
const EVENT_COLS = 'id, type, status, note, attempts, received_at AS receivedAt, applied_at AS appliedAt';

const DAY_MS = 86_400_000;
/** A per-day series at most this long (a year and a day: a leap year's dashboard). */
export const MAX_DAYS = 367;

/** One more row than asked says whether there is a next page; its cursor is the last row's id. */
function page<T extends { id: string | number }>(rows: T[], limit: number): Page<T> {
  const data = rows.slice(0, limit);
  return { data, next: rows.length > limit ? String(data[data.length - 1].id) : null };
}

export class Admin {
  private readonly db: Db;

  constructor(
    private readonly storage: Storage & { db: Db },
    private readonly now: () => number = Date.now,
    private readonly live?: LiveView,
    /** Whom the audit log names for this Admin's changes. */
    readonly actor: Actor = CLI_ACTOR,
  ) {
    this.db = storage.db;
  }

  /** The same actions, recorded as done by `actor`. */
  as(actor: Actor): Admin {
    return new Admin(this.storage, this.now, this.live, actor);
  }

  /** Refuses an email another account has, in any case (migration 0005's index): EmailTakenError. */
  createAccount(input: { email: string; name?: string | null; plan: string }): Account {
    const id = newId('acct');
    return this.change(() => {
      this.withUniqueEmail(input.email, () => this.db.prepare('INSERT INTO accounts (id, email, name, plan, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(id, input.email, input.name ?? null, input.plan, this.now()));
      this.audit('account.create', id, id, { email: input.email, name: input.name ?? null, plan: input.plan });
      return this.account(id);
    });
  }

  /** Oldest first, in pages; new accounts join the end, so a cursor stays valid while they do. */
  accountsPage({ limit, after, plan, status, email }: AccountQuery): Page<Account> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (after !== undefined) where.push('rowid > ?'), args.push(this.rowid('accounts', 'account', after));
    if (plan !== undefined) where.push('plan = ?'), args.push(plan);
    if (status !== undefined) where.push('status = ?'), args.push(status);
    if (email !== undefined) where.push('email = ? COLLATE NOCASE'), args.push(email);
    const rows = this.db.prepare(`SELECT ${ACCOUNT_COLS} FROM accounts ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY rowid LIMIT ?`).all(...args, limit + 1) as Account[];
    return page(rows.map((a) => this.withLive(a)), limit);
  }

  account(id: string): Account {
    const a = this.db.prepare(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE id = ?`).get(id) as Account | undefined;
    if (!a) throw new NotFoundError(`account ${id}`);
    return this.withLive(a);
  }

  /**
   * Changes what is given. Suspending by hand records the reason 'operator' (a paid invoice does
   * not lift it); reactivating clears any reason, whoever suspended.
   */
  updateAccount(id: string, input: AccountChange): Account {
    return this.change(() => {
      const before = this.account(id);
      const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as AccountChange;
      const after = { ...before, ...given };
      if (input.status !== undefined && input.status !== before.status) after.statusReason = input.status === 'suspended' ? 'operator' : null;
      const diff: Record<string, { from: unknown; to: unknown }> = {};
      for (const f of ['name', 'email', 'plan', 'status', 'statusReason'] as const) {
        if (after[f] !== before[f]) diff[f] = { from: before[f], to: after[f] };
      }
      if (Object.keys(diff).length === 0) return before;
      this.withUniqueEmail(after.email, () => this.db.prepare('UPDATE accounts SET name = ?, email = ?, plan = ?, status = ?, status_reason = ? WHERE id = ?')
        .run(after.name, after.email, after.plan, after.status, after.statusReason, id));
      this.storage.changes.publish({ kind: 'account', id });
      this.audit('account.update', id, id, diff);
      return this.account(id);
    });
  }

  setPlan(id: string, plan: string): Account {
    return this.updateAccount(id, { plan });
  }

  setStatus(id: string, status: AccountStatus): Account {
    return this.updateAccount(id, { status });
  }

  private withUniqueEmail(email: string, write: () => unknown): void {
    try {
      write();
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_CONSTRAINT_UNIQUE') throw err;
      const holder = this.db.prepare(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE email = ? COLLATE NOCASE`).get(email) as Account | undefined;
      throw holder ? new EmailTakenError(holder) : err;
    }
  }

  private withLive(a: Account): Account {
    return this.live ? { ...a, balanceMicros: this.live.balance(a.id) } : a;
  }

  /** Returns the key itself once; only its hash is stored. */
  createKey(input: { accountId: string; name?: string | null; expiresAt?: number | null }): ApiKey & { key: string } {
    return this.change(() => {
      const created = this.insertKey(input);
      this.audit('key.create', created.id, input.accountId, { name: created.name, expiresAt: created.expiresAt });
      return created;
    });
  }

  private insertKey(input: { accountId: string; name?: string | null; expiresAt?: number | null }): ApiKey & { key: string } {
    this.account(input.accountId);
    const key = generateKey();
    const id = newId('key');
    const hash = hashKey(key);
    this.db.prepare(`INSERT INTO api_keys (id, account_id, name, hash, prefix, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(id, input.accountId, input.name ?? null, hash, displayPrefix(key), this.now(), input.expiresAt ?? null);
    // A gateway may have seen this key before it existed (and remembered it as unknown).
    this.storage.changes.publish({ kind: 'key', hash });
    return { ...this.key(id), key };
  }

  /** Every key (of the account), oldest first. */
  listKeys(accountId?: string): ApiKey[] {
    // limit + 1 must stay a safe integer.
    return this.keysPage(accountId, { limit: Number.MAX_SAFE_INTEGER - 1 }).data;
  }

  /** Oldest first, in pages (`after`: the last key id of the previous page). */
  keysPage(accountId: string | undefined, { limit, after }: { limit: number; after?: string }): Page<ApiKey> {
    const from = after === undefined ? 0 : this.rowid('api_keys', 'key', after);
    const rows = (accountId === undefined
      ? this.db.prepare(`SELECT ${KEY_COLS} FROM api_keys WHERE rowid > ? ORDER BY rowid LIMIT ?`).all(from, limit + 1)
      : this.db.prepare(`SELECT ${KEY_COLS} FROM api_keys WHERE account_id = ? AND rowid > ? ORDER BY rowid LIMIT ?`).all(accountId, from, limit + 1)
    ) as (ApiKey & { hash: string })[];
    return page(rows.map((k) => this.withLastUse(k)), limit);
  }

  key(id: string): ApiKey {
    const k = this.db.prepare(`SELECT ${KEY_COLS} FROM api_keys WHERE id = ?`).get(id) as ApiKey & { hash: string } | undefined;
    if (!k) throw new NotFoundError(`key ${id}`);
    return this.withLastUse(k);
  }

  private withLastUse({ hash, ...k }: ApiKey & { hash: string }): ApiKey {
    return { ...k, lastUsedAt: this.live?.keyLastUsed?.(hash) ?? null };
  }

  /** The rowid of a listing's cursor: the id of a row that exists. */
  private rowid(table: 'accounts' | 'api_keys', what: string, id: string): number {
    const r = this.db.prepare(`SELECT rowid FROM ${table} WHERE id = ?`).pluck().get(id) as number | undefined;
    if (r === undefined) throw new InvalidInputError(`after: no ${what} ${id} (pass the "next" cursor of the previous page)`);
    return r;
  }

  /** Revoking twice keeps the first time (and records only the first). */
  revokeKey(id: string): ApiKey {
    return this.change(() => {
      const key = this.key(id);
      if (key.revokedAt !== null) return key;
      this.db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ?').run(this.now(), id);
      this.keyChanged(id);
      this.audit('key.revoke', id, key.accountId, {});
      return this.key(id);
    });
  }

  private keyChanged(id: string): void {
    const hash = this.db.prepare('SELECT hash FROM api_keys WHERE id = ?').pluck().get(id) as string;
    this.storage.changes.publish({ kind: 'key', hash });
  }

  /** Issues a new key for the same account; the old one keeps working for `graceMs`, then stops. */
  rotateKey(id: string, graceMs: number): { old: ApiKey; new: ApiKey & { key: string } } {
    return this.change(() => {
      const old = this.key(id);
      if (old.revokedAt !== null) throw new ConflictError(`key ${id} is revoked; create a new key instead`);
      if (old.expiresAt !== null && old.expiresAt <= this.now()) throw new ConflictError(`key ${id} has expired; create a new key instead`);
      const fresh = this.insertKey({ accountId: old.accountId, name: old.name, expiresAt: old.expiresAt });
      const until = this.now() + graceMs;
      this.db.prepare('UPDATE api_keys SET expires_at = min(coalesce(expires_at, @until), @until), replaced_by = @fresh WHERE id = @id')
        .run({ until, fresh: fresh.id, id });
      this.keyChanged(id);
      const rotated = this.key(id);
      this.audit('key.rotate', id, old.accountId, { newKeyId: fresh.id, expiresAt: { from: old.expiresAt, to: rotated.expiresAt } });
      return { old: rotated, new: fresh };
    });
  }

  grantCredits(accountId: string, micros: number, reason: string): Account {
    if (!Number.isSafeInteger(micros) || micros <= 0) throw new InvalidInputError('the amount must be a positive whole number of micro-dollars');
    return this.change(() => {
      const before = this.account(accountId);
      // Balances are read back as JS numbers: past 2^53 micros they would stop being exact.
      if (before.balanceMicros > Number.MAX_SAFE_INTEGER - micros) {
        throw new InvalidInputError(`granting ${formatMicros(micros)} would take the balance past ${formatMicros(Number.MAX_SAFE_INTEGER)}`);
      }
      this.storage.ledger.money.credit(accountId, micros, 'grant', reason);
      const after = this.account(accountId);
      this.audit('credits.grant', accountId, accountId, { amountMicros: micros, reason, balanceMicros: { from: before.balanceMicros, to: after.balanceMicros } });
      return after;
    });
  }

  /**
   * Takes credits back (an 'adjustment' ledger row). Never below zero: InsufficientBalanceError
   * when the account cannot pay all of it, and nothing is taken.
   */
  deductCredits(accountId: string, micros: number, reason: string): Account {
    if (!Number.isSafeInteger(micros) || micros <= 0) throw new InvalidInputError('the amount must be a positive whole number of micro-dollars');
    const money = this.storage.ledger.money;
    // Checked before the debit: one that cannot pay may still have taken money back from this
    // gateway's lease, in memory too, which a rollback of the caller's transaction (an
    // Idempotency-Key's) would not undo. So a refusal takes nothing and is thrown afterwards.
    const refused = this.change((): { available: number; balance: number } | undefined => {
      const before = this.account(accountId);
      const available = money.available(accountId);
      if (available < micros || !money.debit(accountId, micros, 'adjustment', reason)) return { available, balance: before.balanceMicros };
      const after = this.account(accountId).balanceMicros;
      this.audit('credits.deduct', accountId, accountId, { amountMicros: micros, reason, balanceMicros: { from: before.balanceMicros, to: after } });
      return undefined;
    });
    if (refused === undefined) return this.account(accountId);
    const leased = refused.balance - refused.available;
    throw new InsufficientBalanceError(`account ${accountId} cannot pay ${formatMicros(micros)}: it can give ${formatMicros(refused.available)}` +
      (leased > 0 ? ` (a running gateway's lease holds ${formatMicros(leased)} more: deduct through its admin API)` : ''));
  }

  /** The whole ledger, oldest first. */
  ledger(accountId: string): LedgerEntry[] {
    this.account(accountId);
    return this.db.prepare(`SELECT ${LEDGER_COLS} FROM ledger WHERE account_id = ? ORDER BY id`).all(accountId) as LedgerEntry[];
  }

  /** At most `limit` entries older than the entry `before` (default: the newest), newest first. */
  ledgerPage(accountId: string, { limit, before = Number.MAX_SAFE_INTEGER }: { limit: number; before?: number }): LedgerPage {
    this.account(accountId);
    // One more than asked says whether there is an older page; ledger_account (account_id, id) serves it.
    const rows = this.db.prepare(`SELECT ${LEDGER_COLS} FROM ledger WHERE account_id = ? AND id < ? ORDER BY id DESC LIMIT ?`)
      .all(accountId, before, limit + 1) as LedgerEntry[];
    const entries = rows.slice(0, limit);
    return { entries, nextBefore: rows.length > limit ? entries[entries.length - 1].id : null };
  }

  /** The account as the request path sees it (what its quota period is computed from), and its period's end. */
  accountRecord(id: string): AccountRecord & { periodEnd: number | null } {
    const r = this.db.prepare(`SELECT id, plan, status, status_reason AS statusReason, past_due_since AS pastDueSince,
      period_start AS periodStart, period_end AS periodEnd FROM accounts WHERE id = ?`).get(id) as
      AccountRecord & { periodEnd: number | null } | undefined;
    if (!r) throw new NotFoundError(`account ${id}`);
    return r;
  }

  /**
   * The quota counter of `period` (the gateway's key: a calendar month "2026-11" or a subscription's
   * "sub:…") and the usage rows from `from` until before `to` (default: that calendar month).
   */
  usage(accountId: string, period: string, { from, to } = monthRange(period)): UsageSummary {
    this.account(accountId);
    const byStatus: Record<string, number> = {};
    let requests = 0, billable = 0, chargedMicros = 0;
    for (const [status, r] of totalsByStatus(this.db, accountId, from, to, this.live?.pendingDays(accountId))) {
      byStatus[status] = r.requests;
      requests += r.requests;
      billable += r.billable;
      chargedMicros += r.chargedMicros;
    }
    const quotaUsed = this.live?.quotaUsed(accountId, period) ?? this.storage.keys.quotaUsed(accountId, period) as number;
    return { accountId, period, quotaUsed, requests, billable, chargedMicros, byStatus };
  }

  /**
   * Every UTC day from `from`'s until before `to` (at most MAX_DAYS), with zeros for days
   * without requests: from the daily rollups and what this gateway has not written yet.
   */
  usageByDay(accountId: string, from: number, to: number): DayRow[] {
    this.account(accountId);
    const start = Math.floor(from / DAY_MS);
    const end = Math.ceil(to / DAY_MS);
    if (end - start > MAX_DAYS) throw new InvalidInputError(`at most ${MAX_DAYS} days at once`);
    const rows = new Map(seriesByDay(this.db, accountId, start * DAY_MS, end * DAY_MS, this.live?.pendingDays(accountId)).map((r) => [r.day, r]));
    return Array.from({ length: end - start }, (_, i) => rows.get((start + i) * DAY_MS) ?? emptyDay((start + i) * DAY_MS));
  }

  /** The account's latest requests, newest first: from the gateway's memory when it holds the account. */
  recentRequests(accountId: string, limit: number): RecentUsage[] {
    this.account(accountId);
    const live = this.live?.recent?.(accountId, limit);
    if (live) return live;
    // The head of the account's chain of rows, as the key directory reads it (sqlite-keys.ts).
    const head = this.db.prepare('SELECT coalesce(max(through_id), 0) FROM usage_daily WHERE account_id = ?').pluck().get(accountId) as number;
    return this.storage.usage.recent(accountId, head, limit) as RecentUsage[];
  }

  /** One request by its id (see findRequest: the latest rows, or those around a time). */
  findRequest(requestId: string, around?: number): RequestSearch {
    this.live?.commitRows?.();
    return findRequest(this.db, requestId, around);
  }

  /** Newest first, in pages (`after`: the last event id of the previous page). */
  webhookEvents({ failed = false, limit, after }: { failed?: boolean; limit: number; after?: string }): Page<WebhookEvent> {
    let from = Number.MAX_SAFE_INTEGER;
    if (after !== undefined) {
      const r = this.db.prepare('SELECT rowid FROM webhook_events WHERE id = ?').pluck().get(after) as number | undefined;
      if (r === undefined) throw new InvalidInputError(`after: no event ${after} (pass the "next" cursor of the previous page)`);
      from = r;
    }
    const rows = this.db.prepare(`SELECT ${EVENT_COLS} FROM webhook_events WHERE rowid < ? ${failed ? "AND status = 'failed'" : ''}
      ORDER BY rowid DESC LIMIT ?`).all(from, limit + 1) as WebhookEvent[];
    return page(rows, limit);
  }

  /**
   * Applies a stored event again through the webhook's own path (billing/webhooks.ts `apply`).
   * The audit row is written in the transaction of its effect (or of its failure); an event
   * applied before changes nothing and is not recorded.
   */
  async replayWebhook(id: string, deps: { config: Config; log: Logger }): Promise<Replay> {
    const stored = this.db.prepare('SELECT source, payload FROM webhook_events WHERE id = ?').get(id) as { source: string; payload: string } | undefined;
    if (!stored) throw new NotFoundError(`event ${id}`);
    const event = JSON.parse(stored.payload) as StripeEvent;
    const events = this.storage.events;
    const audit = this.audit.bind(this);
    const audited: EventLog = {
      applyOnce: (inbound, effect) => events.applyOnce(inbound, function* (tx) {
        const note = yield* effect(tx);
        audit('webhook.replay', id, null, { type: event.type, outcome: note === undefined ? 'applied' : 'ignored', note: note ?? null });
        return note;
      }),
      recordFailure: (inbound, error) => this.change(() => {
        void events.recordFailure(inbound, error);
        this.audit('webhook.replay', id, null, { type: event.type, outcome: 'failed', note: error });
      }),
    };
    const reply = await apply({ source: stored.source, id, type: event.type, payload: stored.payload }, event, { ...deps, events: audited });
    return { id, type: event.type, outcome: (reply.body.outcome as string | undefined) ?? 'failed' };
  }

  /** The audit log, newest first; `after` is the previous page's `next`. */
  auditLog(query: { accountId?: string; limit: number; after?: number }): Page<AuditEntry> {
    return auditPage(this.db, query);
  }

  /**
   * The account's own balance.low threshold (0: never; null: its plan's "alerts"), published as
   * an account change: a gateway uses it from the account's next request.
   */
  setLowBalanceAlert(accountId: string, micros: number | null): number | null {
    if (micros !== null && (!Number.isSafeInteger(micros) || micros < 0)) throw new InvalidInputError('lowBalanceMicros: the threshold must be a whole number of micro-dollars ≥ 0');
    this.account(accountId);
    this.change(() => {
      const before = this.db.prepare('SELECT low_balance_micros FROM account_alerts WHERE account_id = ?').pluck().get(accountId) as number | null | undefined;
      this.db.prepare(`INSERT INTO account_alerts (account_id, low_balance_micros) VALUES (?, ?)
        ON CONFLICT (account_id) DO UPDATE SET low_balance_micros = excluded.low_balance_micros`).run(accountId, micros);
      this.storage.changes.publish({ kind: 'account', id: accountId });
      this.audit('account.alerts', accountId, accountId, { lowBalanceMicros: { from: before ?? null, to: micros } });
    });
    return micros;
  }

  /** The account's own balance.low threshold; null: its plan's. */
  lowBalanceAlert(accountId: string): number | null {
    this.account(accountId);
    return (this.db.prepare('SELECT low_balance_micros FROM account_alerts WHERE account_id = ?').pluck().get(accountId) as number | null | undefined) ?? null;
  }

  /** Deliveries of notifications, newest first (all, or those given up); `after`: the previous page's `next`. */
  deliveries({ failed = false, accountId, limit, after }: { failed?: boolean; accountId?: string; limit: number; after?: number }): Page<DeliveryRecord> {
    if (accountId !== undefined) this.account(accountId);
    return page(this.storage.outbox.list({ failed, accountId, limit: limit + 1, before: after }) as DeliveryRecord[], limit);
  }

  /** Sends a delivery again (same event id, a fresh day of retries): a running gateway sends it within a second. */
  resendDelivery(id: number): DeliveryRecord {
    return this.change(() => {
      const d = this.storage.outbox.resend(id, this.now()) as DeliveryRecord | undefined;
      if (!d) throw new NotFoundError(`delivery ${id}`);
      this.audit('notification.resend', String(id), d.accountId, { eventId: d.eventId, type: d.type, channel: d.channel, target: d.target });
      return d;
    });
  }

  private audit(action: AuditAction, target: string, accountId: string | null, change: Record<string, unknown>): void {
    recordAudit(this.db, this.actor, this.now(), action, target, accountId, change);
  }

  /** One IMMEDIATE transaction (a savepoint inside the caller's); StorageBusy when the file is locked. */
  private change<T>(fn: () => T): T {
    return writing(() => this.db.transaction(fn).immediate());
  }
}

/** A calendar month "2026-11" as [from, to) in ms, UTC. */
export function monthRange(month: string): { from: number; to: number } {
  const [y, m] = month.split('-').map(Number);
  return { from: Date.UTC(y, m - 1, 1), to: Date.UTC(y, m, 1) };
}
