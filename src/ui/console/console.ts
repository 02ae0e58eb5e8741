// The operator console on the admin listener (every path but /admin/v1/… and /metrics). Sign in
// with an admin token, exchanged for a signed session cookie (12 h; its key is derived from
// ADMIN_TOKEN, so changing the tokens signs everyone out); the token itself is never in a page,
// a URL or the cookie. Every POST must come from this origin and carry the session's CSRF token.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { adminAuth } from '../../admin/auth.ts';
import type { AdminBackend } from '../../admin/backend.ts';
import type { AdminConfig, Config } from '../../config.ts';
import type { Logger } from '../../log.ts';
import { TrustedProxies } from '../../pipeline/trusted-proxies.ts';
import { html, page } from '../html.ts';
import {
  badCsrf, cookieHeader, crossSite, isSecure, pageReply, readCookie, readForm, redirect, sameOrigin, signedOut, stylesheet, tooMany, UiRefusal,
  type UiReply, type UiRequest,
} from '../http.ts';
import { refusalReply, type Handler, Routes } from '../routes.ts';
import { deriveKey, SessionSigner } from '../session.ts';
import { Throttle } from '../throttle.ts';
import type { UiStore } from '../ui-store.ts';
import { changePlan, changeStatus, createKey, moveCredits, revokeKey, rotateKey } from './account-actions.ts';
import { accountPage, accountsPage } from './accounts.ts';
import { configPage } from './config-page.ts';
import { STYLESHEET, type ConsoleCtx } from './context.ts';
import { overviewPage } from './overview.ts';
import { replayWebhook, webhooksPage } from './webhooks.ts';

export const CONSOLE_COOKIE = 'tg_console';
export const CONSOLE_SESSION_MS = 12 * 3600_000;
/** Sign-in attempts per client address and minute. */
const SIGN_IN_LIMIT = 10;

export interface ConsoleDeps {
  config: Config & { admin: AdminConfig };
  /** The operator's operations, as the admin API's (the same backend). */
  operations: AdminBackend['operations'];
  store: UiStore;
  log: Logger;
  now: () => number;
}

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

const ROUTES = new Routes<ConsoleCtx>([
  ['GET', '/', overviewPage],
  ['GET', '/accounts', accountsPage],
  ['GET', '/accounts/:id', accountPage],
  ['POST', '/accounts/:id/plan', changePlan],
  ['POST', '/accounts/:id/status', changeStatus],
  ['POST', '/accounts/:id/credits', moveCredits],
  ['POST', '/accounts/:id/keys', createKey],
  ['POST', '/keys/:id/revoke', revokeKey],
  ['POST', '/keys/:id/rotate', rotateKey],
  ['GET', '/webhooks', webhooksPage],
  ['POST', '/webhooks/:id/replay', replayWebhook],
  ['GET', '/config', configPage],
] satisfies [string, string, Handler<ConsoleCtx>][]);

export class Console {
  private readonly signer: SessionSigner;
  private readonly subjects: Map<string, string>;
  private readonly authorize: ReturnType<typeof adminAuth>;
  private readonly proxies: TrustedProxies;
  private readonly throttle = new Throttle(SIGN_IN_LIMIT, 60_000);

  constructor(private readonly deps: ConsoleDeps) {
    const { tokens } = deps.config.admin;
    this.signer = new SessionSigner(deriveKey(tokens.join('\n'), 'console session'), 'console', CONSOLE_SESSION_MS);
    // A session names its token by digest; the audit log names it as the admin API does.
    this.subjects = new Map(tokens.map((t) => [digest(t), `console:token:${digest(t).slice(0, 12)}`]));
    this.authorize = adminAuth(tokens);
    this.proxies = new TrustedProxies(deps.config.trustProxy);
  }

  /**
   * The console's paths; any other stays the admin API's (which answers 401 to a request
   * without a token, whatever the path).
   */
  static serves(path: string): boolean {
    return path === '/sign-in' || path === '/sign-out' || path.startsWith('/assets/') || ROUTES.has(path);
  }

