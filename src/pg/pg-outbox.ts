// The outbox on PostgreSQL, delivered by every node (migrations/pg/0010). Events are written in
// the transaction of their cause (a group commit, a webhook's effect, the ledger's trigger), as
// on SQLite. What the nodes share is the work: each hands out fresh events and expiring keys under
// FOR UPDATE SKIP LOCKED, so two nodes never hand out the same one, and a node claims the
// deliveries it attempts until a deadline, so two nodes never attempt one at once. A node that
// dies holding a claim delays that delivery by the claim's length, then another node sends it.
import type { Delivery, DeliveryRecord, Destination, EventData, NotificationType, Outbox, OutboxEvent } from '../storage/ports.ts';
import type { MaybeAsync } from '../storage/steps.ts';
import { eventId } from '../notify/events.ts';
import { transaction, type Client, type Pool } from './pool.ts';

/** Longer than any attempt (webhook-sender.ts, mailer.ts: seconds) and the record after it. */
const CLAIM_MS = 120_000;

interface EventRow { eventId: string; type: NotificationType; accountId: string | null; data: string; createdAt: number }

const toEvent = (r: EventRow): OutboxEvent => ({
  id: r.eventId, type: r.type, accountId: r.accountId, createdAt: r.createdAt, data: JSON.parse(r.data) as EventData,
});

const EVENT_COLS = 'n.event_id AS "eventId", n.type, n.account_id AS "accountId", n.data, n.created_at AS "createdAt"';
const RECORD_COLS = `d.id, n.event_id AS "eventId", n.type, n.account_id AS "accountId", d.channel, d.target, d.status, d.attempts,
  d.last_status AS "lastStatus", d.last_error AS "lastError", n.created_at AS "createdAt", d.next_attempt_at AS "nextAttemptAt",
  d.delivered_at AS "deliveredAt"`;
const FROM = 'FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id';

/** Inserts events on `c` (a webhook effect's transaction, or the pool), in one statement. */
export function addEvents(c: Client | Pool, es: readonly OutboxEvent[]): Promise<void> {
  return c.query(`INSERT INTO notifications (event_id, type, account_id, data, created_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) ON CONFLICT (event_id) DO NOTHING`,
  [es.map((e) => e.id), es.map((e) => e.type), es.map((e) => e.accountId), es.map((e) => JSON.stringify(e.data)), es.map((e) => e.createdAt)])
    .then(() => undefined);
}

type DueRow = EventRow & { id: number; channel: Delivery['channel']; target: string; attempts: number; failingSince: number | null; nextAttemptAt: number };

