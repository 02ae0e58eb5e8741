// Quota periods: the calendar month (UTC), or a subscription's billing period while one runs.
import type { AccountRecord } from '../storage/records.ts';

/**
 * The subscription's billing period while it runs (and after its end until the next one arrives,
 * so a late renewal gives no fresh quota), else the calendar month.
 */
export function quotaPeriod(account: AccountRecord, now: number, periods: MonthlyPeriods): string {
  const start = account.periodStart;
  return start !== null && start <= now ? periods.subscription(start) : periods.at(now);
}

/** The quota period key of a subscription's billing period starting at `start`. */
export function subscriptionPeriodKey(start: number): string {
  return `sub:${new Date(start).toISOString()}`;
}

/** Calendar months in UTC, as "2026-11". The current one is cached until it ends. */
export class MonthlyPeriods {
  private name = '';
  private endsAt = -Infinity;
  private startsAt = Infinity;

  private readonly subscriptions = new Map<number, string>();

  /** subscriptionPeriodKey, remembered: the request path asks for it on every metered request. */
  subscription(start: number): string {
    let key = this.subscriptions.get(start);
    if (key === undefined) {
      if (this.subscriptions.size >= 10_000) this.subscriptions.clear();
      this.subscriptions.set(start, (key = subscriptionPeriodKey(start)));
    }
    return key;
  }

  at(now: number): string {
    if (now >= this.endsAt || now < this.startsAt) {
      const d = new Date(now);
      const y = d.getUTCFullYear();
      const m = d.getUTCMonth();
      this.startsAt = Date.UTC(y, m, 1);
      this.endsAt = Date.UTC(y, m + 1, 1);
      this.name = `${y}-${String(m + 1).padStart(2, '0')}`;
    }
    return this.name;
  }
}

/** The start of the metered-overage interval `t` falls in (intervals are multiples of their length). */
export function intervalStart(t: number, intervalMs: number): number {
  return t - (t % intervalMs);
}
