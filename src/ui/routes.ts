// A page route table (`/accounts/:id`), and how a refusal becomes an error page.
import { ConflictError, InsufficientBalanceError, InvalidInputError, NotFoundError } from '../db/admin.ts';
import { GatewayError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { StorageBusy } from '../storage/ports.ts';
import { html, page } from './html.ts';
import { notFound, pageReply, UiRefusal, type UiReply } from './http.ts';

export type Handler<C> = (ctx: C, form: URLSearchParams) => UiReply | Promise<UiReply>;

interface Compiled<C> { method: string; re: RegExp; names: string[]; handler: Handler<C> }

export class Routes<C> {
  private readonly compiled: Compiled<C>[];

  constructor(routes: readonly (readonly [string, string, Handler<C>])[]) {
    this.compiled = routes.map(([method, path, handler]) => {
      const names: string[] = [];
      const re = new RegExp(`^${path.replace(/:(\w+)/g, (_, n: string) => (names.push(n), '([^/]+)'))}$`);
      return { method, re, names, handler };
    });
  }

  /** Some route (of any method) serves this path. */
  has(path: string): boolean {
    return this.compiled.some((r) => r.re.test(path));
  }

  /** The handler and its decoded parameters; 404 or 405 refusals otherwise. */
  match(method: string, path: string): { handler: Handler<C>; params: Record<string, string> } {
    let allowed = false;
    for (const r of this.compiled) {
      const m = r.re.exec(path);
      if (!m) continue;
      if (r.method !== method && !(r.method === 'GET' && method === 'HEAD')) {
        allowed = true;
        continue;
      }
      const params: Record<string, string> = {};
      try {
        r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
      } catch {
        throw notFound();
      }
      return { handler: r.handler, params };
    }
    throw allowed ? new UiRefusal(405, 'This page does not take that method.') : notFound();
  }
}

/**
 * An error page for what a handler threw: refusals and operator errors by their kind; anything
 * else is a 500, logged here, or rethrown without a logger for the caller to log.
 */
export function refusalReply(err: unknown, { stylesheet, home }: { stylesheet: string; home: string }, log?: Logger, requestId?: string): UiReply {
  let status = 500;
  let message = 'Something went wrong; it was logged.';
  let headers: string[] = [];
  if (err instanceof UiRefusal) ({ status, message, headers } = { status: err.status, message: err.message, headers: err.headers });
  else if (err instanceof NotFoundError) (status = 404), (message = err.message);
  else if (err instanceof InvalidInputError) (status = 400), (message = err.message);
  else if (err instanceof ConflictError || err instanceof InsufficientBalanceError) (status = 409), (message = err.message);
  else if (err instanceof StorageBusy) (status = 503), (message = 'The database is busy; try again in a moment.'), (headers = ['retry-after', '1']);
  else if (err instanceof GatewayError) (status = err.status), (message = err.message);
  else if (!log) throw err;
  else log.error('page failed', { requestId, error: (err as Error).message, stack: (err as Error).stack });
  const title = status === 404 ? 'Not found' : status === 401 ? 'Not signed in' : status === 403 ? 'Refused' : status === 429 ? 'Too many attempts' : status >= 500 ? 'Error' : 'Not done';
  return pageReply(status, page({ title, stylesheet, error: message }, html`<p><a href="${home}">Back to the start page</a></p>`), headers);
}
