// Stage 3: quota, then credits. A metered request counts against the quota of its period (the
// calendar month, or the subscription's billing period while one runs); beyond it the plan's
// overage policy decides: block (402), pay the route's price from prepaid credits, or pass and
// count one unit of metered overage for Stripe. All of it in memory: the counter in the account's
// state, the money in its wallet (a lease of its balance). Whatever is taken here is given back by
// meter() when the request turns out not billable.
import { intervalStart } from '../state/periods.ts';
import { GatewayError, type ErrorCode } from '../errors.ts';
import type { Accounts } from '../state/accounts.ts';
import type { Wallets } from '../state/wallet.ts';
import type { RequestContext } from './context.ts';

export function admit(ctx: RequestContext, accounts: Accounts, wallets: Wallets, now: number, meterIntervalMs: number): void | Promise<void> {
  const synced = accounts.quota(ctx.state!, now);
  if (synced instanceof Promise) return synced.then(() => admitCounted(ctx, accounts, wallets, now, meterIntervalMs));
  return admitCounted(ctx, accounts, wallets, now, meterIntervalMs);
}

function admitCounted(ctx: RequestContext, accounts: Accounts, wallets: Wallets, now: number, meterIntervalMs: number): void | Promise<void> {
  const state = ctx.state!;
  const quota = ctx.plan!.monthlyQuota;
  if (quota === null) return counted(ctx);
  // Several nodes: the quota is the nodes' together, handed out in slices.
  const slices = accounts.slices;
  if (!slices) return state.used < quota ? counted(ctx) : beyond(ctx, wallets, now, meterIntervalMs);
  const unit = slices.take(state, quota);
  if (unit instanceof Promise) return unit.then((u) => (u ? counted(ctx) : beyond(ctx, wallets, now, meterIntervalMs)));
  return unit ? counted(ctx) : beyond(ctx, wallets, now, meterIntervalMs);
}

/** A unit of the period's quota is the request's. */
function counted(ctx: RequestContext): void {
  const state = ctx.state!;
  state.used++;
  ctx.quotaPeriod = state.period;
  // quota.threshold is decided where the counter moves: one comparison unless a percentage is reached.
  const alerts = state.alerts;
  if (alerts !== undefined && state.used >= alerts.quotaAt) alerts.quotaReached();
}

/** Past the quota: the plan's overage policy decides. */
function beyond(ctx: RequestContext, wallets: Wallets, now: number, meterIntervalMs: number): void | Promise<void> {
  const plan = ctx.plan!;
  if (plan.overage === 'block') throw new GatewayError('QUOTA_EXCEEDED');
  if (plan.overage === 'stripe') {
    ctx.overageInterval = intervalStart(now, meterIntervalMs);
    return;
  }
  const price = ctx.route!.priceMicros;
  if (price > 0) return pay(ctx, wallets, price, 'INSUFFICIENT_CREDITS');
}

/**
 * Sets `micros` aside in the account's wallet, refilling its lease from the balance when it holds
 * too little (a promise then: the request waits for the refill, never for a lock); `code` when
 * the balance cannot pay.
 */
export function pay(ctx: RequestContext, wallets: Wallets, micros: number, code: ErrorCode, detail?: string): void | Promise<void> {
  const w = ctx.state!.money;
  w.lastUsed = performance.now();
  if (!wallets.spendable()) throw new GatewayError('STORAGE_BUSY', { retryAfterS: 1 });
  if (w.reserve(micros)) {
    ctx.reservedMicros = micros;
    ctx.wallet = w;
    wallets.maybeTopUp(w);
    return;
  }
  const refill = (): void | Promise<void> => {
    const refilled = wallets.refill(w, micros);
    return refilled instanceof Promise ? wallets.bounded(refilled).then(done) : done(refilled);
  };
  const done = (enough: boolean): void | Promise<void> => {
    if (enough && w.reserve(micros)) {
      ctx.reservedMicros = micros;
      ctx.wallet = w;
      return;
    }
    // Requests that waited for the same refill took what it brought first: refill again.
    if (enough) return refill();
    if (code === 'INSUFFICIENT_CREDITS') ctx.state!.alerts?.refused(micros); // balance.depleted
    throw new GatewayError(code, detail === undefined ? {} : { detail });
  };
  return refill();
}
