// The OpenAPI document at /admin/v1/openapi.json matches what is served: every route the router
// serves is documented (method and path) and every documented operation is served; each one,
// called, answers what its schema says (test/admin-client.ts validates every answer of every
// admin test against the document; here each operation is called at least once with success).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExtraRoute } from '../src/admin/http.ts';
import { metricsRoute } from '../src/admin/metrics.ts';
import { openapiDocument } from '../src/admin/openapi.ts';
import { adminRoutes, OPENAPI_PATH } from '../src/admin/server.ts';
import type { AccountDoc, NewKeyDoc } from '../src/admin/shapes.ts';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { ADMIN_TOKEN, adminApi, documentProblems, startAdminGateway, type AdminGateway } from './admin-client.ts';
import { bearer, fetchText, startUpstream, tempDir, type Upstream } from './helpers.ts';

type Doc = { openapi: string; paths: Record<string, Record<string, { operationId: string; parameters?: { name: string; in: string }[]; responses: Record<string, unknown> }>> };
const METHODS = ['get', 'post', 'patch', 'put', 'delete'];

function operations(doc: Doc): string[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`)).sort();
}

describe('the admin API\'s OpenAPI document', () => {
  const doc = openapiDocument() as Doc;

  it('documents every route the router serves, and the router serves every documented operation', () => {
    const served = adminRoutes().map((r) => `${r.method} ${r.path}`).sort();
    expect(operations(doc)).toEqual(served);
  });

  it('is OpenAPI 3.1 with unique operation ids, each path parameter declared, and a 401 on every operation', () => {
    expect(doc.openapi).toBe('3.1.0');
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId));
    expect(new Set(ids).size).toBe(ids.length);
    for (const [path, ops] of Object.entries(doc.paths)) {
      const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(ops)) {
        expect((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name), `${method} ${path}`).toEqual(params);
        expect(op.responses['401'], `${method} ${path}`).toBeDefined();
      }
    }
    // Every $ref resolves.
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)].map((m) => m[1]);
    const schemas = (doc as unknown as { components: { schemas: Record<string, unknown> } }).components.schemas;
    for (const r of refs) expect(schemas[r], r).toBeDefined();
  });

  it('flags an answer that does not match (the check the admin tests rely on)', () => {
    expect(documentProblems('GET', '/admin/v1/accounts/acct_x', 200, 'application/json', { id: 'acct_x' })).not.toEqual([]);
    expect(documentProblems('GET', '/admin/v1/accounts/acct_x', 418, 'application/json', {})).toEqual(['GET /admin/v1/accounts/{id}: status 418 is not documented']);
    expect(documentProblems('POST', '/admin/v1/accounts', 201, 'text/plain', 'hi')).toHaveLength(1);
  });
});

describe('every documented operation, called, answers its schema', () => {
  let up: Upstream;
  let gw: AdminGateway;
  beforeAll(async () => {
    up = await startUpstream();
    gw = await startAdminGateway({ file: { routes: [{ path: '/api/', upstream: up.url }] } });
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  it('with success, one call each', async () => {
    const { api } = gw;
    const called = new Set<string>();
    const ok = async (method: string, template: string, path: string, body?: unknown) => {
      const res = await api.call<Record<string, unknown>>(method, path, { body });
      expect(res.status, `${method} ${path}: ${res.text}`).toBeLessThan(300);
      called.add(`${method} ${template}`);
      return res.body;
    };
    const account = await ok('POST', '/admin/v1/accounts', '/admin/v1/accounts', { email: 'every@example.com' }) as unknown as AccountDoc;
    const a = account.id;
    const key = await ok('POST', '/admin/v1/keys', '/admin/v1/keys', { accountId: a, name: 'k' }) as unknown as NewKeyDoc;
    const res = await fetchText(`${gw.url}/api/x`, { headers: bearer(key.key) });
    const requestId = res.headers.get('x-request-id')!;
    gw.storage.events.recordFailure({ source: 'stripe', id: 'evt_every', type: 'customer.created',
      payload: JSON.stringify({ id: 'evt_every', object: 'event', type: 'customer.created', created: 1, data: { object: { id: 'cus_x', object: 'customer' } } }) }, 'test');

    await ok('GET', '/admin/v1/accounts', '/admin/v1/accounts');
    await ok('GET', '/admin/v1/accounts/{id}', `/admin/v1/accounts/${a}`);
    await ok('PATCH', '/admin/v1/accounts/{id}', `/admin/v1/accounts/${a}`, { name: 'Every' });
    await ok('POST', '/admin/v1/accounts/{id}/credits/grant', `/admin/v1/accounts/${a}/credits/grant`, { amountMicros: 10, reason: 'r' });
    await ok('POST', '/admin/v1/accounts/{id}/credits/deduct', `/admin/v1/accounts/${a}/credits/deduct`, { amountMicros: 1, reason: 'r' });
    await ok('GET', '/admin/v1/accounts/{id}/ledger', `/admin/v1/accounts/${a}/ledger`);
    await ok('GET', '/admin/v1/accounts/{id}/usage', `/admin/v1/accounts/${a}/usage`);
    await ok('GET', '/admin/v1/accounts/{id}/usage/daily', `/admin/v1/accounts/${a}/usage/daily`);
    await ok('GET', '/admin/v1/accounts/{id}/requests', `/admin/v1/accounts/${a}/requests`);
    await ok('GET', '/admin/v1/requests/{requestId}', `/admin/v1/requests/${requestId}`);
    await ok('GET', '/admin/v1/keys', `/admin/v1/keys?account=${a}`);
    await ok('GET', '/admin/v1/keys/{id}', `/admin/v1/keys/${key.id}`);
    const rotated = await ok('POST', '/admin/v1/keys/{id}/rotate', `/admin/v1/keys/${key.id}/rotate`, {}) as { new: { id: string } };
    await ok('POST', '/admin/v1/keys/{id}/revoke', `/admin/v1/keys/${rotated.new.id}/revoke`);
    await ok('GET', '/admin/v1/webhooks', '/admin/v1/webhooks');
    await ok('POST', '/admin/v1/webhooks/{id}/replay', '/admin/v1/webhooks/evt_every/replay');
    await ok('GET', '/admin/v1/notifications', `/admin/v1/notifications?account=${a}`);
    await ok('PATCH', '/admin/v1/accounts/{id}/alerts', `/admin/v1/accounts/${a}/alerts`, { lowBalanceMicros: 1_000_000 });
    await ok('GET', '/admin/v1/accounts/{id}/alerts', `/admin/v1/accounts/${a}/alerts`);
    gw.storage.outbox.add({ id: 'evt_every_note', type: 'credits.added', accountId: a, createdAt: Date.now(), data: { accountId: a } });
    gw.storage.outbox.fanOut(() => [{ channel: 'webhook', target: 'http://127.0.0.1:9/hook' }], 10);
    const delivery = (gw.storage.outbox.list({ failed: false, limit: 1, accountId: a }) as { id: number }[])[0];
    await ok('POST', '/admin/v1/notifications/{id}/resend', `/admin/v1/notifications/${delivery.id}/resend`);
    await ok('GET', '/admin/v1/config', '/admin/v1/config');
    await ok('GET', '/admin/v1/audit', '/admin/v1/audit');
    const scrape = await api.get('/metrics');
    expect(scrape.status).toBe(200);
    expect(scrape.text).toContain('tollgate_');
    called.add('GET /metrics');
    // The gateway mounts its metrics beside the admin API's own routes.
    const document = openapiDocument([metricsRoute(gw.app.metrics)]);
    const served = await ok('GET', OPENAPI_PATH, OPENAPI_PATH);
    expect(served).toEqual(document);
    expect([...called].sort()).toEqual(operations(document as Doc));
  });
});

describe('routes mounted from outside src/admin/ (createApp\'s adminRoutes)', () => {
  it('are served behind the token and documented in the served document', async () => {
    const hello: ExtraRoute = {
      method: 'GET', path: '/hello',
      handle: () => ({ status: 200, text: 'hello\n', contentType: 'text/plain' }),
      doc: { operationId: 'getHello', summary: 'Says hello.', responses: { 200: { description: 'Hello.', content: { 'text/plain': { schema: { type: 'string' } } } } } },
    };
    const config = loadConfig({ DATABASE_PATH: `${tempDir()}/t.db`, LOG_LEVEL: 'silent', ADMIN_TOKEN });
    const app = await createApp(config, { adminRoutes: [hello] });
    try {
      const base = `http://127.0.0.1:${await app.admin!.listen(0, '127.0.0.1')}`;
      const api = adminApi(base);
      expect((await api.get('/hello')).text).toBe('hello\n');
      expect((await api.get('/hello', { token: null })).status).toBe(401);
      const served = (await api.get<Doc>(OPENAPI_PATH)).body;
      expect(served.paths['/hello'].get.operationId).toBe('getHello');
      expect(operations(served)).toEqual(adminRoutes([metricsRoute(app.metrics), hello]).map((r) => `${r.method} ${r.path}`).sort());
    } finally {
      await app.close();
    }
  });
});
