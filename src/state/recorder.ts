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
import type { Socket } from 'node:net';
import { StorageBusy, type DayTotals, type Notice, type Tally, type UsageLog } from '../storage/ports.ts';
import type { UsageRecord } from '../storage/records.ts';

/** Past this many queued rows a commit is written at once. */
const MAX_BATCH = 2000;
/** A commit is written at the latest this long after its first row. */
const MAX_DELAY_MS = 10;
const RETRY_MS = 50;
const MAX_TALLIES = 256;

const DAY_MS = 86_400_000;
const LAST_BATCH = Symbol('tollgate.lastBatch');
type TrackedSocket = Socket & { [LAST_BATCH]?: number };

/** Who counters belong to: an account's state in memory. */
export interface Counted {
  readonly accountId: string;
  /** The account's newest row: the previous row of its next one. */
  lastUsageId: number;
  /** Deltas not written yet, and since when (for COUNTER_DELAY_MS). */
  tally: Tally | undefined;
  dirtySince: number;
}

export interface RecorderOptions {
  maxQueuedRows: number;
  counterDelayMs: number;
  onError: (msg: string, err: Error) => void;
}

export class Recorder {
  private rows: UsageRecord[] = [];
  private notices: Notice[] = [];
  private readonly anonymous: Counted = { accountId: '', lastUsageId: 0, tally: undefined, dirtySince: 0 };
  /** Accounts with deltas to write, oldest first. */
  private readonly dirty = new Set<Counted>();
  private nextId = 0;
  /** Numbers the commits: rows appended now join commit `batch`. */
  private batch = 1;
  private scheduled = false;
  private busySince: number | undefined = undefined;
  private timer: NodeJS.Timeout | undefined;
  private counterTimer: NodeJS.Timeout | undefined;

  constructor(private readonly usage: UsageLog, private readonly options: RecorderOptions) {}

  /** Call once before the first append: rows are numbered from the database's next id. */
  start(nextId: number): void {
    this.nextId = nextId;
    // Counters come due with no traffic to carry them.
    this.counterTimer = setInterval(() => {
      if (this.dueTallies() > 0) this.commit();
    }, Math.max(100, Math.min(this.options.counterDelayMs, 1_000))).unref();
  }

  /** True while the queue is below its bound (readiness, and whether requests are taken). */
  get accepting(): boolean {
    return this.rows.length < this.options.maxQueuedRows;
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
    {
      let t = counted.tally;
      if (!t) {
        t = counted.tally = { accountId: counted.accountId, throughId: 0, firstId: row.id, quota: new Map(), spent: new Map(), overage: new Map(), days: new Map() };
        counted.dirtySince = performance.now();
        this.dirty.add(counted);
      }
      t.throughId = row.id;
      addToDay(t, row);
      if (row.quotaPeriod !== undefined) t.quota.set(row.quotaPeriod, (t.quota.get(row.quotaPeriod) ?? 0) + 1);
      if (row.leaseId !== undefined && row.priceMicros > 0) t.spent.set(row.leaseId, (t.spent.get(row.leaseId) ?? 0) + row.priceMicros);
      if (row.overageMeter !== undefined) {
        const key = `${row.overageMeter}\u0000${row.overageInterval}`;
        const o = t.overage.get(key);
        if (o) o.units++;
        else t.overage.set(key, { meter: row.overageMeter, intervalStart: row.overageInterval!, units: 1 });
      }
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
    if ((socket as TrackedSocket)[LAST_BATCH] === this.batch && !this.busy && this.rows.length > 0) this.commit();
  }

  /**
   * Writes the queued rows and the counters that are due (`all`: every counter, e.g. before a
   * lease ends or at shutdown). False when the database is busy: it is tried again shortly.
   */
  commit(all = false): boolean {
    this.scheduled = false;
    const accounts = this.takeDue(all);
    if (this.rows.length === 0 && accounts.length === 0 && this.notices.length === 0) return true;
    const tallies = accounts.map((a) => a.tally!);
    for (const a of accounts) a.tally = undefined;
    // Every row before the oldest account still dirty after this commit is counted.
    const oldest = this.dirty.values().next().value as Counted | undefined;
    const throughId = oldest ? oldest.tally!.firstId - 1 : this.nextId - 1;
    try {
      const r = this.usage.write(this.rows, tallies, throughId, this.notices);
      if (r instanceof Promise) throw new Error('an asynchronous usage log needs the asynchronous recorder');
    } catch (err) {
      this.putBack(accounts, tallies);
      if (!(err instanceof StorageBusy)) this.options.onError('writing usage failed; retrying', err as Error);
      this.retryLater();
      return false;
    }
    this.rows = [];
    if (this.notices.length > 0) this.notices = [];
    this.batch++;
    this.busySince = undefined;
    return true;
  }

  /** Writes one account's counters now (before its lease ends). False when busy. */
  commitAccount(account: Counted): boolean {
    if (!account.tally) return this.rows.length === 0 || this.commit();
    // Move it to the front: the next commit takes the oldest first.
    this.dirty.delete(account);
    const rest = [...this.dirty];
    this.dirty.clear();
    this.dirty.add(account);
    for (const a of rest) this.dirty.add(a);
    account.dirtySince = -Infinity;
    return this.commit();
  }

  /** Everything queued, rows and counters; false when busy. */
  flush(): boolean {
    while (this.dirty.size > 0 || this.rows.length > 0 || this.notices.length > 0) if (!this.commit(true)) return false;
    return true;
  }

  /** The daily totals of an account ('' for auth-free routes) not written yet. */
  pendingDays(account: Counted | undefined): Iterable<DayTotals> {
    return (account ?? this.anonymous).tally?.days.values() ?? [];
  }

  /** The queued rows of one account, newest first (what the database does not have yet). */
  queued(accountId: string, limit: number): UsageRecord[] {
    const out: UsageRecord[] = [];
    for (let i = this.rows.length - 1; i >= 0 && out.length < limit; i--) if (this.rows[i].accountId === accountId) out.push(this.rows[i]);
    return out;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.counterTimer) clearInterval(this.counterTimer);
  }

