// Stage 5: settle and record. What admit() took stays spent only if the request is billable: the
// upstream answered below 500. Upstream 5xx, unreachable, timeouts and gateway errors give it
// back (the quota unit, the money set aside). AI requests settle their reservation to the tokens
// used. All of it in memory; every proxied request then gets one usage row, which names the
// lease its price came from: the row is the durable record of what was spent.
import type { Metrics } from '../metrics.ts';
import type { Settlement } from '../meters/token-meter.ts';
import type { Recorder } from '../state/recorder.ts';
import type { UsageRecord } from '../storage/records.ts';
import type { RequestContext } from './context.ts';

/** Settles and records the request; a promise when an estimate's tokens are counted off the event loop. */
export function meter(ctx: RequestContext, recorder: Recorder, metrics: Metrics, now: number): void | Promise<void> {
  const s = ctx.ai?.settle();
  if (s instanceof Promise) return s.then((settled) => record(ctx, recorder, metrics, now, settled));
  record(ctx, recorder, metrics, now, s);
}

function record(ctx: RequestContext, recorder: Recorder, metrics: Metrics, now: number, s: Settlement | undefined): void {
  const state = ctx.state;
  const ai = ctx.ai;
  let aiUsage: UsageRecord['ai'];
  let spent = 0;
  if (ai && s) {
    // Tokens: keep what the usage cost out of the reservation and give back the rest, or take
    // what it cost beyond it, as far as the lease goes.
    if (ctx.reservedMicros > 0 || s.costMicros > 0) spent = (ctx.wallet ?? state!.money).settle(ctx.reservedMicros, s.costMicros);
    ctx.responseBytes = ai.streamedBytes;
    ctx.billable = s.costMicros > 0 || (ai.succeeded && !ctx.clientGone);
    const u = s.usage;
    metrics.tokens(ctx.route!.meter!, ai.call.model, u);
    aiUsage = {
      model: ai.call.model, inputTokens: u.input + u.cachedInput + u.cacheWrite5m + u.cacheWrite1h,
      cachedTokens: u.cachedInput, cacheWriteTokens: u.cacheWrite5m + u.cacheWrite1h, outputTokens: u.output,
      estimated: s.estimated,
    };
  } else if (state) {
    if (ctx.reservedMicros > 0) spent = ctx.wallet!.settle(ctx.reservedMicros, ctx.billable ? ctx.reservedMicros : 0);
    if (!ctx.billable) {
      if (ctx.quotaPeriod !== undefined) state.unuse(ctx.quotaPeriod);
      ctx.quotaPeriod = undefined;
      ctx.overageInterval = undefined;
    }
  }
  ctx.chargedMicros = spent;
  metrics.charged(ctx.route!.path, spent);
  // balance.low is decided here, where the money is spent (an integer comparison unless it
  // crosses), before the row is queued: the row and the event go in the same commit.
  if (spent > 0 && state!.alerts !== undefined) state!.alerts.spend(spent);
  recorder.append({
    id: 0,
    prevId: 0,
    ts: now,
    requestId: ctx.requestId,
    accountId: state?.accountId ?? null,
    keyId: ctx.key?.id ?? null,
    route: ctx.route!.path,
    method: ctx.req.method!,
    path: ctx.req.url!,
    status: ctx.status,
    requestBytes: ctx.requestBytes,
    responseBytes: ctx.responseBytes,
    latencyUs: Math.round((performance.now() - ctx.startedAt) * 1000),
    priceMicros: spent,
    billable: ctx.billable,
    quotaPeriod: ctx.quotaPeriod,
    leaseId: spent > 0 ? (ctx.wallet ?? state!.wallet!).leaseId : undefined,
    overageMeter: ctx.overageInterval === undefined ? undefined : ctx.plan!.stripeMeter,
    overageInterval: ctx.overageInterval,
    ai: aiUsage,
  }, state, ctx.socket);
}
