// Changes on PostgreSQL, for every node. A change is a row in `changes`, written in the transaction
// of what changed, and a NOTIFY that PostgreSQL sends at its commit: listening nodes read the new
// rows at once. They also read them every second, so a node whose listening connection dropped
// (or that missed a notification) is late by a second at most. Ids are given at insert and
// transactions commit in any order, so a node reads by time with a look-back and remembers what it
// told: a change is told once, even when its row commits after a newer one, and a node's own
// changes are told to its listeners at once, never again from their rows.
import type pg from 'pg';
import type { Change, ChangeFeed } from '../storage/ports.ts';
import { NOW_MS, pgDriver, type Client, type Pool } from './pool.ts';

const CHANNEL = 'tollgate_changes';
const POLL_MS = 1_000;
/** A change whose transaction commits up to this long after it wrote the row is still read. */
const LOOKBACK_MS = 5_000;
/** Rows older than this serve no node. */
const KEEP_MS = 3_600_000;

interface ChangeRow { id: number; kind: Change['kind']; subject: string; createdAt: number }

const toChange = (r: ChangeRow): Change =>
  r.kind === 'key' ? { kind: 'key', hash: r.subject } : r.kind === 'all' ? { kind: 'all' } : { kind: r.kind, id: r.subject };

/** Records `change` by `node` in the caller's transaction (or its own, given the pool); the NOTIFY goes at commit. */
export async function recordChange(c: Client | Pool, change: Change, node: string): Promise<void> {
  const subject = change.kind === 'key' ? change.hash : change.kind === 'all' ? '' : change.id;
  await c.query(`WITH c AS (INSERT INTO changes (kind, subject, node, created_at) VALUES ($1, $2, $3, ${NOW_MS}) RETURNING id)
    SELECT pg_notify('${CHANNEL}', id::text) FROM c`, [change.kind, subject, node]);
}

/** `onError` hears of a change this node published that could not be recorded for the others. */
export interface PgChangeFeed extends ChangeFeed {
  /** Tells this node's listeners of a change its own transaction recorded (recordChange with this node), once committed. */
  tell(change: Change): void;
  /** Reads and tells what other writers recorded until now (an admin action this node just committed). */
  catchUp(): Promise<void>;
  stop(): Promise<void>;
}

export function createPgChanges(pool: Pool, url: string, node: string, onError: (err: Error) => void): PgChangeFeed {
  const listeners: ((change: Change) => void)[] = [];
  /** Changes told, by id, with when they were written: forgotten once past the look-back. */
  const told = new Map<number, number>();
  let since: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let listening: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let reading: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  const tell = (change: Change) => {
    for (const l of listeners) l(change);
  };

  async function readNew(): Promise<void> {
    since ??= (await pool.query<{ now: number }>(`SELECT ${NOW_MS} AS now`)).rows[0].now;
    const { rows } = await pool.query<ChangeRow>(`SELECT id, kind, subject, created_at AS "createdAt" FROM changes
      WHERE created_at > $1 AND node <> $2 ORDER BY id`, [since - LOOKBACK_MS, node]);
    for (const r of rows) {
      if (r.createdAt > since) since = r.createdAt;
      if (told.has(r.id)) continue;
      told.set(r.id, r.createdAt);
      tell(toChange(r));
    }
    for (const [id, at] of told) if (at < since - 2 * LOOKBACK_MS) told.delete(id);
  }

  /** Reads what is new; a call while a read runs makes it read once more when done. */
  function read(): void {
    if (stopped) return;
    if (reading) {
      again = true;
      return;
    }
    reading = readNew().catch(() => undefined).finally(() => {
      reading = undefined;
      if (again) {
        again = false;
        read();
      }
    });
  }

  async function listen(): Promise<void> {
    const c = new (await pgDriver()).Client({ connectionString: url });
    c.on('notification', read);
    // A dropped connection: polling carries on, and the next poll that finds it gone listens again.
    c.on('error', () => undefined);
    c.on('end', () => {
      if (listening === c) listening = undefined;
    });
    await c.connect();
    await c.query(`LISTEN ${CHANNEL}`);
    if (stopped) await c.end();
    else listening = c;
  }

  return {
    publish(change) {
      // This process's listeners hear it at once (a reclaim is for the others only); the row tells the other nodes.
      if (change.kind !== 'reclaim') queueMicrotask(() => tell(change));
      recordChange(pool, change, node).catch(onError);
    },

    tell,
    catchUp: readNew,

    subscribe(listener) {
      listeners.push(listener);
      if (timer) return;
      let polls = 0;
      const tick = () => {
        if (!listening && !connecting) connecting = listen().catch(() => undefined).finally(() => (connecting = undefined));
        read();
        // Once an hour, any node: a prune another node ran at the same time deletes nothing twice.
        if (++polls % (KEEP_MS / POLL_MS) === 0) void pool.query(`DELETE FROM changes WHERE created_at < ${NOW_MS} - $1`, [KEEP_MS]).catch(() => undefined);
      };
      timer = setInterval(tick, POLL_MS).unref();
      tick();
    },

    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await reading;
      await listening?.end();
    },
  };
}