  private dueTallies(): number {
    const first = this.dirty.values().next().value as Counted | undefined;
    return first && performance.now() - first.dirtySince >= this.options.counterDelayMs ? 1 : 0;
  }

  /** The accounts whose counters go with this commit, oldest first, at most MAX_TALLIES. */
  private takeDue(all: boolean): Counted[] {
    const out: Counted[] = [];
    const dueBefore = performance.now() - this.options.counterDelayMs;
    for (const a of this.dirty) {
      if (out.length >= MAX_TALLIES || (!all && a.dirtySince > dueBefore)) break;
      out.push(a);
    }
    for (const a of out) this.dirty.delete(a);
    return out;
  }

  /** A commit that failed: its counters wait in front again, merged with what came since. */
  private putBack(accounts: Counted[], tallies: Tally[]): void {
    if (accounts.length === 0) return;
    const rest = [...this.dirty];
    this.dirty.clear();
    accounts.forEach((a, i) => {
      const t = tallies[i];
      if (a.tally) merge(t, a.tally);
      a.tally = t;
      a.dirtySince = -Infinity;
      this.dirty.add(a);
    });
    for (const a of rest) this.dirty.add(a);
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

/** Counts the row in its day's totals (the last group is reused: most rows of an account repeat it). */
function addToDay(t: Tally & { last?: DayTotals }, r: UsageRecord): void {
  const day = r.ts - (r.ts % DAY_MS);
  const model = r.ai?.model ?? '';
  let d = t.last;
  if (!d || d.day !== day || d.status !== r.status || d.route !== r.route || d.model !== model) {
    const key = `${day}\u0000${r.route}\u0000${model}\u0000${r.status}`;
    d = t.days.get(key);
    if (!d) {
      d = { day, route: r.route, model, status: r.status, requests: 0, billable: 0, chargedMicros: 0, inputTokens: 0, cachedTokens: 0, cacheWriteTokens: 0, outputTokens: 0 };
      t.days.set(key, d);
    }
    t.last = d;
  }
  d.requests++;
  if (r.billable) d.billable++;
  d.chargedMicros += r.priceMicros;
  const ai = r.ai;
  if (ai) {
    d.inputTokens += ai.inputTokens;
    d.cachedTokens += ai.cachedTokens;
    d.cacheWriteTokens += ai.cacheWriteTokens;
    d.outputTokens += ai.outputTokens;
  }
}

/** Adds the later deltas `b` into `a` (a is older). */
function merge(a: Tally, b: Tally): void {
  a.throughId = b.throughId;
  for (const [k, v] of b.quota) a.quota.set(k, (a.quota.get(k) ?? 0) + v);
  for (const [k, v] of b.spent) a.spent.set(k, (a.spent.get(k) ?? 0) + v);
  for (const [k, v] of b.overage) {
    const o = a.overage.get(k);
    if (o) o.units += v.units;
    else a.overage.set(k, v);
  }
  for (const [k, v] of b.days) {
    const d = a.days.get(k);
    if (!d) a.days.set(k, v);
    else {
      d.requests += v.requests;
      d.billable += v.billable;
      d.chargedMicros += v.chargedMicros;
      d.inputTokens += v.inputTokens;
      d.cachedTokens += v.cachedTokens;
      d.cacheWriteTokens += v.cacheWriteTokens;
      d.outputTokens += v.outputTokens;
    }
  }
}
