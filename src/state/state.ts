// The gateway's memory of accounts, money and usage, over a storage backend: what the request
// path reads and changes, and the background work that keeps it and the database in step
// (leases refilled and returned, counters written, idle accounts forgotten).
import type { Config, StorageLimits } from '../config.ts';
import type { LiveView } from '../db/admin.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { MonthlyPeriods } from './periods.ts';
import { SharedRateLimiter } from '../limiter/shared-buckets.ts';
import { RateLimiter, type Limiter } from '../limiter/token-bucket.ts';
import { Alerts } from '../notify/alerts.ts';
import { StorageBusy, type CoreStorage, type LeaseHolder, type MaybePromise } from '../storage/ports.ts';
import type { RecentUsage } from '../storage/records.ts';
import { Accounts, type AccountState } from './accounts.ts';
import { QuotaSlices } from './quota-slices.ts';
import { Recorder } from './recorder.ts';
import { Wallets } from './wallet.ts';

const SWEEP_MS = 5_000;
const CLOSE_PER_SWEEP = 200;
/** Retention deletes this many raw rows at a time: a few ms of the write lock, never long. */
const PRUNE_ROWS = 2_000;
/** How often retention looks for old rows; while it finds them, it goes on every PRUNE_BUSY_MS. */
const PRUNE_IDLE_MS = 600_000;
const PRUNE_BUSY_MS = 50;

export class GatewayState {
  readonly accounts: Accounts;
  readonly wallets: Wallets;
  readonly recorder: Recorder;
  readonly limiter: Limiter;
  readonly periods = new MonthlyPeriods();
  private readonly alerts: Alerts | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private pruner: NodeJS.Timeout | undefined;
  private stopped = false;

  private readonly options: StorageLimits;

  constructor(readonly storage: CoreStorage, config: Config, private readonly log: Logger, private readonly now: () => number, metrics?: Metrics) {
    const options = (this.options = config.storage);
    this.limiter = storage.rateBuckets ? new SharedRateLimiter(storage.rateBuckets) : new RateLimiter();
    const warn = (msg: string, err: Error) => log.error(msg, { error: err.message });
    const debug = log.isLevelEnabled('debug');
    // A node of several refuses paid requests while its leases may be gone, rather than spend them.
    const fencing = storage.fencing;
    const spendable = fencing && (() => fencing.spendable());
    fencing?.onFenced((reaped) => this.fenced(reaped));
    this.wallets = new Wallets(storage.ledger, {
      leaseMaxMicros: options.leaseMaxMicros, refillWaitMs: 5_000, spendable,
      // Several nodes share the balances: a lease pays for up to 64 requests like the one that asked.
      leaseRequests: fencing ? 64 : Infinity,
      // With several nodes, a balance held by the others' leases is asked back, not refused.
      reclaim: spendable && ((id) => storage.changes.publish({ kind: 'reclaim', id })),
      onLeaseCall: (call, outcome, accountId) => {
        metrics?.leaseCall(call, outcome);
        if (debug) log.debug('lease call', { call, outcome, accountId });
      },
    }, warn);
    this.recorder = new Recorder(storage.usage, {
      maxQueuedRows: options.maxQueuedRows, counterDelayMs: options.counterDelayMs, onError: warn,
      onCommit: (ms, rows, busy) => {
        metrics?.committed(ms, rows, busy);
        if (debug) log.debug(busy ? 'usage commit refused: database busy; retrying' : 'usage committed', { ms: Math.round(ms * 1000) / 1000, rows });
      },
    });
    metrics?.watch({
      queuedRows: () => this.recorder.queuedRows,
      openLeases: () => {
        let n = 0;
        for (const s of this.accounts.all()) if (s.wallet?.leaseId !== undefined) n++;
        return n;
      },
    });
    // Alerts read what the balance and other nodes' leases hold; this node's lease is in memory.
    this.alerts = config.notifications && new Alerts(this.recorder, { held: (id) => storage.ledger.balance(id, true), shared: fencing !== undefined, onError: warn }, now);
    this.accounts = new Accounts(storage.keys, config, this.periods, (s) => {
      if (s.wallet) this.wallets.balanceChanged(s.wallet);
    }, this.alerts, storage.quotas && new QuotaSlices(storage.quotas));
    storage.changes.subscribe((change) => {
      if (change.kind !== 'reclaim') return this.accounts.changed(change);
      const w = this.accounts.state(change.id)?.wallet;
      if (w) this.wallets.yield(w);
    });
    storage.ledger.holder?.(this.holder);
  }

