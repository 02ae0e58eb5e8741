// Operator actions on accounts, keys and credits: what the CLI (and later the admin API) calls.
// Not on the request path. Reads are SQL on the file; changes go through the storage ports, so
// money moves with its ledger row and every change is published: a gateway in this process
// hears of it at once, one in another process within 200 ms.
import { displayPrefix, generateKey, hashKey, newId } from '../keys.ts';
import type { DayTotals, Storage } from '../storage/ports.ts';
import type { AccountRecord, AccountStatus } from '../storage/records.ts';
import type { Db } from './open.ts';
import { totalsByStatus } from './usage-totals.ts';

/** What a running gateway in this process knows better than the file: balances and counts not written yet. */
export interface LiveView {
  balance(accountId: string): number;
  quotaUsed(accountId: string, period: string): number | undefined;
  /** The account's daily totals still in memory. */
  pendingDays(accountId: string): Iterable<DayTotals>;
}

export interface Account {
  id: string;
  email: string;
  name: string | null;
  plan: string;
  status: AccountStatus;
  balanceMicros: number;
  createdAt: number;
}

export interface ApiKey {
  id: string;
  accountId: string;
  name: string | null;
  prefix: string;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  replacedBy: string | null;
}

export interface LedgerEntry {
  id: number;
  amountMicros: number;
  balanceAfterMicros: number;
  kind: string;
  reference: string | null;
  createdAt: number;
}

/** A page of an account's ledger, newest first; `nextBefore` pages further (null: nothing older). */
export interface LedgerPage {
  entries: LedgerEntry[];
  nextBefore: number | null;
}

export interface UsageSummary {
  accountId: string;
  period: string;
  quotaUsed: number;
  requests: number;
  billable: number;
  chargedMicros: number;
  byStatus: Record<string, number>;
}

export class NotFoundError extends Error {
  constructor(what: string) {
    super(`${what} not found`);
    this.name = 'NotFoundError';
  }
}

export class EmailTakenError extends Error {
  constructor(readonly holder: Account) {
    super(`an account with the email ${holder.email} already exists: ${holder.id} (emails are compared ignoring case)`);
    this.name = 'EmailTakenError';
  }
}

// The balance a customer has: the durable one and what open leases hold unspent (as far as the
// gateway has written its counters: a running gateway's own view, LiveView, is exact).
const ACCOUNT_COLS = `id, email, name, plan, status, balance_micros + coalesce((SELECT sum(granted_micros - consumed_micros)
  FROM leases l WHERE l.account_id = accounts.id AND l.closed_at IS NULL), 0) AS balanceMicros, created_at AS createdAt`;
const LEDGER_COLS = `id, amount_micros AS amountMicros, balance_after_micros AS balanceAfterMicros, kind, reference,
  created_at AS createdAt`;
const KEY_COLS = `id, account_id AS accountId, name, prefix, created_at AS createdAt, expires_at AS expiresAt,
  revoked_at AS revokedAt, replaced_by AS replacedBy`;

export class Admin {
  private readonly db: Db;

  constructor(private readonly storage: Storage & { db: Db }, private readonly now: () => number = Date.now, private readonly live?: LiveView) {
    this.db = storage.db;
  }

