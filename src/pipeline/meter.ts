// Stage 5: settle and record. What admit() reserved stays spent only if the request is billable:
// the upstream answered below 500. Upstream 5xx, unreachable, timeouts and gateway errors are
// given back (quota and credits). Every proxied request gets one usage row.
import type { Store } from '../db/store.ts';
import type { RequestContext } from './context.ts';

export function meter(ctx: RequestContext, store: Store, now: number): void {
  const account = ctx.account;
  if (!ctx.billable && account) {
    if (ctx.quotaPeriod !== undefined) store.returnQuota(account.id, ctx.quotaPeriod);
    if (ctx.chargedMicros > 0) store.credit(account.id, ctx.chargedMicros, 'refund', ctx.requestId);
    ctx.quotaPeriod = undefined;
    ctx.chargedMicros = 0;
  }
  store.appendUsage({
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
  });
}
