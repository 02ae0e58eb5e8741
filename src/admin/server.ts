// The admin API's own node:http listener (ADMIN_HOST:ADMIN_PORT, on only with ADMIN_TOKEN).
// Before anything else a request must carry a valid admin token: without one it gets a 401
// and nothing else, whatever the path (no hint of which endpoints exist). Then: route, body,
// Idempotency-Key, the endpoint, one JSON answer; errors in the gateway's problem+json.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminConfig, Config } from '../config.ts';
import { ConflictError, InsufficientBalanceError, InvalidInputError, NotFoundError, type Actor } from '../db/admin.ts';
import { GatewayError, writeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { discardRest, readBody } from '../pipeline/read-body.ts';
import { StorageBusy, type MaybePromise } from '../storage/ports.ts';
import { adminAuth, type Caller } from './auth.ts';
import type { AdminBackend } from './backend.ts';
import type { AdminContext, AdminRoute, ExtraRoute, Reply } from './http.ts';
import { requestHash, type IdempotencyStore, type StoredAnswer } from './idempotency.ts';
import { invalid } from './input.ts';
import { openapiDocument } from './openapi.ts';
import { AdminRouter } from './router.ts';
import { ADMIN_ROUTES } from './routes.ts';
import { Console } from '../ui/console/console.ts';

export interface AdminServerDeps {
  config: Config & { admin: AdminConfig };
  /** The backend's operations (on SQLite: Admin on the gateway's own storage, with its live view). */
  backend: AdminBackend;
  /** The operator console's pages, on the same backend. */
  console: Console;
  log: Logger;
  /** More endpoints on this listener (GET /metrics), each with its OpenAPI operation. */
  extra?: readonly ExtraRoute[];
}

export interface AdminListener {
  server: Server;
  /** Resolves with the port bound. */
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting; requests in flight finish (admin requests are short). */
  close(): Promise<void>;
}

export const OPENAPI_PATH = '/admin/v1/openapi.json';
const MAX_BODY = 64 * 1024;
// RFC 9110 token characters, as the IETF Idempotency-Key draft's examples use; up to 255.
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** Every route the listener serves, GET /admin/v1/openapi.json included. */
export function adminRoutes(extra: readonly ExtraRoute[] = []): AdminRoute[] {
  const document = openapiDocument(extra);
  return [...ADMIN_ROUTES, ...extra, { method: 'GET', path: OPENAPI_PATH, handle: () => ({ status: 200, json: document }) }];
}

/** Operator errors as the gateway's problem codes; anything else is an internal error. */
function problem(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof NotFoundError) return new GatewayError('NOT_FOUND', { detail: err.message });
  if (err instanceof InvalidInputError) return new GatewayError('INVALID_INPUT', { detail: err.message });
  if (err instanceof InsufficientBalanceError) return new GatewayError('INSUFFICIENT_BALANCE', { detail: err.message });
  if (err instanceof ConflictError) return new GatewayError('CONFLICT', { detail: err.message });
  if (err instanceof StorageBusy) return new GatewayError('STORAGE_BUSY', { retryAfterS: 1 });
  return new GatewayError('INTERNAL');
}

/** `f` of a value that may come later: at once when it is there (SQLite's synchronous transactions). */
function then<T, U>(value: MaybePromise<T>, f: (v: T) => MaybePromise<U>): MaybePromise<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}

function answer(reply: Reply): StoredAnswer {
  return 'json' in reply
    ? { status: reply.status, body: JSON.stringify(reply.json), contentType: 'application/json' }
    : { status: reply.status, body: reply.text, contentType: reply.contentType };
}

