// /admin/v1/accounts: create, list (oldest first, in pages, by plan, status or email), get, and
// change name, email, plan or standing (a suspension by hand records the reason 'operator').
import type { AccountStatus } from '../storage/records.ts';
import { created, ok, type AdminRoute } from './http.ts';
import { body, invalid, isEmail, limit, nullableText, oneOf, query, text } from './input.ts';

const STATUSES: readonly AccountStatus[] = ['active', 'suspended'];

function email(o: Record<string, unknown>, required: boolean): string | undefined {
  const e = text(o, 'email', { required, max: 320 });
  if (e !== undefined && !isEmail(e)) throw invalid(`email: not an email address: "${e}"`);
  return e;
}

export const accountRoutes: AdminRoute[] = [
  {
    method: 'POST', path: '/admin/v1/accounts',
    handle: ({ ops, body: b }) => {
      const o = body(b, ['email', 'name', 'plan']);
      return created(ops.createAccount({ email: email(o, true)!, name: nullableText(o, 'name'), plan: text(o, 'plan') }));
    },
  },
  {
    method: 'GET', path: '/admin/v1/accounts',
    handle: ({ ops, query: q }) => {
      const p = query(q, ['limit', 'after', 'plan', 'status', 'email']);
      return ok(ops.listAccounts({ limit: limit(p.limit), after: p.after, plan: p.plan, status: oneOf(p.status, 'status', STATUSES), email: p.email }));
    },
  },
  {
    method: 'GET', path: '/admin/v1/accounts/{id}',
    handle: ({ ops, params, query: q }) => (query(q, []), ok(ops.account(params.id))),
  },
  {
    method: 'PATCH', path: '/admin/v1/accounts/{id}',
    handle: ({ ops, params, body: b }) => {
      const o = body(b, ['name', 'email', 'plan', 'status']);
      const status = oneOf(text(o, 'status'), 'status', STATUSES);
      return ok(ops.updateAccount(params.id, { name: nullableText(o, 'name'), email: email(o, false), plan: text(o, 'plan'), status }));
    },
  },
];
