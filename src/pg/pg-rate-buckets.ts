// Rate-limit buckets on PostgreSQL, shared by every node (migration 0005). A take is one upsert:
// the bucket is refilled for the time since its last take (on the database's clock, so no node's
// clock matters), then gives up to `want` whole tokens. The row lock orders the nodes' takes.
import type { TokenStore } from '../limiter/shared-buckets.ts';
import type { Pool } from './pool.ts';

// $1 account, $2 window, $3 capacity, $4 tokens per ms, $5 want. A new bucket starts full.
const NOW = '(extract(epoch FROM statement_timestamp()) * 1000)::bigint';
const REFILLED = `least($3::float8, b.tokens + greatest(0, ${NOW} - b.at) * $4::float8)`;
const TAKE = `INSERT INTO rate_buckets AS b (account_id, name, tokens, taken, at)
  VALUES ($1, $2, $3::float8 - least($5::float8, floor($3::float8)), least($5::float8, floor($3::float8)), ${NOW})
  ON CONFLICT (account_id, name) DO UPDATE SET
    taken = least($5::float8, floor(${REFILLED})), tokens = ${REFILLED} - least($5::float8, floor(${REFILLED})), at = ${NOW}
  RETURNING taken, tokens`;

export function createPgRateBuckets(pool: Pool): TokenStore {
  return {
    async take(accountId, window, capacity, perMs, want) {
      const { rows } = await pool.query<{ taken: number; tokens: number }>({
        name: 'tollgate-rate-take', text: TAKE, values: [accountId, window, capacity, perMs, want],
      });
      return rows[0];
    },
  };
}
