// /admin/v1/webhooks: the Stripe events received, newest first (all, or the failed ones), and a
// replay of one through the webhook's own path (applied exactly once, whoever asks).
import { ok, type AdminRoute } from './http.ts';
import { body, limit, oneOf, query } from './input.ts';

export const webhookRoutes: AdminRoute[] = [
  {
    method: 'GET', path: '/admin/v1/webhooks',
    handle: ({ ops, query: q }) => {
      const p = query(q, ['failed', 'limit', 'after']);
      return ok(ops.webhookEvents({ failed: oneOf(p.failed, 'failed', ['true', 'false']) === 'true', limit: limit(p.limit), after: p.after }));
    },
  },
  {
    method: 'POST', path: '/admin/v1/webhooks/{id}/replay',
    atomic: false,
    handle: async ({ ops, params, body: b }) => (body(b ?? {}, []), ok(await ops.replayWebhook(params.id))),
  },
];
