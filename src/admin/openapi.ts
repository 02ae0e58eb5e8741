// The admin API's OpenAPI 3.1 document, as data, next to the route table (routes.ts): each
// route's operation and the shapes of shapes.ts as JSON Schema. test/admin-openapi.test.ts checks
// that every route served is documented and every documented operation served, and validates the
// end-to-end tests' answers against these schemas.
import type { ExtraRoute, Operation } from './http.ts';

type Schema = Record<string, unknown>;

const str: Schema = { type: 'string' };
const nullable = (type: string): Schema => ({ type: [type, 'null'] });
const int: Schema = { type: 'integer' };
const bool: Schema = { type: 'boolean' };
const time: Schema = { type: 'string', format: 'date-time' };
const ntime: Schema = { type: ['string', 'null'], format: 'date-time' };
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const list = (items: Schema): Schema => ({ type: 'array', items });
/** An object with exactly these properties, all required unless `optional` names them. */
const obj = (properties: Record<string, Schema>, optional: string[] = []): Schema => ({
  type: 'object', properties, required: Object.keys(properties).filter((p) => !optional.includes(p)), additionalProperties: false,
});
const page = (item: string): Schema => obj({ data: list(ref(item)), next: { ...nullable('string'), description: 'Pass as `after` for the next page; null on the last.' } });

const account = {
  id: str, email: str, name: nullable('string'), plan: str, status: { enum: ['active', 'suspended'] },
  statusReason: { ...nullable('string'), description: '"operator" (suspended by hand), "payment_failed", "dispute".' },
  balanceMicros: int, balance: str, createdAt: time,
};
const key = {
  id: str, accountId: str, name: nullable('string'), prefix: str, state: { enum: ['active', 'revoked', 'expired'] },
  createdAt: time, expiresAt: ntime, revokedAt: ntime, replacedBy: nullable('string'),
  lastUsedAt: { ...ntime, description: 'When the key last authenticated a request, as far as this gateway\'s memory knows.' },
};
const tokens = { inputTokens: int, cachedTokens: int, cacheWriteTokens: int, outputTokens: int };
const nullableTokens = Object.fromEntries(Object.keys(tokens).map((k) => [k, nullable('integer')]));
const usageRow = {
  requestId: str, method: str, path: str, status: int, priceMicros: int, cost: str,
  model: nullable('string'), inputTokens: nullable('integer'), outputTokens: nullable('integer'), estimated: bool,
};
const limits = obj({ perSecond: int, perMinute: int, perDay: int }, ['perSecond', 'perMinute', 'perDay']);

