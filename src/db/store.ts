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
}

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
  /** Queues a usage row; rows are written in batches, one transaction per event-loop turn. */
  appendUsage(row: UsageRecord): void;
  /** Runs `effect` and records `eventId` in one transaction; false (and no effect) if already seen. */
  applyOnce(source: string, eventId: string, type: string, effect: () => void): boolean;
  /** Calls `listener` within `intervalMs` of another process changing keys, accounts or balances. */
  onExternalChange(listener: () => void): void;
  isReady(): boolean;
  /** Writes everything queued. */
  flush(): void;
  close(): void;
}
