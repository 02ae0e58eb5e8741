// The outbox on the SQLite file: events (`notifications`) and their deliveries. Events are
// written in the transaction of their cause (a group commit, a Stripe event's effect, a ledger
// row's trigger: migrations/0009); everything else here runs off the request path, each call
// one short transaction, StorageBusy when another process holds the write lock.
import type { Delivery, DeliveryRecord, Destination, EventData, NotificationType, Outbox, OutboxEvent } from '../storage/ports.ts';
import type { Db } from './open.ts';
import { writing } from './sqlite-busy.ts';
import { eventId } from '../notify/events.ts';

/** Prepares the insert of one event (also used by the group commit, sqlite-usage.ts). */
export function eventInsert(db: Db): (e: OutboxEvent) => void {
  const q = db.prepare(`INSERT INTO notifications (event_id, type, account_id, data, created_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (event_id) DO NOTHING`);
  return (e) => void q.run(e.id, e.type, e.accountId, JSON.stringify(e.data), e.createdAt);
}

interface EventRow { eventId: string; type: NotificationType; accountId: string | null; data: string; createdAt: number }

const toEvent = (r: EventRow): OutboxEvent => ({
  id: r.eventId, type: r.type, accountId: r.accountId, createdAt: r.createdAt, data: JSON.parse(r.data) as EventData,
});

const RECORD_COLS = `d.id, n.event_id AS eventId, n.type, n.account_id AS accountId, d.channel, d.target, d.status, d.attempts,
  d.last_status AS lastStatus, d.last_error AS lastError, n.created_at AS createdAt, d.next_attempt_at AS nextAttemptAt,
  d.delivered_at AS deliveredAt`;

export function createSqliteOutbox(db: Db): Outbox {
  const add = eventInsert(db);
  const q = {
    fresh: db.prepare(`SELECT n.id, n.event_id AS eventId, n.type, n.account_id AS accountId, n.data, n.created_at AS createdAt,
      a.email FROM notifications n LEFT JOIN accounts a ON a.id = n.account_id WHERE n.fanned_out = 0 ORDER BY n.id LIMIT ?`),
    deliver: db.prepare(`INSERT INTO notification_deliveries (notification_id, channel, target, next_attempt_at) VALUES (?, ?, ?, ?)
      ON CONFLICT DO NOTHING`),
    fannedOut: db.prepare('UPDATE notifications SET fanned_out = 1 WHERE id = ?'),
    due: db.prepare(`SELECT d.id, d.channel, d.target, d.attempts, d.failing_since AS failingSince,
      n.event_id AS eventId, n.type, n.account_id AS accountId, n.data, n.created_at AS createdAt
      FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
      WHERE d.status = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at LIMIT ?`),
    delivered: db.prepare(`UPDATE notification_deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = ?,
      last_status = ?, last_error = NULL, next_attempt_at = NULL, failing_since = NULL WHERE id = ?`),
    failed: db.prepare(`UPDATE notification_deliveries SET attempts = attempts + 1, last_status = @status, last_error = @error,
      failing_since = coalesce(failing_since, @now), next_attempt_at = @retryAt,
      status = CASE WHEN @retryAt IS NULL THEN 'failed' ELSE 'pending' END WHERE id = @id`),
    expiring: db.prepare(`SELECT id, account_id AS accountId, name, prefix, expires_at AS expiresAt FROM api_keys
      WHERE expires_at > ? AND expires_at <= ? AND revoked_at IS NULL AND replaced_by IS NULL
        AND expiry_notified_at IS NOT expires_at
      ORDER BY expires_at LIMIT ?`),
    notified: db.prepare('UPDATE api_keys SET expiry_notified_at = expires_at WHERE id = ?'),
    all: db.prepare(`SELECT ${RECORD_COLS} FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
      WHERE d.id < @before AND (@accountId IS NULL OR n.account_id = @accountId) ORDER BY d.id DESC LIMIT @limit`),
    failedOnly: db.prepare(`SELECT ${RECORD_COLS} FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
      WHERE d.status = 'failed' AND d.id < @before AND (@accountId IS NULL OR n.account_id = @accountId) ORDER BY d.id DESC LIMIT @limit`),
    one: db.prepare(`SELECT ${RECORD_COLS} FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.id = ?`),
    resend: db.prepare(`UPDATE notification_deliveries SET status = 'pending', next_attempt_at = ?, failing_since = NULL,
      delivered_at = NULL WHERE id = ?`),
  };

  type Fresh = EventRow & { id: number; email: string | null };
  type Expiring = { id: string; accountId: string; name: string | null; prefix: string; expiresAt: number };
  // Each read first, outside a transaction (WAL readers take no lock): the deliverer looks twice
  // a second, and mostly finds nothing to write.
  const fanOutTx = db.transaction((destinations: (e: OutboxEvent, email: string | null) => Destination[], limit: number) => {
    const rows = q.fresh.all(limit) as Fresh[];
    for (const r of rows) {
      const event = toEvent(r);
      // Due at once: the event's time is when it happened, the first attempt is now.
      for (const d of destinations(event, r.email)) q.deliver.run(r.id, d.channel, d.target, event.createdAt);
      q.fannedOut.run(r.id);
    }
    return rows.length;
  });

  const expiringTx = db.transaction((now: number, withinMs: number, limit: number) => {
    const keys = q.expiring.all(now, now + withinMs, limit) as Expiring[];
    for (const k of keys) {
      add({
        id: eventId(), type: 'key.expiring', accountId: k.accountId, createdAt: now,
        data: { accountId: k.accountId, keyId: k.id, keyName: k.name, keyPrefix: k.prefix, expiresAt: new Date(k.expiresAt).toISOString() },
      });
      q.notified.run(k.id);
    }
    return keys.length;
  });

  return {
    add,
    fanOut: (destinations, limit) => (q.fresh.get(1) === undefined ? 0 : writing(() => fanOutTx.immediate(destinations, limit))),
    due(now, limit) {
      const rows = q.due.all(now, limit) as (EventRow & { id: number; channel: Delivery['channel']; target: string; attempts: number; failingSince: number | null })[];
      return rows.map((r) => ({ id: r.id, channel: r.channel, target: r.target, attempts: r.attempts, failingSince: r.failingSince, event: toEvent(r) }));
    },
    delivered: (id, now, status) => void writing(() => q.delivered.run(now, status, id)),
    failed: (id, now, status, error, retryAt) => void writing(() => q.failed.run({ id, now, status, error, retryAt })),
    keysExpiring: (now, withinMs, limit) =>
      (q.expiring.get(now, now + withinMs, 1) === undefined ? 0 : writing(() => expiringTx.immediate(now, withinMs, limit))),
    list: ({ failed, limit, before = Number.MAX_SAFE_INTEGER, accountId }) =>
      (failed ? q.failedOnly : q.all).all({ before, limit, accountId: accountId ?? null }) as DeliveryRecord[],
    resend(id, now) {
      if (writing(() => q.resend.run(now, id)).changes === 0) return undefined;
      return q.one.get(id) as DeliveryRecord;
    },
  };
}
