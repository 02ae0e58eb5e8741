// Requests: an account's latest (from the gateway's memory when it holds the account, else the
// chain of its usage rows), and one request by the id a customer quotes (X-Request-Id), found by
// a bounded scan of the usage rows: the latest million, or those around ?around=<its time>.
import { ok, type AdminRoute } from './http.ts';
import { limit, query } from './input.ts';

export const requestRoutes: AdminRoute[] = [
  {
    method: 'GET', path: '/admin/v1/accounts/{id}/requests',
    handle: ({ ops, params, query: q }) => ok(ops.recentRequests(params.id, limit(query(q, ['limit']).limit, 20))),
  },
  {
    method: 'GET', path: '/admin/v1/requests/{requestId}',
    handle: ({ ops, params, query: q }) => ok(ops.findRequest(params.requestId, query(q, ['around']).around)),
  },
];
