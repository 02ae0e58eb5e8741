// Usage rows and counters on their way to the database, in group commits.
//
// The rule while the file is writable: before a connection gets the first byte of another
// response, the commit holding its previous row is written. Meanwhile other connections' rows
// join that commit, so under load one commit carries about one row per connection, and a kill -9
// loses at most one answered request per open connection.
//
// While the database cannot be written (another process holds SQLite's write lock, the disk is
// full), answers do not wait: rows and counters queue here, up to MAX_QUEUED_ROWS (readiness turns
// false there, and proxied requests are refused with 503), and a commit is tried every
// RETRY_MS. What a crash could lose then grows to what is queued.
//
// Counters (quota used, money a lease spent, overage, the head of an account's chain) follow
// the rows they count: each account's deltas wait COUNTER_DELAY_MS (so many requests make one
// write) and at most MAX_TALLIES go with one commit, whatever the number of accounts.
//
// Alerts decided in memory (notify/alerts.ts) go with the next commit: the row of the request
// that crossed a threshold and the event it fired are in the file together, or neither is.
//
// A usage log over the network (PostgreSQL), or in SQLite's writer thread (db/usage-thread.ts),
// answers later: one commit is written at a time, the rows that arrive meanwhile make the next
// one (so a commit grows with the round trip), and durable() says when a connection's last row is
// in. A thread costs no round trip: a commit starts as soon as a connection waits for one. Such a log counts each row as it writes it
// (UsageLog.countsRows): the recorder then keeps no tallies.
import type { Socket } from 'node:net';
import { StorageBusy, type DayTotals, type Notice, type UsageLog } from '../storage/ports.ts';
import type { UsageRecord } from '../storage/records.ts';
import { Deferred } from '../storage/deferred.ts';
import { Pending } from './pending.ts';

/** Past this many queued rows a commit is written at once. */
const MAX_BATCH = 2000;
/** A commit is written at the latest this long after its first row. */
const MAX_DELAY_MS = 10;
const RETRY_MS = 50;
/** A remote commit slower than this makes the log busy until it answers (see commit()). */
const SLOW_COMMIT_MS = 1_000;
const MAX_TALLIES = 256;

const LAST_BATCH = Symbol('tollgate.lastBatch');
type TrackedSocket = Socket & { [LAST_BATCH]?: number };

/**
 * A connection waiting for its last row: run() in server.ts calls then() at once, and the commit
 * that writes it resolves it. Not a promise: under load most requests of a thread-written log
 * wait, and a promise and its microtask each cost more than the thread saves (+2% against +17%).
 */
export class Wait extends Deferred {
  constructor(readonly batch: number) {
    super();
  }
}

/** Who counters belong to: an account's state in memory. */
export interface Counted {
  readonly accountId: string;
  /** The account's newest row: the previous row of its next one. */
  lastUsageId: number;
  /** Counts not written yet, and since when (for COUNTER_DELAY_MS). */
  tally: Pending | undefined;
  /** Counts in the commit being written (a log that answers later). */
  writing: Pending | undefined;
  dirtySince: number;
}

export interface RecorderOptions {
  maxQueuedRows: number;
  counterDelayMs: number;
  onError: (msg: string, err: Error) => void;
  /** After each commit: how long it took, the rows it wrote, and whether the database was busy (then retried). */
  onCommit?: (ms: number, rows: number, busy: boolean) => void;
}

export class Recorder {
  private rows: UsageRecord[] = [];
  private notices: Notice[] = [];
  private readonly anonymous: Counted = { accountId: '', lastUsageId: 0, tally: undefined, writing: undefined, dirtySince: 0 };
  /** Accounts with deltas to write, oldest first. */
  private readonly dirty = new Set<Counted>();
  /** Accounts whose deltas go with the next commits whatever their age (a lease about to end). */
  private readonly urgent = new Set<Counted>();
  private nextId = 0;
  /** Numbers the commits: rows appended now join commit `batch`. */
  private batch = 1;
  /** Every commit up to this one is written. */
  private durableBatch = 0;
  /** The commit being written, when the log answers later; the next one waits for it. */
  private writing = false;
  /** drain()s waiting for the commit being written. */
  private afterWrite: (() => void)[] = [];
  /** The rows of the commit being written (a log that answers later): still the gateway's to show. */
  private inFlight: readonly UsageRecord[] = [];
  /** Connections waiting for their last row (durable()), by the commit that holds it. */
  private waiters: { batch: number; resolve: () => void }[] = [];
  /** A commit costs no round trip (a thread): one starts as soon as a connection waits. */
  private readonly eager: boolean;
  private scheduled = false;
  private busySince: number | undefined = undefined;
  private timer: NodeJS.Timeout | undefined;
  private counterTimer: NodeJS.Timeout | undefined;

