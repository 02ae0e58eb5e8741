// The customer portal on the public port (/_tollgate/portal). Sign in by pasting an API key: it
// is checked as the request path checks it and exchanged for a signed session cookie (30 min,
// Path=/_tollgate/portal) naming the key's id, never the key; a session ends as soon as its key
// is revoked or expires. Every POST must come from this origin and carry the session's CSRF
// token; a key id of another account is answered 404, as one that does not exist.
import { LocalOperations } from '../../admin/operations.ts';
import { keyState } from '../../admin/shapes.ts';
import type { Billing } from '../../billing/billing.ts';
import { uiSecret } from '../../billing/signup-claims.ts';
import type { Config } from '../../config.ts';
import { Admin, NotFoundError } from '../../db/admin.ts';
import type { Db } from '../../db/open.ts';
import { hashKey, isWellFormedKey } from '../../keys.ts';
import type { GatewayState } from '../../state/state.ts';
import type { Storage } from '../../storage/ports.ts';
import type { KeyRecord } from '../../storage/records.ts';
import { createLogger } from '../../log.ts';
import { html, page } from '../html.ts';
import { badCsrf, cookieHeader, crossSite, notFound, pageReply, readCookie, redirect, sameOrigin, signedOut, tooMany, type UiReply, type UiRequest } from '../http.ts';
import { liveView } from '../../state/live.ts';
import { Routes, type Handler } from '../routes.ts';
import { deriveKey, SessionSigner } from '../session.ts';
import { Throttle } from '../throttle.ts';
import { PORTAL, portalPage, STYLESHEET, type PortalCtx } from './context.ts';
import { dashboard } from './dashboard.ts';

export const PORTAL_COOKIE = 'tg_portal';
export const PORTAL_SESSION_MS = 30 * 60_000;
const SIGN_IN_LIMIT = 10;

function createKey(ctx: PortalCtx, form: URLSearchParams): UiReply {
  const name = (form.get('name') ?? '').trim();
  const key = ctx.ops.createKey({ accountId: ctx.accountId, name: name || null });
  return portalPage(ctx, 'New key', html`<p>Copy the key now: it is shown this once and cannot be read again.</p>
<p class="secret" id="new-key">${key.key}</p><p>Key id <code>${key.id}</code>, prefix <code>${key.prefix}</code>.</p><p><a href="${PORTAL}">Back to your account</a></p>`);
}

