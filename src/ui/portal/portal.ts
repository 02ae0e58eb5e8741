// The customer portal on the public port (/_tollgate/portal). Sign in by pasting an API key: it
// is checked as the request path checks it and exchanged for a signed session cookie (30 min,
// Path=/_tollgate/portal) naming the key's id, never the key; a session ends as soon as its key
// is revoked or expires. Every POST must come from this origin and carry the session's CSRF
// token; a key id of another account is answered 404, as one that does not exist.
import type { AdminBackend } from '../../admin/backend.ts';
import type { KeyDoc } from '../../admin/shapes.ts';
import type { Billing } from '../../billing/billing.ts';
import type { Config } from '../../config.ts';
import { NotFoundError } from '../../db/admin.ts';
import { hashKey, isWellFormedKey } from '../../keys.ts';
import type { GatewayState } from '../../state/state.ts';
import type { KeyRecord } from '../../storage/records.ts';
import { html, page } from '../html.ts';
import { badCsrf, cookieHeader, crossSite, notFound, pageReply, readCookie, redirect, sameOrigin, signedOut, tooMany, type UiReply, type UiRequest } from '../http.ts';
import { Routes, type Handler } from '../routes.ts';
import { deriveKey, SessionSigner } from '../session.ts';
import { Throttle } from '../throttle.ts';
import type { UiStore } from '../ui-store.ts';
import { PORTAL, portalPage, STYLESHEET, type PortalCtx } from './context.ts';
import { dashboard } from './dashboard.ts';

export const PORTAL_COOKIE = 'tg_portal';
export const PORTAL_SESSION_MS = 30 * 60_000;
const SIGN_IN_LIMIT = 10;

async function createKey(ctx: PortalCtx, form: URLSearchParams): Promise<UiReply> {
  const name = (form.get('name') ?? '').trim();
  const key = await ctx.ops.createKey({ accountId: ctx.accountId, name: name || null });
  return portalPage(ctx, 'New key', html`<p>Copy the key now: it is shown this once and cannot be read again.</p>
<p class="secret" id="new-key">${key.key}</p><p>Key id <code>${key.id}</code>, prefix <code>${key.prefix}</code>.</p><p><a href="${PORTAL}">Back to your account</a></p>`);
}

/** This account's key, or 404 (another account's key is not told apart from none). */
async function ownKey(ctx: PortalCtx, id: string): Promise<KeyDoc> {
  try {
    const key = await ctx.ops.key(id);
    if (key.accountId === ctx.accountId) return key;
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  throw notFound(`You have no key ${id}.`);
}

async function revokeKey(ctx: PortalCtx): Promise<UiReply> {
  await ownKey(ctx, ctx.params.id);
  await ctx.ops.revokeKey(ctx.params.id);
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
  /** Reads the key a sign-in presents as the request path does. */
  state: GatewayState;
  /** The operations of the gateway's backend, bound to who acts (the admin API's). */
  operations: AdminBackend['operations'];
  store: UiStore;
  billing: Billing | undefined;
  now: () => number;
}

export class Portal {
  private signing: SessionSigner | undefined;
  private readonly throttle = new Throttle(SIGN_IN_LIMIT, 60_000);
  /** What the portal reads as nobody in particular (a session's key). */
  private readonly reader: ReturnType<AdminBackend['operations']>;

  constructor(private readonly deps: PortalDeps) {
    this.reader = deps.operations({ by: 'portal', requestId: null });
  }

  /** Its key comes from the database's secret: every gateway on it signs and reads the same cookies. */
  private async signer(): Promise<SessionSigner> {
    return (this.signing ??= new SessionSigner(deriveKey(await this.deps.store.secret(), 'portal session'), 'portal', PORTAL_SESSION_MS));
  }

  async handle(req: UiRequest, requestId: string): Promise<UiReply> {
    const now = this.deps.now();
    const signer = await this.signer();
    if (req.path === `${PORTAL}/sign-in` && req.method === 'POST') return this.signIn(req, signer, now);
    if (req.method === 'POST' && !sameOrigin(req)) throw crossSite();
    const session = signer.verify(readCookie(req.headers, PORTAL_COOKIE), now);
    const key = session && await this.activeKey(session.subject);
    if (!session || !key) {
      if (req.method === 'GET' || req.method === 'HEAD') return req.path === PORTAL ? signInPage() : redirect(PORTAL);
      throw signedOut();
    }
    if (req.method === 'POST') {
      if (!signer.checkCsrf(session, (await req.form()).get('csrf'))) throw badCsrf();
      if (req.path === `${PORTAL}/sign-out`) return redirect(PORTAL, cookieHeader(PORTAL_COOKIE, '', { path: PORTAL, maxAgeS: 0, secure: req.secure }));
    }
    const found = ROUTES.match(req.method, req.path);
    const { config, store, billing } = this.deps;
    const ops = this.deps.operations({ by: `portal:${key.id}`, requestId });
    const ctx: PortalCtx = { req, params: found.params, ops, accountId: key.accountId, keyId: key.id, csrf: signer.csrf(session), now, config, store, billing };
    return found.handler(ctx, req.method === 'POST' ? await req.form() : new URLSearchParams());
  }

  private async activeKey(id: string): Promise<KeyDoc | undefined> {
    try {
      const key = await this.reader.key(id);
      return key.state === 'active' ? key : undefined;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  private async signIn(req: UiRequest, signer: SessionSigner, now: number): Promise<UiReply> {
    if (!sameOrigin(req)) throw crossSite();
    const wait = this.throttle.take(req.client, now);
    if (wait > 0) throw tooMany('Too many sign-in attempts from this address; wait a minute.', wait);
    const presented = ((await req.form()).get('key') ?? '').trim();
    const found = isWellFormedKey(presented) ? await this.deps.state.accounts.lookup(hashKey(presented)) : null;
    const key = found && usable(found.key, now) ? found.key : undefined;
    if (!key) return signInPage(401, 'That API key is not valid here (or it was revoked or has expired).');
    const { cookie } = signer.issue(key.id, now);
    return redirect(PORTAL, cookieHeader(PORTAL_COOKIE, cookie, { path: PORTAL, maxAgeS: PORTAL_SESSION_MS / 1000, secure: req.secure }));
  }
}

const usable = (k: KeyRecord, now: number) => (k.revokedAt === null || k.revokedAt > now) && (k.expiresAt === null || k.expiresAt > now);

function signInPage(status = 200, error?: string): UiReply {
  return pageReply(status, page({ title: 'Sign in to your account', stylesheet: STYLESHEET, error }, html`<form method="post" action="${PORTAL}/sign-in" class="stack" id="sign-in">
<label>API key<input name="key" type="password" autocomplete="off" required autofocus></label><button type="submit">Sign in</button></form>
<p class="muted">Paste one of your API keys. It is exchanged for a session of 30 minutes and not kept in the page.</p>`));
}
