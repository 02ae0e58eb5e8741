// Balances, leases and the ledger on the SQLite file. Every statement that moves money runs in
// one IMMEDIATE transaction with its ledger row (or inside the caller's: a webhook's effect), so
// at every commit an account's balance equals the sum of its ledger rows, and the CHECK on
// accounts keeps it from going below zero.
import type { ChangeFeed, Ledger, LeaseGrant, LeaseHolder, Money } from '../storage/ports.ts';
import type { Db } from './open.ts';
import { writing } from './sqlite-busy.ts';

export function createSqliteLedger(db: Db, { now, node, changes }: { now: () => number; node: string; changes: ChangeFeed }): Ledger {
  const q = {
    balance: db.prepare('SELECT balance_micros FROM accounts WHERE id = ?').pluck(),
    take: db.prepare(`UPDATE accounts SET balance_micros = balance_micros - @micros
      WHERE id = @accountId AND balance_micros >= @micros RETURNING balance_micros`).pluck(),
    give: db.prepare(`UPDATE accounts SET balance_micros = balance_micros + @micros
      WHERE id = @accountId RETURNING balance_micros`).pluck(),
    ledger: db.prepare(`INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
      VALUES (?, ?, ?, ?, ?, ?)`),
    open: db.prepare('INSERT INTO leases (account_id, node, granted_micros, created_at) VALUES (?, ?, 0, ?) RETURNING id').pluck(),
    lease: db.prepare(`SELECT account_id AS accountId, granted_micros AS granted, consumed_micros AS consumed
      FROM leases WHERE id = ? AND closed_at IS NULL`),
    grant: db.prepare('UPDATE leases SET granted_micros = granted_micros + ? WHERE id = ?'),
    close: db.prepare('UPDATE leases SET granted_micros = consumed_micros, closed_at = ? WHERE id = ?'),
    held: db.prepare(`SELECT a.balance_micros + coalesce((SELECT sum(granted_micros - consumed_micros) FROM leases l
      WHERE l.account_id = a.id AND l.closed_at IS NULL), 0) FROM accounts a WHERE a.id = ?`).pluck(),
  };

  /** Moves `micros` (signed) in or out of the balance with its ledger row; undefined when it cannot pay. */
  function move(accountId: string, micros: number, kind: string, reference: string): number | undefined {
    const after = (micros < 0 ? q.take : q.give).get({ accountId, micros: Math.abs(micros) }) as number | undefined;
    if (after !== undefined) q.ledger.run(accountId, micros, after, kind, reference, now());
    return after;
  }

  let holder: LeaseHolder = { holding: () => 0, giveBack: () => {} };

  // Credits and debits are changes other processes' leases must hear of (lease moves are not).
  const creditTx = db.transaction((accountId: string, micros: number, kind: string, reference: string) => {
    const after = move(accountId, micros, kind, reference);
    if (after === undefined) throw new Error(`no account ${accountId}`);
    changes.publish({ kind: 'balance', id: accountId });
    return after;
  });
  const debitTx = db.transaction((accountId: string, micros: number, kind: string, reference: string) => {
    if (micros === 0) return true;
    const durable = (q.balance.get(accountId) as number | undefined) ?? 0;
    if (durable < micros) holder.giveBack(accountId, micros - durable);
    const paid = move(accountId, -micros, kind, reference) !== undefined;
    if (paid) changes.publish({ kind: 'balance', id: accountId });
    return paid;
  });

  const money: Money = {
    credit: (accountId, micros, kind, reference) => writing(() => creditTx.immediate(accountId, micros, kind, reference)),
    debit: (accountId, micros, kind, reference) => writing(() => debitTx.immediate(accountId, micros, kind, reference)),
    durable: (accountId) => (q.balance.get(accountId) as number | undefined) ?? 0,
    available: (accountId) => money.durable(accountId) + holder.holding(accountId),
  };

  const leaseTx = db.transaction((accountId: string, leaseId: number | undefined, min: number, max: number): LeaseGrant => {
    const durable = (q.balance.get(accountId) as number | undefined) ?? 0;
    if (durable < min || durable === 0) return { leaseId: leaseId ?? 0, micros: 0 };
    // A lease ended meanwhile (at shutdown, a change heard after recover() closed it) takes nothing:
    // money moved into it would be out of the balance with no open lease to give it back.
    if (leaseId !== undefined && q.lease.get(leaseId) === undefined) return { leaseId, micros: 0 };
    const micros = Math.min(durable, max);
    const id = leaseId ?? (q.open.get(accountId, node, now()) as number);
    move(accountId, -micros, 'lease', `lease:${id}`);
    q.grant.run(micros, id);
    return { leaseId: id, micros };
  });

  const giveBackTx = db.transaction((leaseId: number, micros: number) => {
    const lease = q.lease.get(leaseId) as { accountId: string; granted: number; consumed: number } | undefined;
    if (!lease) throw new Error(`no open lease ${leaseId}`);
    if (lease.granted - micros < lease.consumed) throw new Error(`lease ${leaseId} cannot give back ${micros}: it has spent more`);
    q.grant.run(-micros, leaseId);
    move(lease.accountId, micros, 'lease_return', `lease:${leaseId}`);
  });

  const closeTx = db.transaction((leaseId: number): number => {
    const lease = q.lease.get(leaseId) as { accountId: string; granted: number; consumed: number } | undefined;
    if (!lease) return 0;
    const rest = lease.granted - lease.consumed;
    if (rest > 0) move(lease.accountId, rest, 'lease_return', `lease:${leaseId}`);
    q.close.run(now(), leaseId);
    return rest;
  });

  return {
    lease: (accountId, leaseId, min, max) => writing(() => leaseTx.immediate(accountId, leaseId, min, max)),
    giveBack: (leaseId, micros) => writing(() => giveBackTx.immediate(leaseId, micros)),
    close: (leaseId) => writing(() => closeTx.immediate(leaseId)),
    // Every lease in the file is this node's: `others` leaves the durable balance.
    balance: (accountId, others) => ((others ? q.balance : q.held).get(accountId) as number | undefined) ?? 0,
    money,
    holder(h) {
      holder = h;
    },
  };
}