const schemas: Record<string, Schema> = {
  Problem: obj({ type: str, title: str, status: int, detail: str, requestId: str }),
  Account: obj(account),
  AccountPage: page('Account'),
  Key: obj(key),
  NewKey: obj({ ...key, key: { type: 'string', description: 'The key itself: in this answer only.' } }),
  KeyPage: page('Key'),
  Rotation: obj({ old: ref('Key'), new: ref('NewKey') }),
  Grant: obj({ ...account, grantedMicros: int, granted: str, reason: str }),
  Deduct: obj({ ...account, deductedMicros: int, deducted: str, reason: str }),
  LedgerEntry: obj({ id: int, kind: str, reference: nullable('string'), amountMicros: int, amount: str, balanceAfterMicros: int, balanceAfter: str, createdAt: time }),
  Ledger: obj({ id: str, balanceMicros: int, balance: str, ledger: list(ref('LedgerEntry')), nextBefore: nullable('integer') }),
  Usage: obj({
    id: str, period: str, periodStart: time, periodEnd: ntime, plan: str, monthlyQuota: nullable('integer'), quotaUsed: int,
    requests: int, billable: int, chargedMicros: int, charged: str, byStatus: { type: 'object', additionalProperties: int },
  }),
  Day: obj({ day: { type: 'string', format: 'date' }, requests: int, billable: int, chargedMicros: int, charged: str, ...tokens }),
  UsageDays: obj({ id: str, from: { type: 'string', format: 'date' }, to: { type: 'string', format: 'date' }, days: list(ref('Day')) }),
  RecentRequests: obj({ id: str, requests: list(obj({ time, ...usageRow })) }),
  Request: obj({
    id: int, time, requestId: str, accountId: nullable('string'), keyId: nullable('string'), route: str, method: str, path: str, status: int,
    requestBytes: int, responseBytes: int, latencyUs: int, priceMicros: int, cost: str, billable: bool, quotaPeriod: nullable('string'),
    model: nullable('string'), ...nullableTokens, estimated: bool,
  }),
  Event: obj({ id: str, type: str, status: { enum: ['applied', 'ignored', 'failed'] }, note: nullable('string'), attempts: int, receivedAt: time, appliedAt: ntime }),
  EventPage: page('Event'),
  Replay: obj({ id: str, type: str, outcome: { enum: ['applied', 'ignored', 'duplicate', 'failed'] } }),
  AuditEntry: obj({
    id: int, at: time, actor: { type: 'string', description: '"cli", or "token:" and 12 hex digits of the admin token\'s SHA-256.' },
    action: { enum: ['account.create', 'account.update', 'account.alerts', 'key.create', 'key.revoke', 'key.rotate', 'credits.grant', 'credits.deduct', 'webhook.replay', 'notification.resend'] },
    target: str, accountId: nullable('string'), change: { type: 'object' }, requestId: nullable('string'),
  }),
  AuditPage: page('AuditEntry'),
  Delivery: obj({
    id: int, eventId: str, type: str, accountId: nullable('string'), channel: { enum: ['webhook', 'email'] }, target: str,
    status: { enum: ['pending', 'delivered', 'failed'] }, attempts: int,
    lastStatus: { ...nullable('integer'), description: 'The receiver\'s last answer: an HTTP status or an SMTP reply code.' },
    lastError: nullable('string'), createdAt: time, nextAttemptAt: ntime, deliveredAt: ntime,
  }),
  DeliveryPage: page('Delivery'),
  Alerts: obj({ id: str, lowBalanceMicros: { ...nullable('integer'), description: 'null: the plan\'s threshold; 0: never.' }, lowBalance: nullable('string') }),
  Config: obj({
    source: str, demo: bool, defaultPlan: str,
    routes: list(obj({
      path: str, upstreams: { type: 'array', items: str }, priceMicros: int, metered: bool, auth: bool, stripPrefix: bool,
      headers: { type: 'object', additionalProperties: { const: '[redacted]' } }, timeoutMs: int,
      meter: nullable('string'), whenHeader: nullable('string'), cors: { type: ['array', 'null'], items: str },
    })),
    plans: { type: 'object', additionalProperties: obj({
      name: str, limits, burst: nullable('integer'), monthlyQuota: nullable('integer'), overage: { enum: ['block', 'credits', 'stripe'] },
      models: { type: ['array', 'null'], items: str }, byok: bool, stripePrice: nullable('string'), stripeMeter: nullable('string'),
    }) },
    prices: { type: 'object', additionalProperties: { type: 'object' } },
    providers: { type: 'object', additionalProperties: obj({ apiKey: { type: ['string', 'null'], enum: ['[redacted]', null] } }) },
    stripe: { type: ['object', 'null'] },
    admin: { type: ['object', 'null'] },
  }),
  OpenApi: { type: 'object', required: ['openapi', 'paths'] },
};

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
const ERRORS: Record<string, string> = {
  400: 'The body is not valid JSON.',
  401: 'No valid admin token: the only answer such a request gets.',
  404: 'No such account, key, event or request.',
  409: 'Refused by the state of things (an email taken, a revoked key rotated, a balance that cannot pay).',
  422: 'A parameter or field is invalid, unknown or missing; or an Idempotency-Key reused for another request.',
  503: 'The database is busy (another process holds its write lock): retry after Retry-After.',
};

interface OpSpec {
  summary: string;
  path?: string[];
  query?: Record<string, Schema & { description?: string }>;
  body?: Schema;
  /** Status and schema of the success answer. */
  ok: [number, string];
  errors: number[];
}

const ID_PARAM_DOC: Record<string, string> = { id: 'The account, key, event or delivery id.', requestId: 'The X-Request-Id the gateway gave the request.' };

function op(operationId: string, post: boolean, s: OpSpec): Operation {
  const parameters = [
    ...(s.path ?? []).map((name) => ({ name, in: 'path', required: true, schema: str, description: ID_PARAM_DOC[name] })),
    ...Object.entries(s.query ?? {}).map(([name, { description, ...schema }]) => ({ name, in: 'query', required: false, schema, description })),
    ...(post ? [{ name: 'Idempotency-Key', in: 'header', required: false, schema: str,
      description: 'A retry with the same key and body gets the first answer (kept 24 h) without the action being done again; the same key with another request, 422.' }] : []),
  ];
  const errors = [...new Set([401, ...s.errors, ...(s.body ? [400, 422] : []), ...(post ? [422, 503] : [])])].sort();
  return {
    operationId, summary: s.summary,
    ...(parameters.length > 0 && { parameters }),
    ...(s.body && { requestBody: { required: true, content: { 'application/json': { schema: s.body } } } }),
    responses: {
      [s.ok[0]]: { description: 'Done.', content: { 'application/json': { schema: ref(s.ok[1]) } } },
      ...Object.fromEntries(errors.map((status) => [status, problem(ERRORS[status])])),
    },
  };
}

