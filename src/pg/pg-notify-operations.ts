// Notifications on PostgreSQL, as the CLI and the admin API see them: deliveries listed and
// resent, and an account's own balance.low threshold. Answered as LocalOperations does (over
// db/admin.ts): the same documents, refusals and audit rows.
import { deliveryCursor, type Operations } from '../admin/operations.ts';
import { alertsDoc, deliveryDoc } from '../admin/shapes.ts';
import { InvalidInputError, NotFoundError } from '../db/admin-types.ts';
import type { AuditAction } from '../db/audit.ts';
import { recordChange } from './pg-changes.ts';
import { createPgOutbox } from './pg-outbox.ts';
import { transaction, type Client, type Pool } from './pool.ts';

export type NotifyOperations = Pick<Operations, 'deliveries' | 'resendDelivery' | 'alerts' | 'setAlerts'>;

export interface NotifyDeps {
  now: () => number;
  /** Refuses an unknown account (NotFoundError). */
  account(c: Client | Pool, id: string): Promise<unknown>;
  audit(c: Client | Pool, action: AuditAction, target: string, accountId: string | null, change: Record<string, unknown>): Promise<unknown>;
  /** Who the changes are from (the nodes other than this one hear them). */
  node: string;
}

const threshold = async (c: Client | Pool, id: string) =>
  (await c.query<{ micros: number | null }>('SELECT low_balance_micros AS micros FROM account_alerts WHERE account_id = $1', [id])).rows[0]?.micros ?? null;

export function pgNotifyOperations(db: Client | Pool, { now, account, audit, node }: NotifyDeps): NotifyOperations {
  const outbox = createPgOutbox(db, node);
  return {
    async deliveries({ failed, account: accountId, limit, after }) {
      const before = deliveryCursor(after);
      if (accountId !== undefined) await account(db, accountId);
      const rows = await outbox.list({ failed: failed ?? false, accountId, limit: limit + 1, before });
      const data = rows.slice(0, limit).map(deliveryDoc);
      return { data, next: rows.length > limit ? String(data[data.length - 1].id) : null };
    },

    resendDelivery: (id) => transaction(db, async (c) => {
      const d = await createPgOutbox(c, node).resend(id, now());
      if (!d) throw new NotFoundError(`delivery ${id}`);
      await audit(c, 'notification.resend', String(id), d.accountId, { eventId: d.eventId, type: d.type, channel: d.channel, target: d.target });
      return deliveryDoc(d);
    }),

    async alerts(accountId) {
      await account(db, accountId);
      return alertsDoc(accountId, await threshold(db, accountId));
    },

    setAlerts: (accountId, { lowBalanceMicros: micros }) => transaction(db, async (c) => {
      if (micros !== null && (!Number.isSafeInteger(micros) || micros < 0)) throw new InvalidInputError('lowBalanceMicros: the threshold must be a whole number of micro-dollars ≥ 0');
      await account(c, accountId);
      const before = await threshold(c, accountId);
      await c.query(`INSERT INTO account_alerts (account_id, low_balance_micros) VALUES ($1, $2)
        ON CONFLICT (account_id) DO UPDATE SET low_balance_micros = excluded.low_balance_micros`, [accountId, micros]);
      await recordChange(c, { kind: 'account', id: accountId }, node);
      await audit(c, 'account.alerts', accountId, accountId, { lowBalanceMicros: { from: before, to: micros } });
      return alertsDoc(accountId, micros);
    }),
  };
}
