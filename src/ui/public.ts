// The pages on the public port: the customer portal, signup and their stylesheet, under
// /_tollgate/. Built once per gateway on its backend (the SQLite file or PostgreSQL, backends.ts);
// the answer goes out through the gateway's own respond rule (beforeResponse).
import type { Billing } from '../billing/billing.ts';
import type { Config } from '../config.ts';
import { createLogger } from '../log.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { GatewayState } from '../state/state.ts';
import { pagesBackend } from './backends.ts';
import { isSecure, notFound, readForm, stylesheet, type UiReply, type UiRequest } from './http.ts';
import { PORTAL, STYLESHEET } from './portal/context.ts';
import { Portal } from './portal/portal.ts';
import { refusalReply } from './routes.ts';
import { SIGNUP, Signup } from './signup.ts';

export interface PublicDeps {
  config: Config;
  state: GatewayState;
  billing: Billing | undefined;
  now: () => number;
}

const ASSETS = '/_tollgate/assets/';

/** The paths these pages answer under /_tollgate/. */
export function isPublicPage(path: string): boolean {
  return path === PORTAL || path.startsWith(`${PORTAL}/`) || path === SIGNUP || path.startsWith(`${SIGNUP}/`) || path.startsWith(ASSETS);
}

interface Pages { portal: Portal; signup: Signup }
const built = new WeakMap<GatewayState, Pages | null>();

function pagesOf({ config, state, billing, now }: PublicDeps): Pages | null {
  let pages = built.get(state);
  if (pages === undefined) {
    // The customer's operations never log (only a webhook replay does, which they cannot do).
    const backend = pagesBackend(state, { config, now, log: silent });
    pages = backend ? {
      portal: new Portal({ config, state, operations: backend.admin.operations, store: backend.store, billing, now }),
      signup: new Signup({ config, operations: backend.admin.operations, store: backend.store, billing, now }),
    } : null;
    built.set(state, pages);
  }
  return pages;
}

const silent = createLogger('silent');

export async function publicPage(ctx: RequestContext, path: string, query: string, deps: PublicDeps): Promise<void> {
  const { req } = ctx;
  let body: URLSearchParams | undefined;
  const ui: UiRequest = {
    method: req.method ?? 'GET', path, query: new URLSearchParams(query), headers: req.headers, client: ctx.client ?? 'unknown',
    secure: isSecure(req, ctx.viaProxy), form: async () => (body ??= await readForm(req, deps.config.clients.bodyTimeoutMs)),
  };
  let reply: UiReply;
  try {
    const css = stylesheet(path, ASSETS);
    if (css) reply = css;
    else {
      const pages = pagesOf(deps);
      if (!pages) throw notFound('These pages need the gateway\u2019s own storage (the SQLite file or PostgreSQL).');
      reply = path.startsWith(SIGNUP) ? await pages.signup.handle(ui) : await pages.portal.handle(ui, ctx.requestId);
    }
  } catch (err) {
    // Anything unexpected goes to the gateway's own refusal (logged, problem+json).
    reply = refusalReply(err, { stylesheet: STYLESHEET, home: PORTAL });
  }
  deps.state.recorder.beforeResponse(ctx.socket);
  ctx.res.writeHead(reply.status, [...ctx.responseHeaders, ...reply.headers, 'content-length', String(Buffer.byteLength(reply.body))]);
  ctx.res.end(reply.body);
}
