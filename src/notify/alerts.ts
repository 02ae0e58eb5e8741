// Alerts decided in memory, where the money and the counters change: balance.low where a request
// spends (meter()) or money moves outside requests (a grant, a payment, a refund: the change
// feed), balance.depleted where a request is refused for lack of credits, quota.threshold where
// the quota counter moves (admit()). Never by scanning tables.
//
// Each fires once per crossing and is re-armed when it no longer holds: balance.low when the
// balance is back at or above the threshold, balance.depleted when money comes in, the quota's
// percentages at each new quota period. The state (armed or not, the percentages fired) is
// written with the event that changes it, in the group commit of the request that decided it
// (Recorder.notice), and read back with the account's key: a restart fires nothing twice.
// Memory decides synchronously, so N requests at once across a threshold fire it once.
//
// With several nodes (PostgreSQL), each decides from its own view: the balance and the other
// nodes' leases as the database has them, and its own lease as its memory does. While an account
// with balance.low armed spends here, that view is read again every REFRESH_MS (the others spend
// too), and the commit fires an alert once across all nodes (alerts-once.ts).
import type { PlanAlerts } from '../config.ts';
import type { AccountState } from '../state/accounts.ts';
import type { AlertState, EventData, KeyLookup, MaybePromise, Notice, NotificationType } from '../storage/ports.ts';
import { PLAN_ALERTS } from './config-parse.ts';
import { eventId } from './events.ts';

export interface NoticeSink {
  notice(n: Notice): void;
}

export interface AlertsOptions {
  /** What the durable balance and the other nodes' leases of the account hold (this node's lease is in its memory). */
  held(accountId: string): MaybePromise<number>;
  /** Other nodes spend the same balances. */
  shared: boolean;
  onError(msg: string, err: Error): void;
}

/** How often an account spending here, with balance.low armed, reads what the other nodes hold; at most REFRESH_MAX a time (one query each). */
const REFRESH_MS = 1_000;
const REFRESH_MAX = 100;

/** What every account's alerts share: where their notices go, the balances and the clock. */
export class Alerts {
  /** Accounts that spent since the last refresh (several nodes only). */
  private readonly spending = new Set<AccountAlerts>();
  private refresh: NodeJS.Timeout | undefined;

  constructor(private readonly sink: NoticeSink, readonly options: AlertsOptions, readonly now: () => number) {}

  /** The alerts of an account being loaded into memory, squared with its balance. */
  load(account: AccountState, found: KeyLookup): AccountAlerts {
    const a = new AccountAlerts(this, account, found);
    a.reconcile(false);
    return a;
  }

  /** Queues the account's alert state, with the event that changed it if one fired. */
  keep(a: AccountAlerts, type?: NotificationType, data?: EventData): void {
    const accountId = a.account.accountId;
    const event = type === undefined ? undefined : { id: eventId(), type, accountId, createdAt: this.now(), data: data! };
    this.sink.notice({ accountId, alerts: a.snapshot(), event });
  }

  /** An account with balance.low armed spent here: with several nodes, its view is read again soon. */
  spent(a: AccountAlerts): void {
    if (!this.options.shared) return;
    this.spending.add(a);
    this.refresh ??= setTimeout(() => this.refreshSome(), REFRESH_MS).unref();
  }

  private refreshSome(): void {
    this.refresh = undefined;
    let n = 0;
    for (const x of this.spending) {
      if (n++ === REFRESH_MAX) break;
      this.spending.delete(x);
      x.balanceChanged();
    }
    if (this.spending.size > 0) this.refresh = setTimeout(() => this.refreshSome(), REFRESH_MS).unref();
  }

  stop(): void {
    clearTimeout(this.refresh);
    this.spending.clear();
  }
}

export class AccountAlerts {
  /** What the customer has, as this gateway knows it: the durable balance and its lease's money, reserved included. */
  balance: number;
  /** balance.low below this (0: never). */
  lowAt = 0;
  lowArmed: boolean;
  depletedArmed: boolean;
  /** The period whose quota percentages fired, and the highest that did. */
  quotaPeriod: string | null;
  quotaPercent: number;
  /** quota.threshold once the period's count reaches this (Infinity: none left). */
  quotaAt = Infinity;
  /** The account's own low-balance threshold (null: its plan's). */
  private own: number | null;
  private periodEnd: number | null;

  constructor(private readonly shared: Alerts, readonly account: AccountState, found: KeyLookup) {
    const stored = found.alerts;
    this.balance = found.balanceMicros;
    this.own = stored.lowBalanceMicros;
    this.periodEnd = stored.periodEnd;
    this.lowAt = this.threshold();
    // Nothing stored yet: armed if the balance is at or above the threshold (it has not fallen).
    this.lowArmed = stored.state?.lowArmed ?? this.balance >= this.lowAt;
    this.depletedArmed = stored.state?.depletedArmed ?? true;
    this.quotaPeriod = stored.state?.quotaPeriod ?? null;
    this.quotaPercent = stored.state?.quotaPercent ?? 0;
  }

