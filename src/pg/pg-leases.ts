// Leases on PostgreSQL, for several nodes sharing the balances. A take is one conditional update
// of the account's row (what it takes never exceeds what the balance holds, `balance_micros >=
// min`), with its ledger row in the same statement; the row lock it takes is what orders the
// takes of all nodes on one account. So the sum of every node's leases of an account never
// exceeds what its balance held, and at every commit the balance equals the sum of its ledger.
import type { LeaseGrant, Leases } from '../storage/ports.ts';
import { NOW_MS, transaction, type Client, type Pool } from './pool.ts';

interface OpenLease { accountId: string; granted: number; consumed: number }

/** What the open leases of the account `a` hold unspent: every node's, or those of nodes other than `$2`. */
const unspent = (others: boolean) => `coalesce((SELECT sum(granted_micros - consumed_micros) FROM leases l
  WHERE l.account_id = a.id AND l.closed_at IS NULL${others ? ' AND l.node <> $2' : ''}), 0)::bigint`;

/** What a customer has, for the account `a`: the durable balance and what every node's open leases hold unspent. */
export const HELD_MICROS = `a.balance_micros + ${unspent(false)}`;

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

/**
 * A take in one statement (one round trip): $1 account, $2 min, $3 max, $4 the lease to grow (null:
 * open one), $5 this node. FOR UPDATE in READ COMMITTED: a take that waited for another node's
 * reads the balance that one left, and the WHERE is tested again on it. The lease's row is locked
 * before the account's, the order giveBack and closeLease use; a lease closed meanwhile (by a
 * survivor that took this node for dead) takes nothing.
 */
const TAKE = `WITH l AS (
    SELECT id FROM leases WHERE id = $4 AND node = $5 AND closed_at IS NULL FOR UPDATE
  ), a AS (
    SELECT id, balance_micros AS before FROM accounts
    WHERE id = $1 AND balance_micros >= $2 AND balance_micros > 0 AND ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM l)) FOR UPDATE
  ), t AS (
    UPDATE accounts SET balance_micros = a.before - least(a.before, $3) FROM a WHERE accounts.id = a.id
    RETURNING least(a.before, $3) AS taken, accounts.balance_micros AS after
  ), opened AS (
    INSERT INTO leases (account_id, node, granted_micros, created_at) SELECT $1, $5, taken, ${NOW_MS} FROM t WHERE $4::bigint IS NULL
    RETURNING id
  ), grown AS (
    UPDATE leases SET granted_micros = granted_micros + t.taken FROM t WHERE leases.id = $4 RETURNING leases.id
  ), ids AS (
    SELECT id FROM opened UNION ALL SELECT id FROM grown
  ), booked AS (
    INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
    SELECT $1, -t.taken, t.after, 'lease', 'lease:' || ids.id, ${NOW_MS} FROM t, ids
  )
  SELECT t.taken, ids.id AS "leaseId" FROM t, ids`;

export function createPgLeases(pool: Pool, node: string): Leases {
  return {
    async lease(accountId, leaseId, min, max) {
      const params = [accountId, min, Math.min(max, Number.MAX_SAFE_INTEGER), leaseId ?? null, node]; // Infinity: all the balance holds
      const { rows } = await pool.query<{ taken: number; leaseId: number }>({ name: 'tollgate-lease-take', text: TAKE, values: params });
      if (rows.length > 0) return { leaseId: rows[0].leaseId, micros: rows[0].taken };
      // Nothing taken. What the balance and the other nodes' leases hold, read in one snapshot (a
      // give-back moves money between them in one transaction, so the sum is never seen half-moved).
      const { rows: [r] } = await pool.query<{ elsewhere: number; open: boolean }>(`SELECT a.balance_micros + ${unspent(true)} AS elsewhere,
        EXISTS (SELECT 1 FROM leases WHERE id = $3 AND closed_at IS NULL) AS open FROM accounts a WHERE a.id = $1`, [accountId, node, leaseId ?? null]);
      if (leaseId !== undefined && r && !r.open) throw new Error(`lease ${leaseId} of ${node} is not open`);
      return { leaseId: leaseId ?? 0, micros: 0, heldElsewhere: r?.elsewhere ?? 0 };
    },

    giveBack: (leaseId, micros) => transaction(pool, async (c) => {
      const lease = await openLease(c, leaseId);
      if (!lease) throw new Error(`no open lease ${leaseId}`);
      if (lease.granted - micros < lease.consumed) throw new Error(`lease ${leaseId} cannot give back ${micros}: it has spent more`);
      await c.query('UPDATE leases SET granted_micros = granted_micros - $2 WHERE id = $1', [leaseId, micros]);
      await giveToBalance(c, lease.accountId, micros, leaseId);
    }),

    close: (leaseId) => transaction(pool, (c) => closeLease(c, leaseId)),

    balance: async (accountId, others = false) => {
      const { rows } = await pool.query<{ micros: number }>(`SELECT a.balance_micros + ${unspent(others)} AS micros FROM accounts a WHERE a.id = $1`,
        others ? [accountId, node] : [accountId]);
      return rows[0]?.micros ?? 0;
    },
  };
}
