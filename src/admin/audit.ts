// /admin/v1/audit: every administrative change, newest first, a page at a time (one account's
// with ?account=).
import { ok, type AdminRoute } from './http.ts';
import { limit, query } from './input.ts';

export const auditRoutes: AdminRoute[] = [
  {
    method: 'GET', path: '/admin/v1/audit',
    handle: ({ ops, query: q }) => {
      const p = query(q, ['account', 'limit', 'after']);
      return ok(ops.audit({ account: p.account, limit: limit(p.limit), after: p.after }));
    },
  },
];
