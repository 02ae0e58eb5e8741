// Stage 3: quota, then credits. A metered request counts against the quota of its period (the
// calendar month, or the subscription's billing period while one runs); beyond it the plan's
// overage policy decides: block (402), pay the route's price from prepaid credits, or pass and
// count one unit of metered overage for Stripe. Whatever is taken here is given back by
// meter() when the request turns out not billable.
import type { AccountRecord, Store } from '../db/store.ts';
import { intervalStart } from '../billing/meter-reporter.ts';
import { GatewayError } from '../errors.ts';
import type { RequestContext } from './context.ts';

export function admit(ctx: RequestContext, store: Store, now: number, periods: MonthlyPeriods, meterIntervalMs: number): void {
  const account = ctx.account!;
  const plan = ctx.plan!;
  const period = quotaPeriod(account, now, periods);
  if (store.takeQuota(account.id, period, plan.monthlyQuota)) {
    ctx.quotaPeriod = period;
    return;
  }
  if (plan.overage === 'block') throw new GatewayError('QUOTA_EXCEEDED');
  if (plan.overage === 'stripe') {
    ctx.overageInterval = intervalStart(now, meterIntervalMs);
    store.addOverage(account.id, plan.stripeMeter!, ctx.overageInterval, 1);
    return;
  }
  const price = ctx.route!.priceMicros;
  if (!store.debit(account.id, price, 'request', ctx.requestId)) throw new GatewayError('INSUFFICIENT_CREDITS');
  ctx.chargedMicros = price;
}

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