  /** A request spent `micros` (meter()): balance.low when the balance falls below the threshold. */
  spend(micros: number): void {
    this.balance -= micros;
    if (!this.lowArmed) return;
    if (this.balance < this.lowAt) this.low();
    else this.shared.spent(this);
  }

  /** A request that needed `micros` was refused for lack of credits. */
  refused(micros: number): void {
    if (!this.depletedArmed) return;
    this.depletedArmed = false;
    this.shared.keep(this, 'balance.depleted', { accountId: this.account.accountId, balanceMicros: this.balance, requiredMicros: micros });
  }

  /** The quota counter reached quotaAt: each percentage reached and not fired this period fires. */
  quotaReached(): void {
    const s = this.account;
    const quota = s.plan.monthlyQuota!;
    const fired = this.quotaPeriod === s.period ? this.quotaPercent : 0;
    for (const p of this.plan().quotaPercent) {
      if (p <= fired || units(quota, p) > s.used) continue;
      this.quotaPeriod = s.period;
      this.quotaPercent = p;
      this.shared.keep(this, 'quota.threshold', {
        accountId: s.accountId, plan: s.plan.name, percent: p, used: s.used, limit: quota, period: s.period,
        periodEnd: this.quotaPeriodEnd(), overage: s.plan.overage,
      });
    }
    this.armQuota();
  }

  /** The account's quota period or plan changed: where its next percentage is. */
  armQuota(): void {
    const s = this.account;
    const quota = s.plan.monthlyQuota;
    const fired = this.quotaPeriod === s.period ? this.quotaPercent : 0;
    this.quotaAt = Infinity;
    if (quota === null || quota === 0 || s.period === '') return;
    for (const p of this.plan().quotaPercent) {
      if (p > fired) {
        this.quotaAt = units(quota, p);
        return;
      }
    }
  }

  /** Money moved outside this gateway's requests: the balance is read again (off the request path). */
  balanceChanged(tries = 3): void {
    const w = this.account.wallet;
    const moved = w && w.moving === 0 ? w.moved : -1;
    const held = this.shared.options.held(this.account.accountId);
    if (!(held instanceof Promise)) return this.heldNow(held);
    held.then((h) => {
      // The lease moved money while the balance was read: the reading may count it twice or not at all.
      const now = this.account.wallet;
      if ((now !== w || (w && (w.moving > 0 || w.moved !== moved))) && tries > 1) return this.balanceChanged(tries - 1);
      this.heldNow(h);
    }, (err: Error) => this.shared.options.onError('reading a balance for its alerts failed', err));
  }

  private heldNow(held: number): void {
    const w = this.account.wallet;
    const now = held + (w ? w.available + w.reserved : 0);
    const rose = now > this.balance;
    this.balance = now;
    const rearmed = rose && !this.depletedArmed;
    if (rearmed) this.depletedArmed = true;
    this.reconcile(rearmed);
  }

  /** The account was read again (its own threshold or plan may have changed). */
  reloaded(found: KeyLookup): void {
    this.own = found.alerts.lowBalanceMicros;
    this.periodEnd = found.alerts.periodEnd;
    const at = this.threshold();
    if (at !== this.lowAt) {
      // A new threshold: armed if the balance is at or above it; nothing has fallen below it yet.
      this.lowAt = at;
      this.lowArmed = this.balance >= at;
      this.shared.keep(this);
    }
    this.armQuota();
  }

  /** Re-arms balance.low when the balance is back, or fires it when the balance fell below outside a request. */
  reconcile(changed: boolean): void {
    if (this.balance >= this.lowAt) {
      if (!this.lowArmed) this.lowArmed = changed = true;
    } else if (this.lowArmed) return this.low(); // writes the state with its event
    if (changed) this.shared.keep(this);
  }

  snapshot(): AlertState {
    return { lowArmed: this.lowArmed, depletedArmed: this.depletedArmed, quotaPeriod: this.quotaPeriod, quotaPercent: this.quotaPercent };
  }

  private low(): void {
    this.lowArmed = false;
    this.shared.keep(this, 'balance.low', { accountId: this.account.accountId, balanceMicros: this.balance, thresholdMicros: this.lowAt });
  }

  private plan(): PlanAlerts {
    return this.account.plan.alerts ?? PLAN_ALERTS;
  }

  private threshold(): number {
    return this.own ?? this.plan().lowBalanceMicros;
  }

  /** The end of the quota period counted now: the subscription's billing period, else the calendar month (UTC). */
  private quotaPeriodEnd(): string | null {
    const start = this.account.record.periodStart;
    const now = this.shared.now();
    if (start !== null && start <= now) return this.periodEnd === null ? null : new Date(this.periodEnd).toISOString();
    const d = new Date(now);
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString();
  }
}

/** The count at which `percent` of `quota` is reached (at least 1). */
function units(quota: number, percent: number): number {
  return Math.max(1, Math.ceil((quota * percent) / 100));
}