/** `pool`: or a connection in a transaction, which the calls join. */
export function createPgOutbox(pool: Pool | Client, node: string): MaybeAsync<Outbox> {
  return {
    add: (e) => addEvents(pool, [e]),

    fanOut: (destinations: (e: OutboxEvent, email: string | null) => Destination[], limit: number) => transaction(pool, async (c) => {
      const { rows } = await c.query<EventRow & { id: number; email: string | null }>(`SELECT n.id, ${EVENT_COLS}, a.email
        FROM notifications n LEFT JOIN accounts a ON a.id = n.account_id WHERE NOT n.fanned_out ORDER BY n.id LIMIT $1
        FOR UPDATE OF n SKIP LOCKED`, [limit]);
      if (rows.length === 0) return 0;
      // Every delivery of the batch in one statement. Due at once: the event's time is when it happened, the first attempt is now.
      const d = { ids: [] as number[], channels: [] as string[], targets: [] as string[], due: [] as number[] };
      for (const r of rows) {
        const event = toEvent(r);
        for (const to of destinations(event, r.email)) {
          d.ids.push(r.id);
          d.channels.push(to.channel);
          d.targets.push(to.target);
          d.due.push(event.createdAt);
        }
      }
      if (d.ids.length > 0) {
        await c.query(`INSERT INTO notification_deliveries (notification_id, channel, target, next_attempt_at)
          SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) ON CONFLICT DO NOTHING`, [d.ids, d.channels, d.targets, d.due]);
      }
      await c.query('UPDATE notifications SET fanned_out = true WHERE id = ANY ($1)', [rows.map((r) => r.id)]);
      return rows.length;
    }),

    async due(now, limit) {
      // Claimed by this node still counts as due here: the deliverer skips what it has in flight.
      const { rows } = await pool.query<DueRow>(`UPDATE notification_deliveries d SET claimed_by = $3, claimed_until = $1::bigint + ${CLAIM_MS}
        FROM notifications n
        WHERE n.id = d.notification_id AND d.id IN (SELECT id FROM notification_deliveries
          WHERE status = 'pending' AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1 OR claimed_by = $3)
          ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING d.id, d.channel, d.target, d.attempts, d.failing_since AS "failingSince", d.next_attempt_at AS "nextAttemptAt", ${EVENT_COLS}`,
      [now, limit, node]);
      rows.sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.id - b.id);
      return rows.map((r) => ({ id: r.id, channel: r.channel, target: r.target, attempts: r.attempts, failingSince: r.failingSince, event: toEvent(r) }));
    },

    async delivered(id, now, status) {
      await pool.query(`UPDATE notification_deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = $2, last_status = $3,
        last_error = NULL, next_attempt_at = NULL, failing_since = NULL, claimed_by = NULL, claimed_until = NULL WHERE id = $1`, [id, now, status]);
    },

    async failed(id, now, status, error, retryAt) {
      await pool.query(`UPDATE notification_deliveries SET attempts = attempts + 1, last_status = $3, last_error = $4,
        failing_since = coalesce(failing_since, $2), next_attempt_at = $5, claimed_by = NULL, claimed_until = NULL,
        status = CASE WHEN $5::bigint IS NULL THEN 'failed' ELSE 'pending' END WHERE id = $1`, [id, now, status, error, retryAt]);
    },

    keysExpiring: (now, withinMs, limit) => transaction(pool, async (c) => {
      const { rows } = await c.query<{ id: string; accountId: string; name: string | null; prefix: string; expiresAt: number }>(
        `SELECT id, account_id AS "accountId", name, prefix, expires_at AS "expiresAt" FROM api_keys
        WHERE expires_at > $1 AND expires_at <= $2 AND revoked_at IS NULL AND replaced_by IS NULL
          AND expiry_notified_at IS DISTINCT FROM expires_at
        ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED`, [now, now + withinMs, limit]);
      if (rows.length === 0) return 0;
      await addEvents(c, rows.map((k) => ({
        id: eventId(), type: 'key.expiring' as const, accountId: k.accountId, createdAt: now,
        data: { accountId: k.accountId, keyId: k.id, keyName: k.name, keyPrefix: k.prefix, expiresAt: new Date(k.expiresAt).toISOString() },
      })));
      await c.query('UPDATE api_keys SET expiry_notified_at = expires_at WHERE id = ANY ($1)', [rows.map((k) => k.id)]);
      return rows.length;
    }),

    async list({ failed, limit, before = Number.MAX_SAFE_INTEGER, accountId }) {
      const { rows } = await pool.query<DeliveryRecord>(`SELECT ${RECORD_COLS} ${FROM}
        WHERE d.id < $1 AND ($2::text IS NULL OR n.account_id = $2) ${failed ? "AND d.status = 'failed'" : ''} ORDER BY d.id DESC LIMIT $3`,
      [before, accountId ?? null, limit]);
      return rows;
    },

    async resend(id, now) {
      const { rows } = await pool.query<DeliveryRecord>(`WITH d AS (UPDATE notification_deliveries SET status = 'pending', next_attempt_at = $2,
          failing_since = NULL, delivered_at = NULL, claimed_by = NULL, claimed_until = NULL WHERE id = $1 RETURNING *)
        SELECT ${RECORD_COLS} FROM d JOIN notifications n ON n.id = d.notification_id`, [id, now]);
      return rows[0];
    },
  };
}
