// The gateway's memory of accounts, money and usage, over a storage backend: what the request
// path reads and changes, and the background work that keeps it and the database in step
// (leases refilled and returned, counters written, idle accounts forgotten).
import type { Config, StorageLimits } from '../config.ts';
import type { LiveView } from '../db/admin.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { MonthlyPeriods } from './periods.ts';
import { RateLimiter } from '../limiter/token-bucket.ts';
import { Alerts } from '../notify/alerts.ts';
import { StorageBusy, type Storage } from '../storage/ports.ts';
import type { RecentUsage } from '../storage/records.ts';
import { Accounts, type AccountState } from './accounts.ts';
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
  readonly limiter = new RateLimiter();
  readonly periods = new MonthlyPeriods();
  private sweeper: NodeJS.Timeout | undefined;
  private pruner: NodeJS.Timeout | undefined;

  private readonly options: StorageLimits;

  constructor(readonly storage: Storage, config: Config, private readonly log: Logger, private readonly now: () => number, metrics?: Metrics) {
    const options = (this.options = config.storage);
    const warn = (msg: string, err: Error) => log.error(msg, { error: err.message });
    const debug = log.isLevelEnabled('debug');
    this.wallets = new Wallets(storage.ledger, {
      leaseMaxMicros: options.leaseMaxMicros, refillWaitMs: 5_000,
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
    this.accounts = new Accounts(storage.keys, config, this.periods, (s) => {
      if (s.wallet) this.wallets.balanceChanged(s.wallet);
    }, config.notifications && new Alerts(this.recorder, storage.ledger.money, now));
    storage.changes.subscribe((change) => this.accounts.changed(change));
    // A debit (a refund, a dispute) that finds the balance short takes back what our lease holds.
    storage.ledger.holder({
      holding: (accountId) => this.accounts.state(accountId)?.wallet?.available ?? 0,
      giveBack: (accountId, micros) => {
        const w = this.accounts.state(accountId)?.wallet;
        if (w) this.wallets.giveBack(w, micros);
      },
    });
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
    let deleted = 0;
    let wait = PRUNE_IDLE_MS;
    try {
      const n = this.storage.usage.prune(this.now() - this.options.retentionDays * 86_400_000, PRUNE_ROWS);
      if (n instanceof Promise) throw new Error('an asynchronous usage log needs an asynchronous prune');
      deleted = n;
      if (deleted === PRUNE_ROWS) wait = PRUNE_BUSY_MS;
    } catch (err) {
      if (err instanceof StorageBusy) wait = 1_000;
      else this.log.error('deleting old usage rows failed', { error: (err as Error).message });
    }
    this.pruner = setTimeout(() => this.prune(), wait).unref();
  }

  /** What Admin reads from this gateway's memory rather than the file (see db/admin.ts). */
  readonly live: LiveView = {
    balance: (accountId) => this.balance(accountId),
    quotaUsed: (accountId, period) => {
      const s = this.accounts.state(accountId);
      return s && s.period === period ? s.used : undefined;
    },
    pendingDays: (accountId) => this.recorder.pendingDays(accountId === '' ? undefined : this.accounts.state(accountId)),
  };

  /** What the customer has: the durable balance and what this gateway's lease holds unreserved. */
  balance(accountId: string): number {
    return this.storage.ledger.money.available(accountId);
  }

  /** The account's latest requests, newest first: those still queued, then the written chain. */
  recent(state: AccountState, limit: number): RecentUsage[] {
    this.recorder.commit();
    const queued = this.recorder.queued(state.accountId, limit);
    const recent = queued.map((r): RecentUsage => ({
      ts: r.ts, requestId: r.requestId, method: r.method, path: r.path, status: r.status, priceMicros: r.priceMicros,
      model: r.ai?.model ?? null, inputTokens: r.ai?.inputTokens ?? null, outputTokens: r.ai?.outputTokens ?? null, estimated: r.ai?.estimated ?? false,
    }));
    if (recent.length >= limit) return recent;
    // Every queued row of the account is in `queued`: the oldest one's previous row is written.
    const head = queued.length > 0 ? queued[queued.length - 1].prevId : state.lastUsageId;
    const written = this.storage.usage.chain(head, limit - recent.length);
    if (written instanceof Promise) throw new Error('an asynchronous usage log needs an asynchronous recent()');
    return [...recent, ...written];
  }

  /** Shutdown: every row written and counted, every lease of this node returned. */
  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.pruner) clearTimeout(this.pruner);
    if (!this.recorder.stop()) {
      this.log.error('stopping with usage rows the database would not take; they are lost', {});
      return;
    }
    try {
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
    for (const s of this.accounts.all()) {
      const w = s.wallet;
      if (!w || w.leaseId === undefined || w.reserved > 0 || w.pending || t - w.lastUsed < this.options.leaseIdleMs) continue;
      idle.push(s);
      if (idle.length === CLOSE_PER_SWEEP) break;
    }
    // A lease's spending must be in the file before it ends.
    if (idle.length > 0 && this.recorder.commitAccounts(idle)) {
      for (const s of idle) {
        const closed = this.wallets.close(s.wallet!);
        if (closed instanceof Promise) closed.catch((err: Error) => this.log.error('returning a lease failed', { error: err.message }));
      }
    }
    this.accounts.evictIdle(this.now());
  }
}
