// The Store on one SQLite file. Statements are prepared once; usage rows and quota counts are
// written in batches (see flushBatch and pipeline/meter.ts); money moves in a transaction with its ledger row.
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import type { Db } from './open.ts';
import { usageIdRange } from './usage-range.ts';
import { isMigrated } from './migrate.ts';
import { subscriptionPeriodKey, type AccountRecord, type ApplyOutcome, type KeyRecord, type RecentUsage, type Store, type UsageRecord } from './store.ts';

/** Past this many queued rows a batch is written at once. */
const MAX_BATCH = 2000;
/** A batch is written at the latest this long after its first row. */
const MAX_DELAY_MS = 10;

interface QuotaCounter { accountId: string; period: string; used: number; pending: number }
interface OverageCounter { key: string; accountId: string; eventName: string; intervalStart: number; pending: number; identifier: string }

export interface SqliteStoreOptions {
  now?: () => number;
  /** Told when a batch could not be written; the batch is kept and retried. */
  onFlushError?: (err: Error) => void;
}

export function createSqliteStore(db: Db, { now = Date.now, onFlushError }: SqliteStoreOptions = {}): Store {
  const q = {
    findKey: db.prepare(`SELECT k.id, k.account_id, k.expires_at, k.revoked_at, a.plan, a.status,
      a.status_reason, a.past_due_since, a.period_start
      FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.hash = ?`),
    quotaUsed: db.prepare('SELECT used FROM quota_usage WHERE account_id = ? AND period = ?').pluck(),
    // The delta may be negative (requests given back): applied as is to a row that exists.
    addQuota: db.prepare(`INSERT INTO quota_usage (account_id, period, used) VALUES (@accountId, @period, max(@delta, 0))
      ON CONFLICT (account_id, period) DO UPDATE SET used = max(used + @delta, 0)`),
    debit: db.prepare(`UPDATE accounts SET balance_micros = balance_micros - @micros
      WHERE id = @accountId AND balance_micros >= @micros RETURNING balance_micros`).pluck(),
    credit: db.prepare(`UPDATE accounts SET balance_micros = balance_micros + @micros
      WHERE id = @accountId RETURNING balance_micros`).pluck(),
    ledger: db.prepare(`INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
      VALUES (?, ?, ?, ?, ?, ?)`),
    usage: db.prepare(`INSERT INTO usage (ts, request_id, account_id, key_id, route, method, path, status,
      request_bytes, response_bytes, latency_us, price_micros, billable)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    // AI rows carry the model and tokens too; plain rows leave those columns NULL.
    aiUsage: db.prepare(`INSERT INTO usage (ts, request_id, account_id, key_id, route, method, path, status,
      request_bytes, response_bytes, latency_us, price_micros, billable,
      model, input_tokens, cached_tokens, cache_write_tokens, output_tokens, estimated)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    balance: db.prepare('SELECT balance_micros FROM accounts WHERE id = ?').pluck(),
    // No index on account_id (see 0001): walk back from the newest row; bounded to a week.
    recent: db.prepare(`SELECT ts, request_id AS requestId, method, path, status, price_micros AS priceMicros, model,
      input_tokens AS inputTokens, output_tokens AS outputTokens, estimated
      FROM usage WHERE id >= ? AND account_id = ? ORDER BY id DESC LIMIT ?`),
    orphanReservations: db.prepare(`SELECT r.account_id AS accountId, -r.amount_micros AS micros, r.reference
      FROM ledger r WHERE r.kind = 'reserve'
      AND NOT EXISTS (SELECT 1 FROM ledger s WHERE s.reference = r.reference AND s.kind IN ('settle', 'release'))`),
    eventStatus: db.prepare('SELECT status FROM webhook_events WHERE id = ?').pluck(),
    recordEvent: db.prepare(`INSERT INTO webhook_events (id, source, type, status, note, payload, received_at, applied_at)
      VALUES (@id, @source, @type, @status, @note, @payload, @now, @appliedAt)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, note = excluded.note, attempts = attempts + 1,
        applied_at = excluded.applied_at`),
    overage: db.prepare(`INSERT INTO meter_outbox (account_id, event_name, interval_start, value, identifier)
      VALUES (@accountId, @eventName, @intervalStart, max(@delta, 0), @identifier)
      ON CONFLICT (account_id, event_name, interval_start) DO UPDATE SET value = max(value + @delta, 0)
      WHERE status = 'pending'`),
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
  };

  const firstUsageId = usageIdRange(db);
  // A file deleted (or replaced) under the running gateway: what it writes goes nowhere anyone
  // will read, and the CLI would open a new empty file. Readiness says so.
  const inode = db.memory ? undefined : statSync(db.name).ino;

  // Quota counts live in memory (this process is the only server on the file) and are persisted
  // as deltas with the usage batch; so is metered overage waiting for Stripe. Only the counters
  // changed since the last batch are visited.
  const quota = new Map<string, Map<string, QuotaCounter>>();
  const overage = new Map<string, OverageCounter>();
  const dirtyQuota = new Set<QuotaCounter>();
  const dirtyOverage = new Set<OverageCounter>();
  const rows: UsageRecord[] = [];
  let flushScheduled = false;
  let retrying = false;
  /** Numbers the batches: rows appended now join batch `batch`, written by the next flush. */
  let batch = 1;

  const flushTx = db.transaction(() => {
    for (const r of rows) {
      const ai = r.ai;
      if (ai === undefined) {
        q.usage.run(r.ts, r.requestId, r.accountId, r.keyId, r.route, r.method, r.path, r.status,
          r.requestBytes, r.responseBytes, r.latencyUs, r.priceMicros, r.billable ? 1 : 0);
      } else {
        q.aiUsage.run(r.ts, r.requestId, r.accountId, r.keyId, r.route, r.method, r.path, r.status,
          r.requestBytes, r.responseBytes, r.latencyUs, r.priceMicros, r.billable ? 1 : 0,
          ai.model, ai.inputTokens, ai.cachedTokens, ai.cacheWriteTokens, ai.outputTokens, ai.estimated ? 1 : 0);
      }
    }
    for (const c of dirtyQuota) if (c.pending !== 0) q.addQuota.run({ accountId: c.accountId, period: c.period, delta: c.pending });
    for (const o of dirtyOverage) {
      if (o.pending !== 0) q.overage.run({ accountId: o.accountId, eventName: o.eventName, intervalStart: o.intervalStart, delta: o.pending, identifier: o.identifier });
    }
  });

  function flush(): void {
    flushScheduled = false;
    if (rows.length === 0 && dirtyQuota.size === 0 && dirtyOverage.size === 0) return;
    try {
      flushTx();
    } catch (err) {
      // SQLITE_BUSY past busy_timeout or a full disk: keep the batch and try again shortly.
      onFlushError?.(err as Error);
      if (!db.open) throw err;
      flushScheduled = retrying = true;
      setTimeout(() => {
        retrying = false;
        flush();
      }, 100).unref();
      return;
    }
    rows.length = 0;
    batch++;
    for (const c of dirtyQuota) c.pending = 0;
    dirtyQuota.clear();
    // An interval's counter is done with once written; a new one starts from the table.
    for (const o of dirtyOverage) overage.delete(o.key);
    dirtyOverage.clear();
  }

  function schedule(): void {
    if (rows.length >= MAX_BATCH && !retrying) flush();
    else if (!flushScheduled) {
      flushScheduled = true;
      setTimeout(flush, MAX_DELAY_MS).unref();
    }
  }

  function counter(accountId: string, period: string): QuotaCounter {
    let periods = quota.get(accountId);
    if (!periods) quota.set(accountId, (periods = new Map()));
    let c = periods.get(period);
    if (!c) {
      c = { accountId, period, used: (q.quotaUsed.get(accountId, period) as number | undefined) ?? 0, pending: 0 };
      periods.set(period, c);
    }
    return c;
  }

  function count(c: QuotaCounter, delta: number): void {
    c.used += delta;
    c.pending += delta;
    dirtyQuota.add(c);
    schedule();
  }

  const moveMoney = (sign: 1 | -1) => db.transaction((accountId: string, micros: number, kind: string, reference: string) => {
    const balance = (sign < 0 ? q.debit : q.credit).get({ micros, accountId }) as number | undefined;
    if (balance === undefined) return undefined;
    q.ledger.run(accountId, sign * micros, balance, kind, reference, now());
    return balance;
  });
  const debitTx = moveMoney(-1);
  const creditTx = moveMoney(1);

  let lastVersion = q.dataVersion.get() as number;
  let watcher: NodeJS.Timeout | undefined;
  const listeners: (() => void)[] = [];

  return {
    findKey(hash) {
      const r = q.findKey.get(hash) as
        | {
          id: string; account_id: string; expires_at: number | null; revoked_at: number | null; plan: string;
          status: AccountRecord['status']; status_reason: string | null; past_due_since: number | null;
          period_start: number | null;
        }
        | undefined;
      if (!r) return undefined;
      const key: KeyRecord = { id: r.id, accountId: r.account_id, expiresAt: r.expires_at, revokedAt: r.revoked_at };
      return {
        key,
        account: {
          id: r.account_id, plan: r.plan, status: r.status, statusReason: r.status_reason, pastDueSince: r.past_due_since,
          periodStart: r.period_start,
          periodKey: r.period_start === null ? null : subscriptionPeriodKey(r.period_start),
        },
      };
    },

    takeQuota(accountId, period, limit) {
      const c = counter(accountId, period);
      if (limit !== null && c.used >= limit) return false;
      count(c, 1);
      return true;
    },

    returnQuota(accountId, period) {
      const c = counter(accountId, period);
      if (c.used > 0) count(c, -1);
    },

    addOverage(accountId, eventName, intervalStart, delta) {
      const key = `${accountId}\u0000${eventName}\u0000${intervalStart}`;
      let o = overage.get(key);
      if (!o) {
        // Stripe caps identifiers at 100 characters: a hash of what names the interval fits.
        const identifier = `tg_${createHash('sha256').update(key).digest('base64url').slice(0, 40)}`;
        o = { key, accountId, eventName, intervalStart, pending: 0, identifier };
        overage.set(key, o);
      }
      o.pending += delta;
      dirtyOverage.add(o);
      schedule();
    },

    quotaUsed(accountId, period) {
      return counter(accountId, period).used;
    },

    balance(accountId) {
      return (q.balance.get(accountId) as number | undefined) ?? 0;
    },

    recentUsage(accountId, limit) {
      flush();
      const rows = q.recent.all(firstUsageId(now() - 7 * 86_400_000), accountId, limit) as (Omit<RecentUsage, 'estimated'> & { estimated: number })[];
      return rows.map((r) => ({ ...r, estimated: r.estimated === 1 }));
    },

    debit(accountId, micros, kind, reference) {
      if (micros === 0) return true;
      return debitTx.immediate(accountId, micros, kind, reference) !== undefined;
    },

    credit(accountId, micros, kind, reference) {
      const balance = creditTx.immediate(accountId, micros, kind, reference);
      if (balance === undefined) throw new Error(`no account ${accountId}`);
      return balance;
    },

    releaseReservations() {
      const orphans = q.orphanReservations.all() as { accountId: string; micros: number; reference: string }[];
      for (const o of orphans) creditTx.immediate(o.accountId, o.micros, 'release', o.reference);
      return orphans.length;
    },

    appendUsage(row) {
      rows.push(row);
      schedule();
      return batch;
    },

    flushBatch(id) {
      if (id === batch && !retrying) flush();
    },

    applyOnce(event, effect) {
      return db.transaction((): ApplyOutcome => {
        // Only an applied event is final: one ignored (a price no plan had yet) runs again when
        // resent or replayed, and its effect decides afresh.
        if (q.eventStatus.get(event.id) === 'applied') return { status: 'duplicate' };
        const note = effect();
        const status = note === undefined ? 'applied' : 'ignored';
        q.recordEvent.run({ ...event, status, note: note ?? null, now: now(), appliedAt: now() });
        return note === undefined ? { status: 'applied' } : { status: 'ignored', note };
      }).immediate();
    },

    recordFailure(event, error) {
      q.recordEvent.run({ ...event, status: 'failed', note: error, now: now(), appliedAt: null });
    },

    notifyChange() {
      for (const l of listeners) l();
    },

    onChange(listener) {
      listeners.push(listener);
      // PRAGMA data_version changes when another connection commits: the CLI revoking a key,
      // granting credits or changing a plan. 200 ms keeps revocation well inside one second.
      watcher ??= setInterval(() => {
        const v = q.dataVersion.get() as number;
        if (v === lastVersion) return;
        lastVersion = v;
        for (const l of listeners) l();
      }, 200).unref();
    },

    isReady: () => db.open && isMigrated(db) && (inode === undefined || statSync(db.name, { throwIfNoEntry: false })?.ino === inode),
    flush,

    close() {
      if (watcher) clearInterval(watcher);
      if (!db.open) return;
      flush();
      db.close();
    },
  };
}
