// /admin/v1/accounts/{id}/credits and its ledger: grant credits, deduct them (never below zero:
// 409 when the account cannot pay it all, and nothing is taken), each with a reason on its
// ledger row; the ledger newest first, a page at a time.
import { ok, type AdminContext, type AdminRoute } from './http.ts';
import { body, integer, invalid, limit, query, text } from './input.ts';

function amount({ body: b }: AdminContext) {
  const o = body(b, ['amountMicros', 'reason']);
  return { amountMicros: integer(o, 'amountMicros', { min: 1, required: true })!, reason: text(o, 'reason', { required: true })! };
}

export const creditRoutes: AdminRoute[] = [
  {
    method: 'POST', path: '/admin/v1/accounts/{id}/credits/grant',
    handle: (ctx) => ok(ctx.ops.grantCredits(ctx.params.id, amount(ctx))),
  },
  {
    method: 'POST', path: '/admin/v1/accounts/{id}/credits/deduct',
    handle: (ctx) => ok(ctx.ops.deductCredits(ctx.params.id, amount(ctx))),
  },
  {
    method: 'GET', path: '/admin/v1/accounts/{id}/ledger',
    handle: ({ ops, params, query: q }) => {
      const p = query(q, ['limit', 'before']);
      if (p.before !== undefined && !/^[1-9]\d{0,15}$/.test(p.before)) throw invalid(`before: a ledger entry id, got "${p.before}"`);
      return ok(ops.ledger(params.id, { limit: limit(p.limit, 20), before: p.before === undefined ? undefined : Number(p.before) }));
    },
  },
];