  /** Serves a request for one of the console's paths. */
  async serve(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const peer = req.socket.remoteAddress ?? 'unknown';
    const trusted = this.proxies.trusts(peer);
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    let body: URLSearchParams | undefined;
    const ui: UiRequest = {
      method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers,
      client: trusted ? this.proxies.client(peer, req.headers['x-forwarded-for'] as string | undefined) : peer,
      secure: isSecure(req, trusted),
      form: async () => (body ??= await readForm(req, this.deps.config.clients.bodyTimeoutMs)),
    };
    let reply: UiReply;
    try {
      reply = await this.handle(ui, requestId);
    } catch (err) {
      reply = refusalReply(err, { stylesheet: STYLESHEET, home: '/' }, this.deps.log, requestId);
    }
    res.writeHead(reply.status, ['x-request-id', requestId, ...reply.headers, 'content-length', String(Buffer.byteLength(reply.body))]);
    res.end(reply.body);
  }

  async handle(req: UiRequest, requestId: string): Promise<UiReply> {
    const css = stylesheet(req.path, '/assets/');
    if (css) return css;
    if (req.path.startsWith('/assets/')) throw new UiRefusal(404, 'No such file.');
    const now = this.deps.now();
    if (req.path === '/sign-in') return req.method === 'POST' ? this.signIn(req, now) : signInPage();
    const session = this.signer.verify(readCookie(req.headers, CONSOLE_COOKIE), now);
    const actor = session && this.subjects.get(session.subject);
    if (req.method === 'POST' && !sameOrigin(req)) throw crossSite();
    if (!session || !actor) {
      if (req.method === 'GET' || req.method === 'HEAD') return redirect('/sign-in');
      throw signedOut();
    }
    if (req.method === 'POST') {
      const form = await req.form();
      if (!this.signer.checkCsrf(session, form.get('csrf'))) throw badCsrf();
      if (req.path === '/sign-out') return redirect('/sign-in', this.clear(req));
    }
    if (req.path === '/sign-out') throw new UiRefusal(405, 'Sign out with the button on any page.');
    const found = ROUTES.match(req.method, req.path);
    const { config, operations, store } = this.deps;
    const ctx: ConsoleCtx = { req, params: found.params, ops: operations({ by: actor, requestId }), store, config, now, csrf: this.signer.csrf(session) };
    return found.handler(ctx, req.method === 'POST' ? await req.form() : new URLSearchParams());
  }

  private async signIn(req: UiRequest, now: number): Promise<UiReply> {
    if (!sameOrigin(req)) throw crossSite();
    const wait = this.throttle.take(req.client, now);
    if (wait > 0) throw tooMany('Too many sign-in attempts from this address; wait a minute.', wait);
    const token = ((await req.form()).get('token') ?? '').trim();
    const caller = token ? this.authorize(`Bearer ${token}`) : undefined;
    if (!caller) return signInPage(401, 'That is not an admin token of this gateway.');
    const { cookie } = this.signer.issue(digest(caller.token), now);
    return redirect('/', cookieHeader(CONSOLE_COOKIE, cookie, { path: '/', maxAgeS: CONSOLE_SESSION_MS / 1000, secure: req.secure }));
  }

  private clear(req: UiRequest): string[] {
    return cookieHeader(CONSOLE_COOKIE, '', { path: '/', maxAgeS: 0, secure: req.secure });
  }
}

function signInPage(status = 200, error?: string): UiReply {
  return pageReply(status, page({ title: 'Sign in', stylesheet: STYLESHEET, error }, html`<form method="post" action="/sign-in" class="stack" id="sign-in">
<label>Admin token<input name="token" type="password" autocomplete="off" required autofocus></label><button type="submit">Sign in</button></form>
<p class="muted">Use one of the gateway\u2019s ADMIN_TOKEN tokens. It is exchanged for a session cookie and not kept in the page.</p>`));
}
