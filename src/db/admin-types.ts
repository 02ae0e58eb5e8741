// What operator actions take and give (src/db/admin.ts), and how they refuse.
import type { DayTotals } from '../storage/ports.ts';
import type { AccountStatus, RecentUsage } from '../storage/records.ts';

/** What a running gateway in this process knows better than the file: balances and counts not written yet. */
export interface LiveView {
  balance(accountId: string): number;
  quotaUsed(accountId: string, period: string): number | undefined;
  /** The account's daily totals still in memory. */
  pendingDays(accountId: string): Iterable<DayTotals>;
  /** When the key with this hash last authenticated a request, if the gateway holds it in memory. */
  keyLastUsed?(hash: string): number | undefined;
  /** The account's latest requests, newest first, queued ones included, if it is in memory. */
  recent?(accountId: string, limit: number): RecentUsage[] | undefined;
  /** Writes the usage rows still queued, so that a lookup on the file finds the latest requests. */
  commitRows?(): void;
}

export interface Account {
  id: string;
  email: string;
  name: string | null;
  plan: string;
  status: AccountStatus;
  /** Why it is suspended: 'operator' (by hand), 'payment_failed', 'dispute'. */
  statusReason: string | null;
  balanceMicros: number;
  createdAt: number;
}

export interface AccountChange {
  name?: string | null;
  email?: string;
  plan?: string;
  status?: AccountStatus;
}

export interface AccountQuery {
  limit: number;
  /** The id of the last account of the previous page. */
  after?: string;
  plan?: string;
  status?: AccountStatus;
  /** Exact, ignoring case. */
  email?: string;
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
  /** Known only to the gateway holding the key in memory (null otherwise). */
  lastUsedAt: number | null;
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

export interface WebhookEvent {
  id: string;
  type: string;
  status: 'applied' | 'ignored' | 'failed';
  note: string | null;
  attempts: number;
  receivedAt: number;
  appliedAt: number | null;
}

export interface Replay {
  id: string;
  type: string;
  /** 'applied', 'ignored', 'duplicate' (applied before: nothing done) or 'failed'. */
  outcome: string;
}

export class NotFoundError extends Error {
  constructor(what: string, hint?: string) {
    super(`${what} not found${hint ? `: ${hint}` : ''}`);
    this.name = 'NotFoundError';
  }
}

/** Refused by the state of things: a revoked key cannot be rotated, an email is taken. */
export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}

/** A value no state of things would accept: an unknown plan, a cursor that names nothing. */
export class InvalidInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidInputError';
  }
}

export class InsufficientBalanceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InsufficientBalanceError';
  }
}

export class EmailTakenError extends ConflictError {
  constructor(readonly holder: Account) {
    super(`an account with the email ${holder.email} already exists: ${holder.id} (emails are compared ignoring case)`);
    this.name = 'EmailTakenError';
  }
}
