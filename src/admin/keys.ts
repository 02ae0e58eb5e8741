// /admin/v1/keys: create (the key is in this answer only), list (all or one account's, with the
// time each key last authenticated a request, as far as this gateway's memory knows), get, revoke
// and rotate with a grace period for the old key.
import { created, ok, type AdminRoute } from './http.ts';
import { body, integer, limit, nullableText, query, text } from './input.ts';

const DEFAULT_GRACE_S = 86_400;

export const keyRoutes: AdminRoute[] = [
  {
    method: 'POST', path: '/admin/v1/keys',
    handle: ({ ops, body: b }) => {
      const o = body(b, ['accountId', 'name', 'expiresAt']);
      return created(ops.createKey({ accountId: text(o, 'accountId', { required: true })!, name: nullableText(o, 'name'), expiresAt: nullableText(o, 'expiresAt', 40) }));
    },
  },
  {
    method: 'GET', path: '/admin/v1/keys',
    handle: ({ ops, query: q }) => {
      const p = query(q, ['account', 'limit', 'after']);
      return ok(ops.listKeys({ account: p.account, limit: limit(p.limit), after: p.after }));
    },
  },
  {
    method: 'GET', path: '/admin/v1/keys/{id}',
    handle: ({ ops, params, query: q }) => (query(q, []), ok(ops.key(params.id))),
  },
  {
    method: 'POST', path: '/admin/v1/keys/{id}/revoke',
    handle: ({ ops, params, body: b }) => (body(b ?? {}, []), ok(ops.revokeKey(params.id))),
  },
  {
    method: 'POST', path: '/admin/v1/keys/{id}/rotate',
    handle: ({ ops, params, body: b }) => {
      const o = body(b ?? {}, ['graceSeconds']);
      return ok(ops.rotateKey(params.id, integer(o, 'graceSeconds') ?? DEFAULT_GRACE_S));
    },
  },
];