  constructor(private readonly usage: UsageLog, private readonly options: RecorderOptions) {
    this.eager = usage.commitsAtOnce === true;
  }

  /** Call once before the first append: rows are numbered from the database's next id. */
  start(nextId: number): void {
    this.nextId = nextId;
    // Counters come due with no traffic to carry them.
    this.counterTimer = setInterval(() => {
      if (this.dueTallies() > 0) this.commit();
    }, Math.max(100, Math.min(this.options.counterDelayMs, 1_000))).unref();
  }

  /** Whether the log answers later: requests wait for durable() before they start. */
  get remote(): boolean {
    return this.usage.remote === true;
  }

  /** True while the queue is below its bound (readiness, and whether requests are taken). */
  get accepting(): boolean {
    return this.queuedRows < this.options.maxQueuedRows;
  }

  /** Rows waiting for their commit, those of the commit being written included. */
  get queuedRows(): number {
    return this.rows.length + this.inFlight.length;
  }

  get busy(): boolean {
    return this.busySince !== undefined;
  }

  /** Queues a row (numbering it and chaining it to its account's previous row) and its counts. */
  append(row: UsageRecord, account: Counted | undefined, socket: Socket): void {
    row.id = this.nextId++;
    // Rows of no account (auth-free routes) are counted in the rollups of the account ''.
    const counted = account ?? this.anonymous;
    row.prevId = account ? account.lastUsageId : 0;
    if (account) account.lastUsageId = row.id;
    if (!this.usage.countsRows) {
      let t = counted.tally;
      if (!t) {
        t = counted.tally = new Pending(row.id);
        counted.dirtySince = performance.now();
        this.dirty.add(counted);
      }
      t.add(row);
    }
    this.rows.push(row);
    (socket as TrackedSocket)[LAST_BATCH] = this.batch;
    if (this.rows.length >= MAX_BATCH && !this.busy) this.commit();
    else if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => this.commit(), MAX_DELAY_MS).unref();
    }
  }

  /**
   * Queues an alert for the next commit. Call it before the row of the request that decided it
   * is appended: an append may commit at once.
   */
  notice(n: Notice): void {
    this.notices.push(n);
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => this.commit(), MAX_DELAY_MS).unref();
    }
  }

  /** The connection is about to get another response: its previous row is written first. */
  beforeResponse(socket: Socket): void {
    if (!this.isDurable(socket) && !this.busy && !this.writing && this.rows.length > 0) this.commit();
  }

  /**
   * True once the connection's last row is written (or while the database is busy: answers do not
   * wait then); else a Wait for it, its commit started if it was only queued.
   */
  durable(socket: Socket): true | Wait {
    if (this.isDurable(socket) || this.busy) return true;
    if (!this.writing && (this.eager || !this.scheduled)) this.commit();
    if (this.isDurable(socket) || this.busy) return true;
    const wait = new Wait((socket as TrackedSocket)[LAST_BATCH]!);
    this.waiters.push(wait);
    return wait;
  }

  /**
   * True once every row queued so far is written (or while the database is busy: then nothing
   * waits); else a promise of it. Unlike drain(), rows queued after the call are not waited for.
   */
  settled(): true | Promise<void> {
    const batch = this.rows.length > 0 || this.notices.length > 0 ? this.batch : this.writing ? this.batch - 1 : this.durableBatch;
    if (batch <= this.durableBatch || this.busy) return true;
    if (!this.writing && !this.scheduled) this.commit();
    if (batch <= this.durableBatch || this.busy) return true;
    return new Promise((resolve) => this.waiters.push({ batch, resolve }));
  }

  /** Resolves once nothing is queued or being written: true, or false when a commit failed. */
  async drain(): Promise<boolean> {
    while (this.writing || this.rows.length > 0 || this.notices.length > 0) {
      if (this.writing) await new Promise<void>((resolve) => this.afterWrite.push(resolve));
      else if (!this.commit()) return false;
      // A commit that answers later and fails puts its rows back and retries on its own timer.
      if (!this.writing && this.busy) return false;
    }
    return true;
  }

  private isDurable(socket: Socket): boolean {
    const last = (socket as TrackedSocket)[LAST_BATCH];
    return last === undefined || last <= this.durableBatch;
  }

  /**
   * Writes the queued rows and the counters that are due (`all`: every counter, e.g. before a
   * lease ends or at shutdown). False when the database is busy: it is tried again shortly.
   */
  commit(all = false): boolean {
    this.scheduled = false;
    if (this.writing) return true; // what is queued goes as soon as the commit being written is in
    const accounts = this.takeDue(all);
    if (this.rows.length === 0 && accounts.length === 0 && this.notices.length === 0) return true;
    const pending = accounts.map((a) => a.tally!);
    const tallies = accounts.map((a, i) => pending[i].toTally(a.accountId));
    accounts.forEach((a, i) => {
      a.tally = undefined;
      a.writing = pending[i]; // still the gateway's to show (pendingDays) until it is in
    });
    // Every row before the oldest account still dirty after this commit is counted.
    const oldest = this.dirty.values().next().value as Counted | undefined;
    const throughId = oldest ? oldest.tally!.firstId - 1 : this.nextId - 1;
    const { rows, notices, batch } = this;
    // Rows appended from here on make the next commit.
    this.rows = [];
    if (notices.length > 0) this.notices = [];
    this.batch++;
    const started = performance.now();
    const failed = (err: unknown): false => {
      for (const a of accounts) a.writing = undefined;
      // In front of what came since, so rows stay in the order of their ids.
      this.rows = this.rows.length > 0 ? rows.concat(this.rows) : rows;
      if (notices.length > 0) this.notices = notices.concat(this.notices);
      this.putBack(accounts, pending);
      // Answers do not wait for a database that cannot take their rows (see the top of the file).
      for (const w of this.waiters) w.resolve();
      this.waiters = [];
      if (!(err instanceof StorageBusy)) this.options.onError('writing usage failed; retrying', err as Error);
      else this.options.onCommit?.(performance.now() - started, 0, true);
      this.retryLater();
      return false;
    };
    let written;
    try {
      written = this.usage.write(rows, tallies, throughId, notices);
    } catch (err) {
      return failed(err);
    }
    if (written === undefined) {
      for (const a of accounts) a.writing = undefined;
      this.written(batch, rows.length, started);
      return true;
    }
    // A database that does not answer (paused, a partition) is busy for the answers: they stop
    // waiting for their rows, which stay queued behind this commit, up to maxQueuedRows.
    const slow = setTimeout(() => this.stalled(), SLOW_COMMIT_MS);
    this.inFlight = rows;
    this.writing = true;
    const over = () => {
      clearTimeout(slow);
      this.writing = false;
      this.inFlight = [];
      const drains = this.afterWrite;
      this.afterWrite = [];
      for (const d of drains) d();
    };
    written.then(() => {
      over();
      for (const a of accounts) a.writing = undefined;
      this.written(batch, rows.length, started);
      // What came meanwhile goes when its timer says (at most MAX_DELAY_MS after its first row),
      // so a commit carries every connection's row, not those of one round trip; a writer thread
      // costs no round trip, so a connection waiting for its row has it committed at once.
      if ((this.rows.length > 0 || this.notices.length > 0) && (!this.scheduled || (this.eager && this.waiters.length > 0))) this.commit();
    }, (err: unknown) => {
      over();
      failed(err);
    });
    return true;
  }

  /** Commit `batch` is in the database: the connections waiting for it hear so. */
  private written(batch: number, rows: number, started: number): void {
    this.options.onCommit?.(performance.now() - started, rows, false);
    this.durableBatch = batch;
    this.busySince = undefined;
    if (this.waiters.length === 0) return;
    const still = [];
    for (const w of this.waiters) {
      if (w.batch <= batch) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /**
   * Writes these accounts' counters now (before their leases end), with what is queued. False when
   * busy; a promise when the log answers later (it counts rows itself: there are no counters).
   */
  commitAccounts(accounts: Iterable<Counted>): boolean | Promise<boolean> {
    if (this.usage.countsRows) return this.drain();
    for (const a of accounts) if (a.tally) this.urgent.add(a);
    while (this.urgent.size > 0) if (!this.commitNow()) return false;
    return this.rows.length === 0 || this.commitNow();
  }

  /** The rows queued so far, written before this returns (SQLite: Admin reads them from the file next); false when busy. */
  commitRows(): boolean {
    return this.commitNow();
  }

  /** Everything queued, rows and counters; false when busy. */
  flush(): boolean {
    while (this.dirty.size > 0 || this.rows.length > 0 || this.notices.length > 0) if (!this.commitNow(true)) return false;
    return true;
  }

  /** The daily totals of an account ('' for auth-free routes) not written yet. */
  pendingDays(account: Counted | undefined): Iterable<DayTotals> {
    const { tally, writing } = account ?? this.anonymous;
    if (!writing) return tally?.days() ?? [];
    return tally ? [...writing.days(), ...tally.days()] : writing.days();
  }

  /** The queued rows of one account, newest first (what the database does not have yet), those being written included. */
  queued(accountId: string, limit: number): UsageRecord[] {
    const out: UsageRecord[] = [];
    for (const rows of [this.rows, this.inFlight]) {
      for (let i = rows.length - 1; i >= 0 && out.length < limit; i--) if (rows[i].accountId === accountId) out.push(rows[i]);
    }
    return out;
  }

  /**
   * Shutdown: writes what is queued but the counters and stops. The counters the rows owe are
   * counted from the rows in one pass (Storage.recover), as after a crash: written one account at
   * a time they took 85 µs each, 8.5 s with 100 000 accounts. False when the database is busy.
   */
  async stop(): Promise<boolean> {
    if (this.timer) clearTimeout(this.timer);
    if (this.counterTimer) clearInterval(this.counterTimer);
    if (!(await this.drain())) return false;
    for (const a of this.dirty) a.tally = undefined;
    this.dirty.clear();
    this.urgent.clear();
    return true;
  }

  /**
   * A commit for the loops that commit until done: they need a log that answers at once (SQLite),
   * or one that can be waited for here (a writer thread's, UsageLog.waitNow).
   */
  private commitNow(all = false): boolean {
    if (this.writing && !this.waitNow()) return false;
    const ok = this.commit(all);
    if (this.writing && !this.waitNow()) return false;
    return ok && !this.busy;
  }

  /** Waits here for the commit being written; false when it did not answer (as if the database were busy). */
  private waitNow(): boolean {
    if (!this.usage.waitNow) throw new Error('this usage log answers later: wait for it with drain()');
    this.usage.waitNow();
    return !this.writing;
  }

  private dueTallies(): number {
    const first = this.dirty.values().next().value as Counted | undefined;
    return first && performance.now() - first.dirtySince >= this.options.counterDelayMs ? 1 : 0;
  }

  /** The accounts whose counters go with this commit: urgent ones, then the oldest due, at most MAX_TALLIES. */
  private takeDue(all: boolean): Counted[] {
    const out = new Set<Counted>();
    for (const a of this.urgent) {
      if (out.size >= MAX_TALLIES) break;
      if (a.tally) out.add(a);
      this.urgent.delete(a);
    }
    const dueBefore = performance.now() - this.options.counterDelayMs;
    for (const a of this.dirty) {
      if (out.size >= MAX_TALLIES || (!all && a.dirtySince > dueBefore)) break;
      out.add(a);
    }
    for (const a of out) this.dirty.delete(a);
    return [...out];
  }

  /** A commit that failed: its counters wait in front again, merged with what came since. */
  private putBack(accounts: Counted[], tallies: Pending[]): void {
    if (accounts.length === 0) return;
    const rest = [...this.dirty];
    this.dirty.clear();
    accounts.forEach((a, i) => {
      const t = tallies[i];
      if (a.tally) t.merge(a.tally);
      a.tally = t;
      a.dirtySince = -Infinity;
      this.dirty.add(a);
    });
    for (const a of rest) this.dirty.add(a);
  }

  private stalled(): void {
    this.busySince ??= performance.now();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  private retryLater(): void {
    this.busySince ??= performance.now();
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.commit();
    }, RETRY_MS);
    this.timer.unref();
  }
}
