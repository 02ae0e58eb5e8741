// The Store on one SQLite file. Statements are prepared once; usage rows and quota counts are
// written in one transaction per event-loop turn; money moves in a transaction with its ledger row.
import type { Db } from './open.ts';
import { isMigrated } from './migrate.ts';
import type { AccountRecord, KeyRecord, RecentUsage, Store, UsageRecord } from './store.ts';

/** Past this many queued rows a flush happens at once rather than at the end of the turn. */
const MAX_BATCH = 2000;

export interface SqliteStoreOptions {
  now?: () => number;
  /** Told when a batch could not be written; the batch is kept and retried. */
  onFlushError?: (err: Error) => void;
}

export function createSqliteStore(db: Db, { now = Date.now, onFlushError }: SqliteStoreOptions = {}): Store {
  const q = {
    findKey: db.prepare(`SELECT k.id, k.account_id, k.expires_at, k.revoked_at, a.plan, a.status
      FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.hash = ?`),
    quotaUsed: db.prepare('SELECT used FROM quota_usage WHERE account_id = ? AND period = ?').pluck(),
    addQuota: db.prepare(`INSERT INTO quota_usage (account_id, period, used) VALUES (?, ?, max(?, 0))
      ON CONFLICT (account_id, period) DO UPDATE SET used = max(used + excluded.used, 0)`),
    debit: db.prepare(`UPDATE accounts SET balance_micros = balance_micros - @micros
      WHERE id = @accountId AND balance_micros >= @micros RETURNING balance_micros`).pluck(),
    credit: db.prepare(`UPDATE accounts SET balance_micros = balance_micros + @micros
      WHERE id = @accountId RETURNING balance_micros`).pluck(),
    ledger: db.prepare(`INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
      VALUES (?, ?, ?, ?, ?, ?)`),
    usage: db.prepare(`INSERT INTO usage (ts, request_id, account_id, key_id, route, method, path, status,
      request_bytes, response_bytes, latency_us, price_micros, billable,
      model, input_tokens, cached_tokens, cache_write_tokens, output_tokens, estimated)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    balance: db.prepare('SELECT balance_micros FROM accounts WHERE id = ?').pluck(),
    // No index on account_id (see 0001): walk back from the newest row; bounded to a week.
    recent: db.prepare(`SELECT ts, request_id AS requestId, method, path, status, price_micros AS priceMicros, model,
      input_tokens AS inputTokens, output_tokens AS outputTokens, estimated
      FROM usage WHERE ts >= ? AND account_id = ? ORDER BY id DESC LIMIT ?`),
    seenEvent: db.prepare('SELECT 1 FROM webhook_events WHERE id = ?'),
    recordEvent: db.prepare('INSERT INTO webhook_events (id, source, type, received_at) VALUES (?, ?, ?, ?)'),
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
  };

  // Quota counts live in memory (this process is the only server on the file) and are persisted
  // as deltas with the usage batch; the map is keyed by account and period.
  const quota = new Map<string, { accountId: string; period: string; used: number; pending: number }>();
  const rows: UsageRecord[] = [];
  let flushScheduled = false;
  let retrying = false;

  const flushTx = db.transaction(() => {
    for (const r of rows) {
      const ai = r.ai;
      q.usage.run(r.ts, r.requestId, r.accountId, r.keyId, r.route, r.method, r.path, r.status,
        r.requestBytes, r.responseBytes, r.latencyUs, r.priceMicros, r.billable ? 1 : 0,
        ai?.model ?? null, ai?.inputTokens ?? null, ai?.cachedTokens ?? null, ai?.cacheWriteTokens ?? null,
        ai?.outputTokens ?? null, ai?.estimated ? 1 : 0);
    }
    for (const c of quota.values()) {
      if (c.pending !== 0) q.addQuota.run(c.accountId, c.period, c.pending);
    }
  });

  function flush(): void {
    flushScheduled = false;
    if (rows.length === 0 && !hasPendingQuota()) return;
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
    for (const c of quota.values()) c.pending = 0;
  }

  function hasPendingQuota(): boolean {
    for (const c of quota.values()) if (c.pending !== 0) return true;
    return false;
  }

  function schedule(): void {
    if (rows.length >= MAX_BATCH && !retrying) flush();
    else if (!flushScheduled) {
      flushScheduled = true;
      // setImmediate runs after this turn's I/O callbacks: every response finished in this turn
      // is committed before the same connection can complete another request.
      setImmediate(flush);
    }
  }

  function counter(accountId: string, period: string) {
    const id = `${accountId}\u0000${period}`;
    let c = quota.get(id);
    if (!c) {
      c = { accountId, period, used: (q.quotaUsed.get(accountId, period) as number | undefined) ?? 0, pending: 0 };
      quota.set(id, c);
    }
    return c;
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
        | { id: string; account_id: string; expires_at: number | null; revoked_at: number | null; plan: string; status: AccountRecord['status'] }
        | undefined;
      if (!r) return undefined;
      const key: KeyRecord = { id: r.id, accountId: r.account_id, expiresAt: r.expires_at, revokedAt: r.revoked_at };
      return { key, account: { id: r.account_id, plan: r.plan, status: r.status } };
    },

    takeQuota(accountId, period, limit) {
      const c = counter(accountId, period);
      if (limit !== null && c.used >= limit) return false;
      c.used++;
      c.pending++;
      schedule();
      return true;
    },

    returnQuota(accountId, period) {
      const c = counter(accountId, period);
      if (c.used === 0) return;
      c.used--;
      c.pending--;
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
      const rows = q.recent.all(now() - 7 * 86_400_000, accountId, limit) as (Omit<RecentUsage, 'estimated'> & { estimated: number })[];
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

    appendUsage(row) {
      rows.push(row);
      schedule();
    },

    applyOnce(source, eventId, type, effect) {
      return db.transaction(() => {
        if (q.seenEvent.get(eventId)) return false;
        effect();
        q.recordEvent.run(eventId, source, type, now());
        return true;
      }).immediate();
    },

    onExternalChange(listener) {
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

    isReady: () => db.open && isMigrated(db),
    flush,

    close() {
      if (watcher) clearInterval(watcher);
      if (!db.open) return;
      flush();
      db.close();
    },
  };
}
