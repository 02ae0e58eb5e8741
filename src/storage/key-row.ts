// What a backend reads when a key is first seen, as one row, and the KeyLookup it makes: the same
// columns on SQLite and PostgreSQL (SQLite's flags are 0 and 1, PostgreSQL's booleans).
import type { KeyLookup } from './ports.ts';
import type { AccountRecord } from './records.ts';

export interface KeyRow extends AccountRecord {
  keyId: string;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsageId: number;
  periodEnd: number | null;
  balanceMicros: number;
  lowBalanceMicros: number | null;
  lowArmed: boolean | number | null;
  depletedArmed: boolean | number | null;
  quotaPeriod: string | null;
  quotaPercent: number | null;
}

/**
 * The columns as the record's fields (the queries name them so). A driver hands each row its own
 * copy of a string: every account in memory would keep one "active" of its own (24 bytes).
 */
export function accountRecord(r: AccountRecord): AccountRecord {
  const status = r.status === 'active' ? 'active' : r.status;
  return { id: r.id, plan: r.plan, status, statusReason: r.statusReason, pastDueSince: r.pastDueSince, periodStart: r.periodStart };
}

export function keyLookup(r: KeyRow): KeyLookup {
  return {
    key: { id: r.keyId, accountId: r.id, expiresAt: r.expiresAt, revokedAt: r.revokedAt },
    account: accountRecord(r),
    lastUsageId: r.lastUsageId,
    balanceMicros: r.balanceMicros,
    alerts: {
      lowBalanceMicros: r.lowBalanceMicros,
      // Armed flags not decided yet (NULL) are derived by the gateway: the state is all or nothing.
      state: r.lowArmed === null || r.depletedArmed === null ? null
        : { lowArmed: Boolean(r.lowArmed), depletedArmed: Boolean(r.depletedArmed), quotaPeriod: r.quotaPeriod, quotaPercent: r.quotaPercent ?? 0 },
      periodEnd: r.periodEnd,
    },
  };
}
