// Operator actions on accounts, keys and credits: what the CLI (and later the admin API) calls.
// Not on the request path. Money moves through the Store, so every change has its ledger row.
import { displayPrefix, generateKey, hashKey, newId } from '../keys.ts';
import type { Db } from './open.ts';
import { subscriptionPeriodKey, type AccountRecord, type AccountStatus, type Store } from './store.ts';
import { usageIdRange } from './usage-range.ts';

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

const ACCOUNT_COLS = `id, email, name, plan, status, balance_micros AS balanceMicros, created_at AS createdAt`;
const LEDGER_COLS = `id, amount_micros AS amountMicros, balance_after_micros AS balanceAfterMicros, kind, reference,
  created_at AS createdAt`;
const KEY_COLS = `id, account_id AS accountId, name, prefix, created_at AS createdAt, expires_at AS expiresAt,
  revoked_at AS revokedAt, replaced_by AS replacedBy`;

export class Admin {
  constructor(private readonly db: Db, private readonly store: Store, private readonly now: () => number = Date.now) {}

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
    return this.db.prepare(`SELECT ${ACCOUNT_COLS} FROM accounts ORDER BY created_at, id`).all() as Account[];
  }

  account(id: string): Account {
    const a = this.db.prepare(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE id = ?`).get(id) as Account | undefined;
    if (!a) throw new NotFoundError(`account ${id}`);
    return a;
  }

  setPlan(id: string, plan: string): Account {
    if (this.db.prepare('UPDATE accounts SET plan = ? WHERE id = ?').run(plan, id).changes === 0) throw new NotFoundError(`account ${id}`);
    return this.account(id);
  }

  setStatus(id: string, status: AccountStatus): Account {
    if (this.db.prepare('UPDATE accounts SET status = ? WHERE id = ?').run(status, id).changes === 0) throw new NotFoundError(`account ${id}`);
    return this.account(id);
  }

  /** Returns the key itself once; only its hash is stored. */
  createKey(input: { accountId: string; name?: string; expiresAt?: number | null }): ApiKey & { key: string } {
    this.account(input.accountId);
    const key = generateKey();
    const id = newId('key');
    this.db.prepare(`INSERT INTO api_keys (id, account_id, name, hash, prefix, created_at, expires_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(id, input.accountId, input.name ?? null, hashKey(key), displayPrefix(key), this.now(), input.expiresAt ?? null);
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
    if (this.db.prepare('UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?').run(this.now(), id).changes === 0) {
      throw new NotFoundError(`key ${id}`);
    }
    return this.key(id);
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
      return { old: this.key(id), new: fresh };
    }).immediate();
  }

  grantCredits(accountId: string, micros: number, reason: string): Account {
    if (!Number.isSafeInteger(micros) || micros <= 0) throw new RangeError('amount must be a positive whole number of micro-dollars');
    this.account(accountId);
    this.store.credit(accountId, micros, 'grant', reason);
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
      Omit<AccountRecord, 'periodKey'> & { periodEnd: number | null } | undefined;
    if (!r) throw new NotFoundError(`account ${id}`);
    return { ...r, periodKey: r.periodStart === null ? null : subscriptionPeriodKey(r.periodStart) };
  }

  /**
   * The quota counter of `period` (the gateway's key: a calendar month "2026-11" or a subscription's
   * "sub:…") and the usage rows from `from` until before `to` (default: that calendar month).
   */
  usage(accountId: string, period: string, { from, to } = monthRange(period)): UsageSummary {
    this.account(accountId);
    const firstId = usageIdRange(this.db);
    const rows = this.db.prepare(`SELECT status, count(*) AS n, sum(billable) AS billable, sum(price_micros) AS charged
      FROM usage WHERE id >= ? AND id < ? AND account_id = ? GROUP BY status`).all(firstId(from), firstId(to), accountId) as
      { status: number; n: number; billable: number; charged: number }[];
    const byStatus: Record<string, number> = {};
    let requests = 0, billable = 0, chargedMicros = 0;
    for (const r of rows) {
      byStatus[r.status] = r.n;
      requests += r.n;
      billable += r.billable;
      chargedMicros += r.charged;
    }
    return { accountId, period, quotaUsed: this.store.quotaUsed(accountId, period), requests, billable, chargedMicros, byStatus };
  }
}

/** A calendar month "2026-11" as [from, to) in ms, UTC. */
export function monthRange(month: string): { from: number; to: number } {
  const [y, m] = month.split('-').map(Number);
  return { from: Date.UTC(y, m - 1, 1), to: Date.UTC(y, m, 1) };
}
