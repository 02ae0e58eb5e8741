// Quota periods: the calendar month (UTC), or a subscription's billing period while one runs.
import type { AccountRecord } from '../storage/records.ts';

/**
 * The subscription's billing period while it runs (and after its end until the next one arrives,
 * so a late renewal gives no fresh quota), else the calendar month.
 */
export function quotaPeriod(account: AccountRecord, now: number, periods: MonthlyPeriods): string {
  const inSubscription = account.periodKey !== null && account.periodStart! <= now;
  return inSubscription ? account.periodKey! : periods.at(now);
}

/** Calendar months in UTC, as "2026-11". The current one is cached until it ends. */
export class MonthlyPeriods {
  private name = '';
  private endsAt = -Infinity;
  private startsAt = Infinity;

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
