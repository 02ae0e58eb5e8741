// The storage interface the request path calls, synchronously. SQLite (sqlite-store.ts) is the
// embedded default; a PostgreSQL backend for several gateways will implement the same interface.
export type AccountStatus = 'active' | 'suspended';

export interface KeyRecord {
  id: string;
  accountId: string;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface AccountRecord {
  id: string;
  plan: string;
  status: AccountStatus;
  /** Why it is suspended: 'payment_failed', 'dispute', 'operator'. */
  statusReason: string | null;
  /** A past_due subscription keeps access for a grace period from here. */
  pastDueSince: number | null;
  /** The subscription's billing period start: the quota period from then on ("sub:<start>"). */
  periodStart: number | null;
  periodKey: string | null;
}

/** The quota period key of a subscription's billing period starting at `start`. */
export function subscriptionPeriodKey(start: number): string {
  return `sub:${new Date(start).toISOString()}`;
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

/** One row per proxied request. */
export interface UsageRecord {
  ts: number;
  requestId: string;
  accountId: string | null;
  keyId: string | null;
  route: string;
  method: string;
  path: string;
  status: number;
  requestBytes: number;
  responseBytes: number;
  latencyUs: number;
  priceMicros: number;
  billable: boolean;
  /** AI routes only: the model and the tokens reported (or estimated, then `estimated`). */
  ai?: {
    model: string;
    inputTokens: number;
    cachedTokens: number;
    cacheWriteTokens: number;
    outputTokens: number;
    estimated: boolean;
  };
}

/** What a customer sees of its own recent requests. */
export interface RecentUsage {
  ts: number;
  requestId: string;
  method: string;
  path: string;
  status: number;
  priceMicros: number;
  model: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  estimated: boolean;
}

export interface Store {
  /** The key whose SHA-256 is `hash`, with its account; undefined when unknown. */
  findKey(hash: string): { key: KeyRecord; account: AccountRecord } | undefined;
  /**
   * Counts one metered request against the account's quota for `period` unless `limit` are
   * counted already (null: no limit); false when the quota is used up.
   */
  takeQuota(accountId: string, period: string, limit: number | null): boolean;
  /** Gives back what takeQuota took (the request turned out not to be billable). */
  returnQuota(accountId: string, period: string): void;
  quotaUsed(accountId: string, period: string): number;
  balance(accountId: string): number;
  /** The account's latest usage rows, newest first (queued rows are written first). */
  recentUsage(accountId: string, limit: number): RecentUsage[];
  /** Takes `micros` from the balance with a ledger row; false, and no change, when it cannot pay. */
  debit(accountId: string, micros: number, kind: string, reference: string): boolean;
  /** Adds `micros` to the balance with a ledger row; returns the new balance. */
  credit(accountId: string, micros: number, kind: string, reference: string): number;
  /**
   * Gives back every reservation ('reserve' row) that no 'settle' row followed: its request died
   * with the process. Call once at start, before serving, and only where this gateway is the
   * only one on the database. Returns how many it released.
   */
  releaseReservations(): number;
  /**
   * Queues a usage row and returns the number of the batch it joined. A batch is written in one
   * transaction within 10 ms, or earlier through flushBatch.
   */
  appendUsage(row: UsageRecord): number;
  /** Writes batch `id` now if it is still queued (a no-op once it was written). */
  flushBatch(id: number): void;
  /**
   * Runs `effect` and records the event in one transaction, unless the event was applied
   * before (an ignored one runs again). `effect` returns undefined when it applied, or a note
   * saying why it did nothing. If it throws, nothing it did is kept; record the failure with
   * recordFailure.
   */
  applyOnce(event: InboundEvent, effect: () => string | undefined): ApplyOutcome;
  /** Keeps a failed event (and counts the attempt) so it can be listed and replayed. */
  recordFailure(event: InboundEvent, error: string): void;
  /** Counts metered overage for Stripe (batched like usage rows); delta -1 gives one back. */
  addOverage(accountId: string, eventName: string, intervalStart: number, delta: number): void;
  /** Tells onChange listeners about a change this process made itself (a webhook applied). */
  notifyChange(): void;
  /**
   * Calls `listener` after keys or accounts change: within 200 ms when another process (the CLI)
   * changed them, at once after notifyChange().
   */
  onChange(listener: () => void): void;
  isReady(): boolean;
  /** Writes everything queued. */
  flush(): void;
  close(): void;
}