/** This account's key, or 404 (another account's key is not told apart from none). */
function ownKey(ctx: PortalCtx, id: string) {
  try {
    const key = ctx.ops.key(id);
    if (key.accountId === ctx.accountId) return key;
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  throw notFound(`You have no key ${id}.`);
}

function revokeKey(ctx: PortalCtx): UiReply {
  ownKey(ctx, ctx.params.id);
  ctx.ops.revokeKey(ctx.params.id);
  return redirect(`${PORTAL}?done=revoked`);
}

function billingOf(ctx: PortalCtx): Billing {
  if (!ctx.billing) throw notFound('Billing is not configured on this gateway.');
  return ctx.billing;
}

async function buyCredits(ctx: PortalCtx, form: URLSearchParams): Promise<UiReply> {
  const session = await billingOf(ctx).checkout(ctx.accountId, { type: 'credits', amount: form.get('amount') ?? '' });
  return redirect(session.url);
}

async function manageBilling(ctx: PortalCtx): Promise<UiReply> {
  return redirect((await billingOf(ctx).portal(ctx.accountId)).url);
}

const ROUTES = new Routes<PortalCtx>([
  ['GET', PORTAL, dashboard],
  ['POST', `${PORTAL}/keys`, createKey],
  ['POST', `${PORTAL}/keys/:id/revoke`, revokeKey],
  ['POST', `${PORTAL}/buy`, buyCredits],
  ['POST', `${PORTAL}/billing`, manageBilling],
] satisfies [string, string, Handler<PortalCtx>][]);

export interface PortalDeps {
  config: Config;
  state: GatewayState;
  storage: Storage & { db: Db };
  billing: Billing | undefined;
  now: () => number;
}

export class Portal {
  private readonly signer: SessionSigner;
  private readonly admin: Admin;
  private readonly throttle = new Throttle(SIGN_IN_LIMIT, 60_000);

  constructor(private readonly deps: PortalDeps) {
    this.signer = new SessionSigner(deriveKey(uiSecret(deps.storage.db), 'portal session'), 'portal', PORTAL_SESSION_MS);
    this.admin = new Admin(deps.storage, deps.now, liveView(deps.state));
  }

  async handle(req: UiRequest, requestId: string): Promise<UiReply> {
    const now = this.deps.now();
    if (req.path === `${PORTAL}/sign-in` && req.method === 'POST') return this.signIn(req, now);
    if (req.method === 'POST' && !sameOrigin(req)) throw crossSite();
    const session = this.signer.verify(readCookie(req.headers, PORTAL_COOKIE), now);
    const key = session && this.activeKey(session.subject, now);
    if (!session || !key) {
      if (req.method === 'GET' || req.method === 'HEAD') return req.path === PORTAL ? signInPage() : redirect(PORTAL);
      throw signedOut();
    }
    if (req.method === 'POST') {
      if (!this.signer.checkCsrf(session, (await req.form()).get('csrf'))) throw badCsrf();
      if (req.path === `${PORTAL}/sign-out`) return redirect(PORTAL, cookieHeader(PORTAL_COOKIE, '', { path: PORTAL, maxAgeS: 0, secure: req.secure }));
    }
    const found = ROUTES.match(req.method, req.path);
    const { config, state, storage, billing } = this.deps;
    const ops = new LocalOperations({ admin: this.admin.as({ by: `portal:${key.id}`, requestId }), config: () => config, now: this.deps.now, log: silent });
    const ctx: PortalCtx = { req, params: found.params, ops, accountId: key.accountId, keyId: key.id, csrf: this.signer.csrf(session), now, config, state, db: storage.db, billing };
    return found.handler(ctx, req.method === 'POST' ? await req.form() : new URLSearchParams());
  }

  private activeKey(id: string, now: number) {
    try {
      const key = this.admin.key(id);
      return keyState(key, now) === 'active' ? key : undefined;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  private async signIn(req: UiRequest, now: number): Promise<UiReply> {
    if (!sameOrigin(req)) throw crossSite();
    const wait = this.throttle.take(req.client, now);
    if (wait > 0) throw tooMany('Too many sign-in attempts from this address; wait a minute.', wait);
    const presented = ((await req.form()).get('key') ?? '').trim();
    const found = isWellFormedKey(presented) ? await this.deps.state.accounts.lookup(hashKey(presented)) : null;
    const key = found && usable(found.key, now) ? found.key : undefined;
    if (!key) return signInPage(401, 'That API key is not valid here (or it was revoked or has expired).');
    const { cookie } = this.signer.issue(key.id, now);
    return redirect(PORTAL, cookieHeader(PORTAL_COOKIE, cookie, { path: PORTAL, maxAgeS: PORTAL_SESSION_MS / 1000, secure: req.secure }));
  }
}

const usable = (k: KeyRecord, now: number) => (k.revokedAt === null || k.revokedAt > now) && (k.expiresAt === null || k.expiresAt > now);

// The portal's operations never log (only a webhook replay does, which it cannot do).
const silent = createLogger('silent');

function signInPage(status = 200, error?: string): UiReply {
  return pageReply(status, page({ title: 'Sign in to your account', stylesheet: STYLESHEET, error }, html`<form method="post" action="${PORTAL}/sign-in" class="stack" id="sign-in">
<label>API key<input name="key" type="password" autocomplete="off" required autofocus></label><button type="submit">Sign in</button></form>
<p class="muted">Paste one of your API keys. It is exchanged for a session of 30 minutes and not kept in the page.</p>`));
}
