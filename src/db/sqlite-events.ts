// Webhook events on the SQLite file, each applied exactly once: the event's id is recorded in
// the IMMEDIATE transaction that runs its effect, so a replay sees it and changes nothing.
import type { ApplyOutcome, EventLog, EventTx } from '../storage/ports.ts';
import { runSync } from '../storage/steps.ts';
import type { Db } from './open.ts';
import { writing } from './sqlite-busy.ts';

export function createSqliteEvents(db: Db, tx: EventTx, now: () => number): EventLog {
  const q = {
    status: db.prepare('SELECT status FROM webhook_events WHERE id = ?').pluck(),
    record: db.prepare(`INSERT INTO webhook_events (id, source, type, status, note, payload, received_at, applied_at)
      VALUES (@id, @source, @type, @status, @note, @payload, @now, @appliedAt)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, note = excluded.note, attempts = attempts + 1,
        applied_at = excluded.applied_at`),
  };
  return {
    applyOnce(event, effect) {
      return writing(() => db.transaction((): ApplyOutcome => {
        // Only an applied event is final: one ignored (a price no plan had yet) runs again when
        // resent or replayed, and its effect decides afresh.
        if (q.status.get(event.id) === 'applied') return { status: 'duplicate' };
        const note = runSync(effect(tx));
        const status = note === undefined ? 'applied' : 'ignored';
        q.record.run({ ...event, status, note: note ?? null, now: now(), appliedAt: now() });
        return note === undefined ? { status: 'applied' } : { status: 'ignored', note };
      }).immediate());
    },
    recordFailure(event, error) {
      writing(() => q.record.run({ ...event, status: 'failed', note: error, now: now(), appliedAt: null }));
    },
  };
}
