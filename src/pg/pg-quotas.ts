// Quota slices on PostgreSQL (migration 0006): a take is one upsert of the account's period row
// that hands out units while `handed_out` is below the limit; the row lock orders the nodes.
import type { QuotaStore } from '../state/quota-slices.ts';
import type { Pool } from './pool.ts';

// $1 account, $2 period, $3 limit, $4 want. SET reads the row as it was before this take.
const GIVE = 'greatest(0, least($4::bigint, $3::bigint - q.handed_out))';
const TAKE = `INSERT INTO quota_usage AS q (account_id, period, used, handed_out, taken)
  VALUES ($1, $2, 0, least($4::bigint, $3::bigint), least($4::bigint, $3::bigint))
  ON CONFLICT (account_id, period) DO UPDATE SET handed_out = q.handed_out + ${GIVE}, taken = ${GIVE}
  RETURNING taken`;

export function createPgQuotas(pool: Pool): QuotaStore {
  return {
    async take(accountId, period, limit, want) {
      const { rows } = await pool.query<{ taken: number }>({ name: 'tollgate-quota-take', text: TAKE, values: [accountId, period, limit, want] });
      return rows[0].taken;
    },

    async giveBack(slices) {
      await pool.query(`UPDATE quota_usage q SET handed_out = greatest(0, q.handed_out - s.units)
        FROM unnest($1::text[], $2::text[], $3::bigint[]) AS s(account_id, period, units)
        WHERE q.account_id = s.account_id AND q.period = s.period`,
      [slices.map((s) => s.accountId), slices.map((s) => s.period), slices.map((s) => s.units)]);
    },
  };
}
