// What the admin API answers and the CLI prints with --json: one shape per record, the same both
// ways. Times are ISO 8601 UTC, money integer micro-dollars plus a formatted dollar string, and
// every object carries its id. openapi.ts describes these shapes; the tests check it does.
import type { Account, ApiKey, AuditEntry, LedgerEntry, WebhookEvent } from '../db/admin.ts';
import type { RequestRecord } from '../db/request-lookup.ts';
import type { DayRow } from '../db/usage-totals.ts';
import { formatMicros } from '../money.ts';
import type { DeliveryRecord } from '../storage/ports.ts';
import type { RecentUsage } from '../storage/records.ts';

export type { Page } from '../db/admin.ts';

export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export interface AccountDoc {
  id: string; email: string; name: string | null; plan: string; status: 'active' | 'suspended'; statusReason: string | null;
  balanceMicros: number; balance: string; createdAt: string;
}

export function accountDoc(a: Account): AccountDoc {
  return {
    id: a.id, email: a.email, name: a.name, plan: a.plan, status: a.status, statusReason: a.statusReason,
    balanceMicros: a.balanceMicros, balance: formatMicros(a.balanceMicros), createdAt: iso(a.createdAt)!,
  };
}

export type KeyState = 'active' | 'revoked' | 'expired';

export interface KeyDoc {
  id: string; accountId: string; name: string | null; prefix: string; state: KeyState;
  createdAt: string; expiresAt: string | null; revokedAt: string | null; replacedBy: string | null; lastUsedAt: string | null;
}

/** A key as created or rotated: with the key itself, shown this once. */
export type NewKeyDoc = KeyDoc & { key: string };

export function keyState(k: ApiKey, now: number): KeyState {
  if (k.revokedAt !== null && k.revokedAt <= now) return 'revoked';
  if (k.expiresAt !== null && k.expiresAt <= now) return 'expired';
  return 'active';
}

export function keyDoc(k: ApiKey, now: number): KeyDoc {
  return {
    id: k.id, accountId: k.accountId, name: k.name, prefix: k.prefix, state: keyState(k, now),
    createdAt: iso(k.createdAt)!, expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt), replacedBy: k.replacedBy,
    lastUsedAt: iso(k.lastUsedAt),
  };
}

export interface LedgerEntryDoc {
  id: number; kind: string; reference: string | null; amountMicros: number; amount: string;
  balanceAfterMicros: number; balanceAfter: string; createdAt: string;
}

export function ledgerEntryDoc(e: LedgerEntry): LedgerEntryDoc {
  return {
    id: e.id, kind: e.kind, reference: e.reference,
    amountMicros: e.amountMicros, amount: formatMicros(e.amountMicros),
    balanceAfterMicros: e.balanceAfterMicros, balanceAfter: formatMicros(e.balanceAfterMicros),
    createdAt: iso(e.createdAt)!,
  };
}

/** An account's balance and a page of its ledger, newest first (`nextBefore`: the next page). */
export interface LedgerDoc {
  id: string; balanceMicros: number; balance: string; ledger: LedgerEntryDoc[]; nextBefore: number | null;
}

/** A credit grant, or a deduction: the account after it, and what moved. */
export type GrantDoc = AccountDoc & { grantedMicros: number; granted: string; reason: string };
export type DeductDoc = AccountDoc & { deductedMicros: number; deducted: string; reason: string };

export interface UsageDoc {
  id: string; period: string; periodStart: string; periodEnd: string | null; plan: string; monthlyQuota: number | null;
  quotaUsed: number; requests: number; billable: number; chargedMicros: number; charged: string; byStatus: Record<string, number>;
}

export interface DayDoc {
  day: string; requests: number; billable: number; chargedMicros: number; charged: string;
  inputTokens: number; cachedTokens: number; cacheWriteTokens: number; outputTokens: number;
}

export function dayDoc(d: DayRow): DayDoc {
  return {
    day: iso(d.day)!.slice(0, 10), requests: d.requests, billable: d.billable, chargedMicros: d.chargedMicros, charged: formatMicros(d.chargedMicros),
    inputTokens: d.inputTokens, cachedTokens: d.cachedTokens, cacheWriteTokens: d.cacheWriteTokens, outputTokens: d.outputTokens,
  };
}

export interface RecentDoc {
  time: string; requestId: string; method: string; path: string; status: number; priceMicros: number; cost: string;
  model: string | null; inputTokens: number | null; outputTokens: number | null; estimated: boolean;
}

export function recentDoc({ ts, ...r }: RecentUsage): RecentDoc {
  return { time: iso(ts)!, ...r, cost: formatMicros(r.priceMicros) };
}

export type RequestDoc = Omit<RequestRecord, 'ts'> & { time: string; cost: string };

export function requestDoc({ ts, ...r }: RequestRecord): RequestDoc {
  return { time: iso(ts)!, ...r, cost: formatMicros(r.priceMicros) };
}

export type EventDoc = Omit<WebhookEvent, 'receivedAt' | 'appliedAt'> & { receivedAt: string; appliedAt: string | null };

export function eventDoc(e: WebhookEvent): EventDoc {
  return { ...e, receivedAt: iso(e.receivedAt)!, appliedAt: iso(e.appliedAt) };
}

export type AuditDoc = Omit<AuditEntry, 'at'> & { at: string };

export function auditDoc({ at, ...e }: AuditEntry): AuditDoc {
  return { ...e, at: iso(at)! };
}

export type DeliveryDoc = Omit<DeliveryRecord, 'createdAt' | 'nextAttemptAt' | 'deliveredAt'> & {
  createdAt: string; nextAttemptAt: string | null; deliveredAt: string | null;
};

export function deliveryDoc(d: DeliveryRecord): DeliveryDoc {
  return { ...d, createdAt: iso(d.createdAt)!, nextAttemptAt: iso(d.nextAttemptAt), deliveredAt: iso(d.deliveredAt) };
}

/** An account's own balance.low threshold: null follows its plan's "alerts"; 0 never fires. */
export interface AlertsDoc { id: string; lowBalanceMicros: number | null; lowBalance: string | null }

export function alertsDoc(id: string, micros: number | null): AlertsDoc {
  return { id, lowBalanceMicros: micros, lowBalance: micros === null ? null : formatMicros(micros) };
}
