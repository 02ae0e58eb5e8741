// What the gateway keeps of keys, accounts and requests, as records: the shapes the ports in
// ports.ts carry between the durable backend and the gateway's memory.
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
  /** The subscription's billing period start: the quota period from then on (state/periods.ts). */
  periodStart: number | null;
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
  /** The quota period the request counted against; undefined when it did not count. */
  quotaPeriod?: string;
  /** The lease its price was taken from; undefined when it cost nothing. */
  leaseId?: number;
  /** The Stripe meter and interval it counted against as overage. */
  overageMeter?: string;
  overageInterval?: number;
  /** Set by the recorder: the row's id and its account's previous row (0: none). */
  id: number;
  prevId: number;
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

