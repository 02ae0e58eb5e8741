// The key directory on PostgreSQL: one query when a node first sees a key, with the account, its
// balance (durable and what every node's open leases hold), its alert state and the head of its
// chain of rows on this node.
import { accountRecord, keyLookup, type KeyRow } from '../storage/key-row.ts';
import type { KeyDirectory } from '../storage/ports.ts';
import { HELD_MICROS } from './pg-leases.ts';
import type { AccountRecord } from '../storage/records.ts';
import type { Pool } from './pool.ts';

const ACCOUNT = `a.id, a.plan, a.status, a.status_reason AS "statusReason", a.past_due_since AS "pastDueSince", a.period_start AS "periodStart"`;

export function createPgKeys(pool: Pool, node: string): KeyDirectory {
  return {
    async findKey(hash) {
      const { rows } = await pool.query<KeyRow>({
        name: 'tollgate-find-key',
        text: `SELECT k.id AS "keyId", k.expires_at AS "expiresAt", k.revoked_at AS "revokedAt", ${ACCOUNT},
          coalesce((SELECT max(u.id) FROM usage u WHERE u.node = $2 AND u.account_id = a.id), 0) AS "lastUsageId",
          a.period_end AS "periodEnd",
          ${HELD_MICROS} AS "balanceMicros",
          al.low_balance_micros AS "lowBalanceMicros", al.low_armed AS "lowArmed", al.depleted_armed AS "depletedArmed",
          al.quota_period AS "quotaPeriod", al.quota_percent AS "quotaPercent"
          FROM api_keys k JOIN accounts a ON a.id = k.account_id LEFT JOIN account_alerts al ON al.account_id = a.id
          WHERE k.hash = $1`,
        values: [hash, node],
      });
      return rows[0] && keyLookup(rows[0]);
    },

    async findAccount(id) {
      const { rows } = await pool.query<AccountRecord>(`SELECT ${ACCOUNT} FROM accounts a WHERE a.id = $1`, [id]);
      return rows[0] && accountRecord(rows[0]);
    },

    async quotaUsed(accountId, period) {
      const { rows } = await pool.query<{ used: number }>('SELECT used FROM quota_usage WHERE account_id = $1 AND period = $2', [accountId, period]);
      return rows[0]?.used ?? 0;
    },
  };
}