export function createAdminServer({ config, backend, console: ui, log, extra = [] }: AdminServerDeps): AdminListener {
  const authorize = adminAuth(config.admin.tokens);
  const router = new AdminRouter(adminRoutes(extra));

  /**
   * A POST with an Idempotency-Key: the kept answer, or the action and its answer in one
   * transaction, under the key's lock (two tries at once on PostgreSQL nodes: the second waits,
   * then finds the first's answer).
   */
  async function once(route: AdminRoute, ctx: AdminContext, actor: Actor, caller: Caller, key: string, hash: string): Promise<StoredAnswer & { replayed?: boolean }> {
    if (!IDEMPOTENCY_KEY.test(key)) throw invalid('Idempotency-Key: 1 to 255 visible ASCII characters');
    const replay = (kept: StoredAnswer | 'reused' | undefined) => {
      if (kept === 'reused') throw new GatewayError('IDEMPOTENCY_KEY_REUSED');
      return kept && { ...kept, replayed: true };
    };
    // A refusal is not kept: nothing was done, and a retry may well succeed.
    const keep = (answers: IdempotencyStore, a: StoredAnswer) => then(a.status < 300 ? answers.save(caller.actor, caller.token, key, hash, a) : undefined, () => a);
    if (route.atomic === false) {
      const kept = replay(await backend.answers.find(caller.actor, caller.token, key, hash));
      if (kept) return kept;
      return keep(backend.answers, answer(await route.handle(ctx)));
    }
    // A key is visible ASCII (no space), as an actor is: a space keeps two pairs apart.
    return backend.atomically(actor, `${caller.actor} ${key}`, (ops, answers) =>
      then(answers.find(caller.actor, caller.token, key, hash), (found) =>
        replay(found) ?? then(route.handle({ ...ctx, ops }), (reply) => keep(answers, answer(reply)))));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const headers = ['x-request-id', requestId];
    if (Console.serves((req.url ?? '/').split('?', 1)[0])) return ui.serve(req, res, requestId);
    try {
      const caller = authorize(req.headers.authorization);
      if (!caller) throw new GatewayError('ADMIN_UNAUTHORIZED');
      const url = new URL(req.url ?? '/', 'http://admin.invalid');
      const found = router.match(req.method ?? 'GET', url.pathname);
      if (!found) throw new GatewayError('NOT_FOUND', { detail: `No admin endpoint at ${url.pathname} (the endpoints are in ${OPENAPI_PATH}).` });
      if ('allow' in found) {
        headers.push('allow', found.allow.join(', '));
        throw new GatewayError('METHOD_NOT_ALLOWED');
      }
      const { route, params } = found;
      const raw = route.method === 'GET' ? undefined : await readBody(req, MAX_BODY, config.clients.bodyTimeoutMs);
      let body: unknown;
      if (raw !== undefined && raw.length > 0) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new GatewayError('BAD_REQUEST', { detail: 'The body is not valid JSON.' });
        }
      }
      const actor: Actor = { by: caller.actor, requestId };
      const ctx: AdminContext = { params, query: url.searchParams, body, ops: backend.operations(actor), requestId };
      const key = req.headers['idempotency-key'];
      const out: StoredAnswer & { replayed?: boolean } = route.method === 'POST' && typeof key === 'string'
        ? await once(route, ctx, actor, caller, key, requestHash(route.method, url.pathname + url.search, raw))
        : answer(await route.handle(ctx));
      if (out.replayed) headers.push('idempotent-replayed', 'true');
      res.writeHead(out.status, [...headers, 'content-type', out.contentType, 'content-length', String(Buffer.byteLength(out.body))]);
      res.end(out.body);
    } catch (err) {
      const e = problem(err);
      if (e.code === 'INTERNAL') log.error('admin request failed', { requestId, error: (err as Error).message, stack: (err as Error).stack });
      writeError(res, e, requestId, headers);
      discardRest(req, req.socket);
    }
  }

  const server = createServer({ headersTimeout: config.clients.headersTimeoutMs, requestTimeout: 0 }, (req, res) => void handle(req, res));
  return {
    server,
    listen: (port, host) => new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
    }),
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    }),
  };
}