  /** Refuses an email another account has, in any case (migration 0005's index): EmailTakenError. */
  createAccount(input: { email: string; name?: string; plan: string }): Account {
    const id = newId('acct');
    try {
      this.db.prepare('INSERT INTO accounts (id, email, name, plan, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(id, input.email, input.name ?? null, input.plan, this.now());
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_CONSTRAINT_UNIQUE') throw err;
      const holder = this.db.prepare(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE email = ? COLLATE NOCASE`).get(input.email) as Account | undefined;
      throw holder ? new EmailTakenError(holder) : err;
    }
    return this.account(id);
  }

  listAccounts(): Account[] {
    return (this.db.prepare(`SELECT ${ACCOUNT_COLS} FROM accounts ORDER BY created_at, id`).all() as Account[]).map((a) => this.withLive(a));
  }

  account(id: string): Account {
    const a = this.db.prepare(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE id = ?`).get(id) as Account | undefined;
    if (!a) throw new NotFoundError(`account ${id}`);
    return this.withLive(a);
  }

  setPlan(id: string, plan: string): Account {
    this.changeAccount(id, () => this.db.prepare('UPDATE accounts SET plan = ? WHERE id = ?').run(plan, id).changes);
    return this.account(id);
  }

  setStatus(id: string, status: AccountStatus): Account {
    this.changeAccount(id, () => this.db.prepare('UPDATE accounts SET status = ? WHERE id = ?').run(status, id).changes);
    return this.account(id);
  }

  /** Runs an UPDATE of one account and publishes the change in its transaction. */
  private changeAccount(id: string, update: () => number): void {
    this.db.transaction(() => {
      if (update() === 0) throw new NotFoundError(`account ${id}`);
      this.storage.changes.publish({ kind: 'account', id });
    }).immediate();
  }

  private withLive(a: Account): Account {
    return this.live ? { ...a, balanceMicros: this.live.balance(a.id) } : a;
  }

  /** Returns the key itself once; only its hash is stored. */
  createKey(input: { accountId: string; name?: string; expiresAt?: number | null }): ApiKey & { key: string } {
    this.account(input.accountId);
    const key = generateKey();
    const id = newId('key');
    const hash = hashKey(key);
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO api_keys (id, account_id, name, hash, prefix, created_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`)
        .run(id, input.accountId, input.name ?? null, hash, displayPrefix(key), this.now(), input.expiresAt ?? null);
      // A gateway may have seen this key before it existed (and remembered it as unknown).
      this.storage.changes.publish({ kind: 'key', hash });
    }).immediate();
    return { ...this.key(id), key };
  }

  listKeys(accountId?: string): ApiKey[] {
    return accountId === undefined
      ? this.db.prepare(`SELECT ${KEY_COLS} FROM api_keys ORDER BY created_at, id`).all() as ApiKey[]
      : this.db.prepare(`SELECT ${KEY_COLS} FROM api_keys WHERE account_id = ? ORDER BY created_at, id`).all(accountId) as ApiKey[];
  }

  key(id: string): ApiKey {
    const k = this.db.prepare(`SELECT ${KEY_COLS} FROM api_keys WHERE id = ?`).get(id) as ApiKey | undefined;
    if (!k) throw new NotFoundError(`key ${id}`);
    return k;
  }

  /** Revoking twice keeps the first time. */
  revokeKey(id: string): ApiKey {
    this.db.transaction(() => {
      if (this.db.prepare('UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?').run(this.now(), id).changes === 0) {
        throw new NotFoundError(`key ${id}`);
      }
      this.keyChanged(id);
    }).immediate();
    return this.key(id);
  }

  private keyChanged(id: string): void {
    const hash = this.db.prepare('SELECT hash FROM api_keys WHERE id = ?').pluck().get(id) as string;
    this.storage.changes.publish({ kind: 'key', hash });
  }

  /** Issues a new key for the same account; the old one keeps working for `graceMs`, then stops. */
  rotateKey(id: string, graceMs: number): { old: ApiKey; new: ApiKey & { key: string } } {
    return this.db.transaction(() => {
      const old = this.key(id);
      if (old.revokedAt !== null) throw new Error(`key ${id} is revoked; create a new key instead`);
      if (old.expiresAt !== null && old.expiresAt <= this.now()) throw new Error(`key ${id} has expired; create a new key instead`);
      const fresh = this.createKey({ accountId: old.accountId, name: old.name ?? undefined, expiresAt: old.expiresAt });
      const until = this.now() + graceMs;
      this.db.prepare('UPDATE api_keys SET expires_at = min(coalesce(expires_at, @until), @until), replaced_by = @fresh WHERE id = @id')
        .run({ until, fresh: fresh.id, id });
      this.keyChanged(id);
      return { old: this.key(id), new: fresh };
    }).immediate();
  }

  grantCredits(accountId: string, micros: number, reason: string): Account {
    if (!Number.isSafeInteger(micros) || micros <= 0) throw new RangeError('amount must be a positive whole number of micro-dollars');
    this.account(accountId);
    this.storage.ledger.money.credit(accountId, micros, 'grant', reason);
    return this.account(accountId);
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
   * The account's own balance.low threshold (0: never; null: its plan's "alerts"), published as
   * an account change: a gateway uses it from the account's next request.
   */
  setLowBalanceAlert(accountId: string, micros: number | null): { accountId: string; lowBalanceMicros: number | null } {
    if (micros !== null && (!Number.isSafeInteger(micros) || micros < 0)) throw new RangeError('the threshold must be a whole number of micro-dollars ≥ 0');
    this.account(accountId);
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO account_alerts (account_id, low_balance_micros) VALUES (?, ?)
        ON CONFLICT (account_id) DO UPDATE SET low_balance_micros = excluded.low_balance_micros`).run(accountId, micros);
      this.storage.changes.publish({ kind: 'account', id: accountId });
    }).immediate();
    return { accountId, lowBalanceMicros: micros };
  }
}

/** A calendar month "2026-11" as [from, to) in ms, UTC. */
export function monthRange(month: string): { from: number; to: number } {
  const [y, m] = month.split('-').map(Number);
  return { from: Date.UTC(y, m - 1, 1), to: Date.UTC(y, m, 1) };
}