const LIMIT = { type: 'integer', minimum: 1, maximum: 500, description: 'Page size (default 50).' };
const AFTER = { type: 'string', description: 'The `next` of the previous page.' };
const credits = obj({ amountMicros: { type: 'integer', minimum: 1 }, reason: str });

const paths: Record<string, Record<string, Operation>> = {
  '/admin/v1/accounts': {
    post: op('createAccount', true, {
      summary: 'Create an account (on the default plan unless told).', ok: [201, 'Account'], errors: [409],
      body: obj({ email: str, name: nullable('string'), plan: str }, ['name', 'plan']),
    }),
    get: op('listAccounts', false, {
      summary: 'Accounts, oldest first; new ones join the end, so a cursor stays valid.', ok: [200, 'AccountPage'], errors: [422],
      query: { limit: LIMIT, after: AFTER, plan: str, status: { enum: ['active', 'suspended'] }, email: { type: 'string', description: 'Exact, ignoring case.' } },
    }),
  },
  '/admin/v1/accounts/{id}': {
    get: op('getAccount', false, { summary: 'An account.', path: ['id'], ok: [200, 'Account'], errors: [404] }),
    patch: op('updateAccount', false, {
      summary: 'Change name, email, plan or standing; suspending by hand records the reason "operator", reactivating clears it.',
      path: ['id'], ok: [200, 'Account'], errors: [404, 409, 503],
      body: obj({ name: nullable('string'), email: str, plan: str, status: { enum: ['active', 'suspended'] } }, ['name', 'email', 'plan', 'status']),
    }),
  },
  '/admin/v1/accounts/{id}/credits/grant': {
    post: op('grantCredits', true, { summary: 'Add prepaid credits (a "grant" ledger row with the reason).', path: ['id'], body: credits, ok: [200, 'Grant'], errors: [404] }),
  },
  '/admin/v1/accounts/{id}/credits/deduct': {
    post: op('deductCredits', true, {
      summary: 'Take credits back (an "adjustment" ledger row); 409 when the account cannot pay it all, and nothing is taken.',
      path: ['id'], body: credits, ok: [200, 'Deduct'], errors: [404, 409],
    }),
  },
  '/admin/v1/accounts/{id}/ledger': {
    get: op('getLedger', false, {
      summary: 'The balance and the ledger, newest first.', path: ['id'], ok: [200, 'Ledger'], errors: [404, 422],
      query: { limit: { ...LIMIT, description: 'Entries (default 20).' }, before: { type: 'integer', description: 'The `nextBefore` of the previous page.' } },
    }),
  },
  '/admin/v1/accounts/{id}/usage': {
    get: op('getUsage', false, {
      summary: 'Quota and totals of the period the gateway counts the account against now, or of a calendar month.',
      path: ['id'], ok: [200, 'Usage'], errors: [404, 422], query: { month: { type: 'string', description: 'YYYY-MM (UTC).' } },
    }),
  },
  '/admin/v1/accounts/{id}/usage/daily': {
    get: op('getUsageByDay', false, {
      summary: 'Totals per UTC day, zeros included (at most 367 days; default the last 30).', path: ['id'], ok: [200, 'UsageDays'], errors: [404, 422],
      query: { from: { type: 'string', format: 'date' }, to: { type: 'string', format: 'date', description: 'Included.' } },
    }),
  },
  '/admin/v1/accounts/{id}/requests': {
    get: op('listRecentRequests', false, {
      summary: 'The account\'s latest requests, newest first.', path: ['id'], ok: [200, 'RecentRequests'], errors: [404, 422],
      query: { limit: { ...LIMIT, description: 'Requests (default 20).' } },
    }),
  },
  '/admin/v1/requests/{requestId}': {
    get: op('getRequest', false, {
      summary: 'One request by its id: looked for among the latest million rows, or within 15 minutes of `around`.',
      path: ['requestId'], ok: [200, 'Request'], errors: [404, 422],
      query: { around: { type: 'string', format: 'date-time', description: 'About when the request was made.' } },
    }),
  },
  '/admin/v1/keys': {
    post: op('createKey', true, {
      summary: 'Issue a key for an account: the key is in this answer only.', ok: [201, 'NewKey'], errors: [404],
      body: obj({ accountId: str, name: nullable('string'), expiresAt: ntime }, ['name', 'expiresAt']),
    }),
    get: op('listKeys', false, {
      summary: 'Keys (never the keys themselves), oldest first.', ok: [200, 'KeyPage'], errors: [404, 422],
      query: { account: { type: 'string', description: 'Only this account\'s.' }, limit: LIMIT, after: AFTER },
    }),
  },
  '/admin/v1/keys/{id}': {
    get: op('getKey', false, { summary: 'A key.', path: ['id'], ok: [200, 'Key'], errors: [404] }),
  },
  '/admin/v1/keys/{id}/revoke': {
    post: op('revokeKey', true, { summary: 'Stop a key at once (revoking twice keeps the first time).', path: ['id'], ok: [200, 'Key'], errors: [404] }),
  },
  '/admin/v1/keys/{id}/rotate': {
    post: op('rotateKey', true, {
      summary: 'Issue a replacement; the old key keeps working for the grace period.', path: ['id'], ok: [200, 'Rotation'], errors: [404, 409],
      body: obj({ graceSeconds: { type: 'integer', minimum: 0, description: 'Default 86400.' } }, ['graceSeconds']),
    }),
  },
  '/admin/v1/webhooks': {
    get: op('listWebhookEvents', false, {
      summary: 'Stripe events received, newest first.', ok: [200, 'EventPage'], errors: [422],
      query: { failed: { enum: ['true', 'false'], description: 'Only events whose handling failed.' }, limit: LIMIT, after: AFTER },
    }),
  },
  '/admin/v1/webhooks/{id}/replay': {
    post: op('replayWebhookEvent', true, { summary: 'Apply a stored event again (nothing happens if it was applied).', path: ['id'], ok: [200, 'Replay'], errors: [404] }),
  },
  '/admin/v1/notifications': {
    get: op('listNotificationDeliveries', false, {
      summary: 'Deliveries of balance, quota, billing and key events to webhooks and email, newest first.', ok: [200, 'DeliveryPage'], errors: [404, 422],
      query: {
        failed: { enum: ['true', 'false'], description: 'Only deliveries given up after a day of retries.' },
        account: { type: 'string', description: 'Only this account\'s.' }, limit: LIMIT, after: AFTER,
      },
    }),
  },
  '/admin/v1/notifications/{id}/resend': {
    post: op('resendNotificationDelivery', true, { summary: 'Send a delivery again (the same event id), with a fresh day of retries.', path: ['id'], ok: [200, 'Delivery'], errors: [404, 422, 503] }),
  },
  '/admin/v1/accounts/{id}/alerts': {
    get: op('getAccountAlerts', false, { summary: 'The account\'s own balance.low threshold.', path: ['id'], ok: [200, 'Alerts'], errors: [404] }),
    patch: op('setAccountAlerts', false, {
      summary: 'Set the account\'s own balance.low threshold (0: never; null: its plan\'s); a gateway uses it from the account\'s next request.',
      path: ['id'], body: obj({ lowBalanceMicros: nullable('integer') }), ok: [200, 'Alerts'], errors: [400, 404, 422, 503],
    }),
  },
  '/admin/v1/config': {
    get: op('getConfig', false, { summary: 'The running configuration; secrets are shown as "[redacted]".', ok: [200, 'Config'], errors: [] }),
  },
  '/admin/v1/audit': {
    get: op('listAudit', false, {
      summary: 'Administrative changes, newest first: when, what, by which token or the CLI, and the request id.',
      ok: [200, 'AuditPage'], errors: [404, 422], query: { account: { type: 'string', description: 'Only this account\'s.' }, limit: LIMIT, after: AFTER },
    }),
  },
  '/admin/v1/openapi.json': {
    get: op('getOpenApi', false, { summary: 'This document.', ok: [200, 'OpenApi'], errors: [] }),
  },
};

/** The document served at /admin/v1/openapi.json, with the operations of routes mounted from outside. */
export function openapiDocument(extra: readonly ExtraRoute[] = []): Record<string, unknown> {
  const all: Record<string, Record<string, Operation>> = structuredClone(paths);
  for (const r of extra) (all[r.path] ??= {})[r.method.toLowerCase()] = r.doc;
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tollgate admin API', version: '1',
      description: 'Accounts, keys, credits, usage, requests, webhook events and the audit log of a running gateway. '
        + 'Every request needs "Authorization: Bearer <one of ADMIN_TOKEN>"; every POST takes an Idempotency-Key.',
    },
    security: [{ adminToken: [] }],
    components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } }, schemas },
    paths: all,
  };
}