  /**
   * Survivors may have ended this node's leases (`reaped`: they did). Reaped, every wallet is
   * forgotten: requests in flight settle against their old wallets, whose rows count toward
   * leases already closed (so they cost the customer nothing), and new requests lease afresh.
   */
  fenced(reaped: boolean): void {
    this.log.warn(reaped ? 'this node was taken for dead: its leases were ended by another node' : 'heartbeats are late: paid requests are refused (503) until one succeeds', {});
    if (!reaped) return;
    for (const s of this.accounts.all()) s.wallet = undefined;
  }

  /** Counts what a crash left uncounted, ends the leases it left open, then starts the background work. */
  async start(): Promise<void> {
    const recovered = await this.storage.recover();
    if (recovered.leasesClosed > 0 || recovered.rowsCounted > 0) {
      this.log.warn('recovered from a previous run that stopped without writing everything', recovered);
    }
    this.recorder.start(await this.storage.usage.nextId());
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS).unref();
    if (this.options.retentionDays > 0) this.prune();
  }

  /**
   * Deletes raw usage rows past their retention, a small batch at a time, off the request path:
   * each batch holds the write lock for a few ms, and a busy database just waits for next time.
   */
  private prune(): void {
    const next = (wait: number) => {
      if (!this.stopped) this.pruner = setTimeout(() => this.prune(), wait).unref();
    };
    const deleted = (n: number) => next(n === PRUNE_ROWS ? PRUNE_BUSY_MS : PRUNE_IDLE_MS);
    const failed = (err: unknown) => {
      if (!(err instanceof StorageBusy)) this.log.error('deleting old usage rows failed', { error: (err as Error).message });
      next(err instanceof StorageBusy ? 1_000 : PRUNE_IDLE_MS);
    };
    try {
      const n = this.storage.usage.prune(this.now() - this.options.retentionDays * 86_400_000, PRUNE_ROWS);
      if (n instanceof Promise) n.then(deleted, failed);
      else deleted(n);
    } catch (err) {
      failed(err);
    }
  }

  /** A debit (a refund, a dispute, a deduction) that finds the balance short takes back what this gateway's lease holds. */
  readonly holder: LeaseHolder = {
    holding: (accountId) => this.accounts.state(accountId)?.wallet?.available ?? 0,
    giveBack: (accountId, micros) => {
      const w = this.accounts.state(accountId)?.wallet;
      return w && this.wallets.giveBack(w, micros);
    },
  };

  /** What Admin reads from this gateway's memory rather than the file (see db/admin.ts). */
  readonly live: LiveView = {
    // Admin runs on SQLite only, where balance() answers at once.
    balance: (accountId) => this.balance(accountId) as number,
    quotaUsed: (accountId, period) => {
      const s = this.accounts.state(accountId);
      return s && s.period === period ? s.used : undefined;
    },
    pendingDays: (accountId) => this.recorder.pendingDays(accountId === '' ? undefined : this.accounts.state(accountId)),
  };

  /**
   * What the customer has: the durable balance, what other nodes' leases hold unspent, and what
   * this gateway's lease holds unreserved.
   */
  balance(accountId: string): MaybePromise<number> {
    const held = this.accounts.state(accountId)?.wallet?.available ?? 0;
    const rest = this.storage.ledger.balance(accountId, true);
    return rest instanceof Promise ? rest.then((r) => r + held) : rest + held;
  }

  /** The account's latest requests, newest first: those still queued, then the written chain. */
  recent(state: AccountState, limit: number): MaybePromise<RecentUsage[]> {
    this.recorder.commit();
    const queued = this.recorder.queued(state.accountId, limit);
    const recent = queued.map((r): RecentUsage => ({
      ts: r.ts, requestId: r.requestId, method: r.method, path: r.path, status: r.status, priceMicros: r.priceMicros,
      model: r.ai?.model ?? null, inputTokens: r.ai?.inputTokens ?? null, outputTokens: r.ai?.outputTokens ?? null, estimated: r.ai?.estimated ?? false,
    }));
    if (recent.length >= limit) return recent;
    // Every queued row of the account is in `queued`: the oldest one's previous row is written.
    const head = queued.length > 0 ? queued[queued.length - 1].prevId : state.lastUsageId;
    const written = this.storage.usage.recent(state.accountId, head, limit - recent.length);
    if (!(written instanceof Promise)) return [...recent, ...written];
    // A commit may land while the database is read: its rows are then both queued and written.
    const shown = new Set(recent.map((r) => r.requestId));
    return written.then((w) => [...recent, ...w.filter((r) => !shown.has(r.requestId))]);
  }

  /** Shutdown: every row written and counted, every lease of this node returned. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.alerts?.stop();
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.pruner) clearTimeout(this.pruner);
    if (!(await this.recorder.stop())) {
      this.log.error('stopping with usage rows the database would not take; they are lost', {});
      return;
    }
    try {
      await this.accounts.slices?.giveBack(this.accounts.all());
      await this.storage.recover();
    } catch (err) {
      if (!(err instanceof StorageBusy)) throw err;
      // Nothing is lost: the rows are written, and the next start counts them and ends the leases.
      this.log.warn('the database was busy at shutdown: this node\'s leases end at its next start', {});
    }
  }

  /**
   * Leases unused for leaseIdleMs go back to the balance (at most CLOSE_PER_SWEEP a sweep: each
   * is a short transaction); accounts idle long enough leave memory.
   */
  private sweep(): void {
    const t = performance.now();
    const idle: AccountState[] = [];
    // Quota slices of accounts idle as long go back too, so the accounts can leave memory.
    const slices = this.accounts.slices;
    if (slices) {
      const unused = [...this.accounts.all()].filter((s) => s.quotaHeld > 0 && s.inFlight === 0 && this.now() - s.lastUsed >= this.options.leaseIdleMs);
      if (unused.length > 0) slices.giveBack(unused).catch((err: Error) => this.log.error('giving back quota slices failed', { error: err.message }));
    }
    for (const s of this.accounts.all()) {
      const w = s.wallet;
      if (!w || w.leaseId === undefined || w.reserved > 0 || w.pending || t - w.lastUsed < this.options.leaseIdleMs) continue;
      idle.push(s);
      if (idle.length === CLOSE_PER_SWEEP) break;
    }
    // A lease's spending must be in the database before it ends.
    if (idle.length > 0) {
      const written = this.recorder.commitAccounts(idle);
      if (written === true) this.closeLeases(idle);
      else if (written instanceof Promise) written.then((ok) => ok && this.closeLeases(idle), (err: Error) => this.log.error('writing usage failed', { error: err.message }));
    }
    this.accounts.evictIdle(this.now());
  }

  private closeLeases(idle: AccountState[]): void {
    for (const s of idle) {
      const w = s.wallet;
      // Used again while its rows were written: it stays.
      if (!w || w.reserved > 0 || w.pending || performance.now() - w.lastUsed < this.options.leaseIdleMs) continue;
      const closed = this.wallets.close(w);
      if (closed instanceof Promise) closed.catch((err: Error) => this.log.error('returning a lease failed', { error: err.message }));
    }
  }
}
