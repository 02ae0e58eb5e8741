// /admin/v1/notifications: deliveries of the events of src/notify/ (all, only those given up, one
// account's), newest first, and a resend of one; /admin/v1/accounts/{id}/alerts: the account's
// own balance.low threshold, over its plan's.
import { ok, type AdminRoute } from './http.ts';
import { body, integer, invalid, limit, oneOf, query } from './input.ts';

export const notificationRoutes: AdminRoute[] = [
  {
    method: 'GET', path: '/admin/v1/notifications',
    handle: ({ ops, query: q }) => {
      const p = query(q, ['failed', 'account', 'limit', 'after']);
      return ok(ops.deliveries({ failed: oneOf(p.failed, 'failed', ['true', 'false']) === 'true', account: p.account, limit: limit(p.limit), after: p.after }));
    },
  },
  {
    method: 'POST', path: '/admin/v1/notifications/{id}/resend',
    handle: ({ ops, params, body: b }) => {
      body(b ?? {}, []);
      if (!/^[1-9]\d{0,15}$/.test(params.id)) throw invalid(`not a delivery id: "${params.id}"`);
      return ok(ops.resendDelivery(Number(params.id)));
    },
  },
  {
    method: 'GET', path: '/admin/v1/accounts/{id}/alerts',
    handle: ({ ops, params }) => ok(ops.alerts(params.id)),
  },
  {
    method: 'PATCH', path: '/admin/v1/accounts/{id}/alerts',
    handle: ({ ops, params, body: b }) => {
      const o = body(b, ['lowBalanceMicros']);
      if (!('lowBalanceMicros' in o)) throw invalid('lowBalanceMicros: required (a whole number of micro-dollars, 0 for never, or null for the plan\'s)');
      return ok(ops.setAlerts(params.id, { lowBalanceMicros: o.lowBalanceMicros === null ? null : integer(o, 'lowBalanceMicros', { required: true })! }));
    },
  },
];
