// /admin/v1/accounts/{id}/usage: the quota period the gateway counts the account against now (or
// a calendar month) with its totals, and a per-day series from the daily rollups.
import { ok, type AdminRoute } from './http.ts';
import { invalid, query } from './input.ts';

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

export const usageRoutes: AdminRoute[] = [
  {
    method: 'GET', path: '/admin/v1/accounts/{id}/usage',
    handle: ({ ops, params, query: q }) => {
      const { month } = query(q, ['month']);
      if (month !== undefined && !MONTH.test(month)) throw invalid(`month: not a month (YYYY-MM): "${month}"`);
      return ok(ops.usage(params.id, { month }));
    },
  },
  {
    method: 'GET', path: '/admin/v1/accounts/{id}/usage/daily',
    handle: ({ ops, params, query: q }) => {
      const { from, to } = query(q, ['from', 'to']);
      return ok(ops.usageByDay(params.id, { from, to }));
    },
  },
];
