// Changes on the SQLite file. What this process changes is told to its listeners at once; what
// another process (the CLI) changes is found by polling PRAGMA data_version, which moves when
// another connection commits, and reading the `changes` rows that process wrote in the same
// transaction as its change. A commit with no such row (a hand edit with sqlite3) reloads all.
// This process's usage writer thread (db/usage-thread.ts) moves data_version too, with no row:
// while it writes, a hand edit is told by the thread, which sees data_version move on its own
// connection with neither the gateway's connection nor a `changes` row to account for it.
import type { Change, ChangeFeed } from '../storage/ports.ts';
import type { Db } from './open.ts';
import { outsideEdits, partnerWrites, writing } from './sqlite-busy.ts';

/** 200 ms keeps a revocation by the CLI well inside a second. */
const POLL_MS = 200;
/** Rows older than this are of no use to a gateway that polls every 200 ms. */
const KEEP_MS = 3_600_000;

export function createSqliteChanges(db: Db, now: () => number): ChangeFeed & { stop(): void } {
  const q = {
    add: db.prepare('INSERT INTO changes (kind, subject, created_at) VALUES (?, ?, ?)'),
    since: db.prepare('SELECT id, kind, subject FROM changes WHERE id > ? ORDER BY id'),
    last: db.prepare('SELECT coalesce(max(id), 0) FROM changes').pluck(),
    prune: db.prepare('DELETE FROM changes WHERE created_at < ?'),
    version: db.prepare('PRAGMA data_version').pluck(),
  };
  const listeners: ((change: Change) => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  let version = q.version.get() as number;
  let seen = q.last.get() as number;
  let threadSeen = partnerWrites();
  let outsideSeen = outsideEdits();

  const tell = (change: Change) => {
    for (const l of listeners) l(change);
  };

  function poll(): void {
    const v = q.version.get() as number;
    const thread = partnerWrites();
    const outside = outsideEdits();
    if (v === version && outside === outsideSeen) return;
    version = v;
    const rows = q.since.all(seen) as { id: number; kind: 'key' | 'account' | 'balance'; subject: string }[];
    // Moved by the thread alone, unless it saw an edit no one accounts for.
    const edited = outside !== outsideSeen || thread === threadSeen;
    threadSeen = thread;
    outsideSeen = outside;
    if (rows.length === 0) return edited ? tell({ kind: 'all' }) : undefined;
    seen = rows[rows.length - 1].id;
    for (const r of rows) tell(r.kind === 'key' ? { kind: 'key', hash: r.subject } : { kind: r.kind, id: r.subject });
  }

  return {
    publish(change) {
      if (change.kind !== 'all') {
        // Mostly inside the caller's transaction, which has the turn already (db/sqlite-busy.ts).
        writing(() => q.add.run(change.kind, change.kind === 'key' ? change.hash : change.id, now()));
        seen = Math.max(seen, q.last.get() as number); // our own row: told below
      }
      // After the caller's transaction: a listener (a lease taking new credits) must not write
      // inside it, nor act on a change that is then rolled back.
      queueMicrotask(() => tell(change));
    },
    subscribe(listener) {
      listeners.push(listener);
      let polls = 0;
      timer ??= setInterval(() => {
        try {
          poll();
          // Once an hour is plenty; a prune that finds the file busy waits for the next hour.
          if (++polls % (KEEP_MS / POLL_MS) === 0) writing(() => q.prune.run(now() - KEEP_MS));
        } catch {
          // a busy or vanished file: readiness reports it; try again next time
        }
      }, POLL_MS).unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
