// Keys and accounts in this gateway's memory: what authenticates a request, rate-limits it,
// counts its quota and pays for it, without touching the database. A key is read from storage
// the first time it is seen; after that its entry answers until a change (a revocation, a plan
// change, credits added — from this process at once, from another within 200 ms) says otherwise.
// An account's counters and money live in one AccountState, shared by all its keys, kept while
// it is in use; with notifications configured, so do its alerts (notify/alerts.ts).
import type { Config, Plan } from '../config.ts';
import type { Limits } from '../limiter/token-bucket.ts';
import type { AccountAlerts, Alerts } from '../notify/alerts.ts';
import { quotaPeriod, type MonthlyPeriods } from './periods.ts';
import type { Change, KeyDirectory, KeyLookup, MaybePromise } from '../storage/ports.ts';
import type { Pending } from './pending.ts';
import type { AccountRecord, KeyRecord } from '../storage/records.ts';
import type { Counted } from './recorder.ts';
import type { QuotaSlices } from './quota-slices.ts';
import { Wallet } from './wallet.ts';

export class AccountState implements Counted {
  buckets: Limits | undefined = undefined;
  /** The quota period counted in memory, and its units used (requests in flight included). */
  period = '';
  used = 0;
  wallet: Wallet | undefined = undefined;
  tally: Pending | undefined = undefined;
  writing: Pending | undefined = undefined;
  dirtySince = 0;
  /** Requests admitted and not yet metered. */
  inFlight = 0;
  /** When a request last authenticated as the account (ms since the epoch). */
  lastUsed = 0;
  /** A change named the account: its record is read again before its next request. */
  stale = false;
  /** What its notifications decide from (undefined: none are configured). */
  alerts: AccountAlerts | undefined = undefined;
  /** With several nodes: this node's slice of the period's quota (state/quota-slices.ts). */
  quotaHeld = 0;
  quotaHeldPeriod = '';
  /** Until then (performance.now()) the period's quota is handed out in full, all nodes counted. */
  quotaOutUntil = 0;
  quotaPending: Promise<void> | undefined = undefined;

  constructor(public record: AccountRecord, public plan: Plan, public lastUsageId: number) {}

  get accountId(): string {
    return this.record.id;
  }

  /** A unit of `period`'s quota a request took and did not use (it was not billable): the next request may. */
  unuse(period: string): void {
    if (period !== this.period) return;
    this.used--;
    if (this.quotaHeldPeriod === period) this.quotaHeld++;
  }

  get money(): Wallet {
    return (this.wallet ??= new Wallet(this.record.id));
  }
}

export interface KeyEntry {
  key: KeyRecord;
  state: AccountState;
  /** When the key last authenticated a request (ms; 0: not since it was loaded). Kept in memory only. */
  lastUsed: number;
}

/** Past this many, unknown keys are forgotten: a flood of random keys cannot grow memory. */
const MAX_UNKNOWN = 50_000;
/** An account untouched this long, with nothing in flight or unwritten, leaves memory. */
const IDLE_MS = 10 * 60_000;

export class Accounts {
  private readonly keys = new Map<string, KeyEntry>();
  private readonly unknown = new Set<string>();
  private readonly states = new Map<string, AccountState>();

  constructor(
    private readonly directory: KeyDirectory,
    private readonly config: Config,
    private readonly periods: MonthlyPeriods,
    /** Told when credits were added to an account in memory (its lease takes them). */
    private readonly onBalance: (state: AccountState) => void,
    /** Notifications configured: every account in memory gets its alerts. */
    private readonly alerts?: Alerts,
    /** Several nodes share the quotas: the slices this node holds. */
    readonly slices?: QuotaSlices,
  ) {}

  /** The key with this hash and its account; null when unknown; a promise when storage must be asked. */
  lookup(hash: string): MaybePromise<KeyEntry | null> {
    const entry = this.keys.get(hash);
    if (entry !== undefined && !entry.state.stale) return entry;
    if (entry === undefined && this.unknown.has(hash)) return null;
    const found = this.directory.findKey(hash);
    return found instanceof Promise ? found.then((f) => this.load(hash, f)) : this.load(hash, found);
  }

  /** Whether the key with this hash is in memory (issued: a request with it needs no lookup). */
  has(hash: string): boolean {
    return this.keys.has(hash);
  }

  /** When the key with this hash last authenticated a request, if it is in memory and was used. */
  keyLastUsed(hash: string): number | undefined {
    const used = this.keys.get(hash)?.lastUsed;
    return used ? used : undefined;
  }

  /** The account's state when it is in memory. */
  state(accountId: string): AccountState | undefined {
    return this.states.get(accountId);
  }

  all(): IterableIterator<AccountState> {
    return this.states.values();
  }

  /** The account's quota units used in its current period, counted from storage on a new period. */
  quota(state: AccountState, now: number): MaybePromise<AccountState> {
    const period = quotaPeriod(state.record, now, this.periods);
    if (period === state.period) return state;
    const used = this.directory.quotaUsed(state.accountId, period);
    const set = (n: number) => {
      // Another request may have switched the period meanwhile: count once.
      if (state.period !== period) {
        state.period = period;
        state.used = n;
        state.alerts?.armQuota();
      }
      return state;
    };
    return used instanceof Promise ? used.then(set) : set(used);
  }

  changed(change: Change): void {
    switch (change.kind) {
      case 'key':
        this.keys.delete(change.hash);
        this.unknown.delete(change.hash);
        return;
      case 'account': {
        const s = this.states.get(change.id);
        if (s) s.stale = true;
        return;
      }
      case 'balance': {
        const s = this.states.get(change.id);
        if (s) {
          this.onBalance(s);
          s.alerts?.balanceChanged();
        }
        return;
      }
      case 'all':
        this.unknown.clear();
        for (const s of this.states.values()) {
          s.stale = true;
          this.onBalance(s);
          s.alerts?.balanceChanged();
        }
    }
  }

  /** Forgets accounts idle for IDLE_MS whose counters are written and whose lease is closed. */
  evictIdle(now: number): void {
    const evicted = new Set<AccountState>();
    for (const s of this.states.values()) {
      if (s.inFlight > 0 || s.tally !== undefined || s.wallet?.leaseId !== undefined || s.quotaHeld > 0 || now - s.lastUsed < IDLE_MS) continue;
      evicted.add(s);
      this.states.delete(s.accountId);
    }
    if (evicted.size === 0) return;
    for (const [hash, e] of this.keys) if (evicted.has(e.state)) this.keys.delete(hash);
  }

  private load(hash: string, found: KeyLookup | undefined): KeyEntry | null {
    if (!found) {
      this.keys.delete(hash);
      if (this.unknown.size >= MAX_UNKNOWN) this.unknown.clear();
      this.unknown.add(hash);
      return null;
    }
    const plan = this.plan(found.account.plan);
    let state = this.states.get(found.account.id);
    if (state) {
      state.record = found.account;
      state.plan = plan;
      state.quotaOutUntil = 0; // a larger quota may have come with the change
      state.stale = false;
      state.alerts?.reloaded(found);
    } else {
      state = new AccountState(found.account, plan, found.lastUsageId);
      if (this.alerts) state.alerts = this.alerts.load(state, found);
      this.states.set(found.account.id, state);
    }
    const entry: KeyEntry = { key: found.key, state, lastUsed: 0 };
    this.keys.set(hash, entry);
    return entry;
  }

  /** A plan removed from the config falls back to the default rather than locking the account out. */
  private plan(name: string): Plan {
    return this.config.plans[name] ?? this.config.plans[this.config.defaultPlan];
  }
}
