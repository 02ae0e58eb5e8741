// Stage 5: settle and record. What admit() reserved stays spent only if the request is billable:
// the upstream answered below 500. Upstream 5xx, unreachable, timeouts and gateway errors are
// given back (quota and credits). AI requests settle their reservation to the tokens used.
// Every proxied request gets one usage row.
import type { Socket } from 'node:net';
import type { Store, UsageRecord } from '../db/store.ts';
import type { RequestContext } from './context.ts';

const LAST_BATCH = Symbol('tollgate.lastBatch');
type TrackedSocket = Socket & { [LAST_BATCH]?: number };

/**
 * Group commit bounded by connections. Usage rows are written in batches, yet a kill -9 may lose
 * at most one answered request per open connection: before a connection gets the first byte of
 * another response, the batch holding its previous row is written. Meanwhile the other
 * connections' rows join that batch, so under load one commit carries about one row per
 * connection rather than one per request.
 */
export function commitPrevious(socket: Socket, store: Store): void {
  const batch = (socket as TrackedSocket)[LAST_BATCH];
  if (batch !== undefined) store.flushBatch(batch);
}

export function meter(ctx: RequestContext, store: Store, now: number): void {
  const account = ctx.account;
  const ai = ctx.ai;
  let aiUsage: UsageRecord['ai'];
  if (ai) {
    // Tokens: keep what the usage cost out of the reservation and give back the rest, or take
    // what it cost beyond (as much as the balance holds). Every reservation gets its settle row,
    // even of 0, so one without is known to have died with the process (releaseReservations).
    const s = ai.settle();
    let charged = s.costMicros;
    if (ai.reservedMicros > 0 && s.costMicros <= ai.reservedMicros) {
      store.credit(account!.id, ai.reservedMicros - s.costMicros, 'settle', ctx.requestId);
    } else if (s.costMicros > ai.reservedMicros) {
      const extra = Math.min(s.costMicros - ai.reservedMicros, store.balance(account!.id));
      if (extra > 0 && store.debit(account!.id, extra, 'settle', ctx.requestId)) charged = ai.reservedMicros + extra;
      else {
        store.credit(account!.id, 0, 'settle', ctx.requestId);
        charged = ai.reservedMicros;
      }
    }
    ctx.chargedMicros = charged;
    ctx.responseBytes = ai.streamedBytes;
    ctx.billable = s.costMicros > 0 || (ai.succeeded && !ctx.clientGone);
    const u = s.usage;
    aiUsage = {
      model: ai.call.model, inputTokens: u.input + u.cachedInput + u.cacheWrite5m + u.cacheWrite1h,
      cachedTokens: u.cachedInput, cacheWriteTokens: u.cacheWrite5m + u.cacheWrite1h, outputTokens: u.output,
      estimated: s.estimated,
    };
  } else if (!ctx.billable && account) {
    if (ctx.quotaPeriod !== undefined) store.returnQuota(account.id, ctx.quotaPeriod);
    if (ctx.chargedMicros > 0) store.credit(account.id, ctx.chargedMicros, 'refund', ctx.requestId);
    if (ctx.overageInterval !== undefined) store.addOverage(account.id, ctx.plan!.stripeMeter!, ctx.overageInterval, -1);
    ctx.quotaPeriod = undefined;
    ctx.chargedMicros = 0;
  }
  (ctx.socket as TrackedSocket)[LAST_BATCH] = store.appendUsage({
    ts: now,
    requestId: ctx.requestId,
    accountId: account?.id ?? null,
    keyId: ctx.key?.id ?? null,
    route: ctx.route!.path,
    method: ctx.req.method!,
    path: ctx.req.url!,
    status: ctx.status,
    requestBytes: ctx.requestBytes,
    responseBytes: ctx.responseBytes,
    latencyUs: Math.round((performance.now() - ctx.startedAt) * 1000),
    priceMicros: ctx.chargedMicros,
    billable: ctx.billable,
    ai: aiUsage,
  });
}
