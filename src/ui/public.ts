// The pages on the public port: the customer portal, signup and their stylesheet, under
// /_tollgate/. Built once per gateway on its SQLite storage (the pages read the daily rollups and
// keys by SQL); the answer goes out through the gateway's own respond rule (beforeResponse).
import type { Billing } from '../billing/billing.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/open.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { GatewayState } from '../state/state.ts';
import type { Storage } from '../storage/ports.ts';
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
    const storage = state.storage;
    pages = 'db' in storage ? {
      portal: new Portal({ config, state, storage: storage as Storage & { db: Db }, billing, now }),
      signup: new Signup({ config, storage: storage as Storage & { db: Db }, billing, now }),
    } : null;
    built.set(state, pages);
  }
  return pages;
}

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
      if (!pages) throw notFound('These pages need the SQLite storage.');
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
