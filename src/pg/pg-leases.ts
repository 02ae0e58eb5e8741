// Leases on PostgreSQL, for several nodes sharing the balances. A take is one conditional update
// of the account's row (what it takes never exceeds what the balance holds, `balance_micros >=
// min`), with its ledger row in the same transaction; the row lock it takes is what orders the
// takes of all nodes on one account. So the sum of every node's leases of an account never
// exceeds what its balance held, and at every commit the balance equals the sum of its ledger.
import type { LeaseGrant, Leases } from '../storage/ports.ts';
import { NOW_MS, transaction, type Client, type Pool } from './pool.ts';

interface OpenLease { accountId: string; granted: number; consumed: number }

/** What a customer has, for the account `a`: the durable balance and what every node's open leases hold unspent. */
export const HELD_MICROS = `a.balance_micros + coalesce((SELECT sum(granted_micros - consumed_micros) FROM leases l
  WHERE l.account_id = a.id AND l.closed_at IS NULL), 0)::bigint`;

/** The ledger row of a lease's move of `micros` (signed) in or out of the balance, which is now `after`. */
async function ledgerRow(c: Client, accountId: string, micros: number, after: number, leaseId: number): Promise<void> {
  await c.query(`INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
    VALUES ($1, $2, $3, $4, $5, ${NOW_MS})`, [accountId, micros, after, micros < 0 ? 'lease' : 'lease_return', `lease:${leaseId}`]);
}

/** Moves `micros` of a lease back into the balance, with its ledger row. */
async function giveToBalance(c: Client, accountId: string, micros: number, leaseId: number): Promise<void> {
  const { rows } = await c.query<{ after: number }>(
    'UPDATE accounts SET balance_micros = balance_micros + $2 WHERE id = $1 RETURNING balance_micros AS after', [accountId, micros]);
  await ledgerRow(c, accountId, micros, rows[0].after, leaseId);
}

/** The lease if it is open, locked until the transaction ends. */
async function openLease(c: Client, leaseId: number): Promise<OpenLease | undefined> {
  const { rows } = await c.query<OpenLease>(`SELECT account_id AS "accountId", granted_micros AS granted, consumed_micros AS consumed
    FROM leases WHERE id = $1 AND closed_at IS NULL FOR UPDATE`, [leaseId]);
  return rows[0];
}

/**
 * Ends a lease in the caller's transaction: what its rows did not spend returns to the balance.
 * Returns what was given back (0 when it was closed already: by its node, or by a survivor).
 */
export async function closeLease(c: Client, leaseId: number): Promise<number> {
  const lease = await openLease(c, leaseId);
  if (!lease) return 0;
  const rest = lease.granted - lease.consumed;
  if (rest > 0) await giveToBalance(c, lease.accountId, rest, leaseId);
  await c.query(`UPDATE leases SET granted_micros = consumed_micros, closed_at = ${NOW_MS} WHERE id = $1`, [leaseId]);
  return rest;
}

export function createPgLeases(pool: Pool, node: string): Leases {
  return {
    lease: (accountId, leaseId, min, max) => transaction(pool, async (c): Promise<LeaseGrant> => {
      // FOR UPDATE in READ COMMITTED: a take that waited for another node's reads the balance that
      // one left, and the WHERE is tested again on it.
      const { rows } = await c.query<{ taken: number; after: number }>(`WITH a AS (
          SELECT id, balance_micros AS before FROM accounts WHERE id = $1 AND balance_micros >= $2 AND balance_micros > 0 FOR UPDATE)
        UPDATE accounts SET balance_micros = a.before - least(a.before, $3) FROM a WHERE accounts.id = a.id
        RETURNING least(a.before, $3) AS taken, accounts.balance_micros AS after`, [accountId, min, max]);
      if (rows.length === 0) return { leaseId: leaseId ?? 0, micros: 0 };
      const { taken, after } = rows[0];
      let id = leaseId;
      if (id === undefined) {
        const opened = await c.query<{ id: number }>(`INSERT INTO leases (account_id, node, granted_micros, created_at)
          VALUES ($1, $2, $3, ${NOW_MS}) RETURNING id`, [accountId, node, taken]);
        id = opened.rows[0].id;
      } else {
        const grown = await c.query('UPDATE leases SET granted_micros = granted_micros + $2 WHERE id = $1 AND node = $3 AND closed_at IS NULL', [id, taken, node]);
        // Closed meanwhile (by a survivor that took this node for dead): the take is undone with the transaction.
        if (grown.rowCount !== 1) throw new Error(`lease ${id} of ${node} is not open`);
      }
      await ledgerRow(c, accountId, -taken, after, id);
      return { leaseId: id, micros: taken };
    }),

    giveBack: (leaseId, micros) => transaction(pool, async (c) => {
      const lease = await openLease(c, leaseId);
      if (!lease) throw new Error(`no open lease ${leaseId}`);
      if (lease.granted - micros < lease.consumed) throw new Error(`lease ${leaseId} cannot give back ${micros}: it has spent more`);
      await c.query('UPDATE leases SET granted_micros = granted_micros - $2 WHERE id = $1', [leaseId, micros]);
      await giveToBalance(c, lease.accountId, micros, leaseId);
    }),

    close: (leaseId) => transaction(pool, (c) => closeLease(c, leaseId)),

    balance: async (accountId) => {
      const { rows } = await pool.query<{ micros: number }>(`SELECT ${HELD_MICROS} AS micros FROM accounts a WHERE a.id = $1`, [accountId]);
      return rows[0]?.micros ?? 0;
    },
  };
}
