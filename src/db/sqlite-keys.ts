// The key directory on the SQLite file: point reads by primary key or unique index. WAL readers
// never wait for a writer, so these run on the request path when a key is first seen.
import type { KeyDirectory, KeyLookup } from '../storage/ports.ts';
import type { AccountRecord } from '../storage/records.ts';
import type { Db } from './open.ts';

const ACCOUNT = `a.id AS id, a.plan AS plan, a.status AS status, a.status_reason AS statusReason,
  a.past_due_since AS pastDueSince, a.period_start AS periodStart`;

/** The columns as the record's fields (the query names them so). */
function account(r: AccountRecord): AccountRecord {
  return { id: r.id, plan: r.plan, status: r.status, statusReason: r.statusReason, pastDueSince: r.pastDueSince, periodStart: r.periodStart };
}

export function createSqliteKeys(db: Db): KeyDirectory {
  const q = {
    key: db.prepare(`SELECT k.id AS keyId, k.expires_at AS expiresAt, k.revoked_at AS revokedAt, ${ACCOUNT},
      coalesce((SELECT max(through_id) FROM usage_daily d WHERE d.account_id = a.id), 0) AS lastUsageId
      FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.hash = ?`),
    account: db.prepare(`SELECT ${ACCOUNT} FROM accounts a WHERE a.id = ?`),
    quotaUsed: db.prepare('SELECT used FROM quota_usage WHERE account_id = ? AND period = ?').pluck(),
  };
  return {
    findKey(hash) {
      const r = q.key.get(hash) as AccountRecord & { keyId: string; expiresAt: number | null; revokedAt: number | null; lastUsageId: number } | undefined;
      if (!r) return undefined;
      const found: KeyLookup = {
        key: { id: r.keyId, accountId: r.id, expiresAt: r.expiresAt, revokedAt: r.revokedAt },
        account: account(r),
        lastUsageId: r.lastUsageId,
      };
      return found;
    },
    findAccount(id) {
      const r = q.account.get(id) as AccountRecord | undefined;
      return r && account(r);
    },
    quotaUsed: (accountId, period) => (q.quotaUsed.get(accountId, period) as number | undefined) ?? 0,
  };
}
