// The key directory on the SQLite file: point reads by primary key or unique index. WAL readers
// never wait for a writer, so these run on the request path when a key is first seen.
import { accountRecord, keyLookup, type KeyRow } from '../storage/key-row.ts';
import type { KeyDirectory } from '../storage/ports.ts';
import type { AccountRecord } from '../storage/records.ts';
import type { Db } from './open.ts';

const ACCOUNT = `a.id AS id, a.plan AS plan, a.status AS status, a.status_reason AS statusReason,
  a.past_due_since AS pastDueSince, a.period_start AS periodStart`;

export function createSqliteKeys(db: Db): KeyDirectory {
  const q = {
    // With the account's alert settings and state, and its balance (what the alerts start from).
    key: db.prepare(`SELECT k.id AS keyId, k.expires_at AS expiresAt, k.revoked_at AS revokedAt, ${ACCOUNT},
      coalesce((SELECT max(through_id) FROM usage_daily d WHERE d.account_id = a.id), 0) AS lastUsageId, a.period_end AS periodEnd,
      a.balance_micros + coalesce((SELECT sum(granted_micros - consumed_micros) FROM leases l
        WHERE l.account_id = a.id AND l.closed_at IS NULL), 0) AS balanceMicros,
      al.low_balance_micros AS lowBalanceMicros, al.low_armed AS lowArmed, al.depleted_armed AS depletedArmed,
      al.quota_period AS quotaPeriod, al.quota_percent AS quotaPercent
      FROM api_keys k JOIN accounts a ON a.id = k.account_id LEFT JOIN account_alerts al ON al.account_id = a.id
      WHERE k.hash = ?`),
    account: db.prepare(`SELECT ${ACCOUNT} FROM accounts a WHERE a.id = ?`),
    quotaUsed: db.prepare('SELECT used FROM quota_usage WHERE account_id = ? AND period = ?').pluck(),
  };
  return {
    findKey(hash) {
      const r = q.key.get(hash) as KeyRow | undefined;
      return r && keyLookup(r);
    },
    findAccount(id) {
      const r = q.account.get(id) as AccountRecord | undefined;
      return r && accountRecord(r);
    },
    quotaUsed: (accountId, period) => (q.quotaUsed.get(accountId, period) as number | undefined) ?? 0,
  };
}
