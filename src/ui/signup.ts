// Self-serve signup on the public port (SIGNUP=open or checkout; off by default: 404).
// open: POST an email, get an account on the default plan and its first key, shown once.
// checkout: POST an email and a credit pack; the account waits suspended (reason 'signup') and
// the customer goes to Stripe Checkout; checkout.session.completed activates it and issues its
// key (billing/signup-claims.ts), which the success page shows once. Both: at most 5 signups
// per client address an hour (429 with Retry-After), an email already used refused whatever its case.
import type { AdminBackend } from '../admin/backend.ts';
import type { Operations } from '../admin/operations.ts';
import type { Billing } from '../billing/billing.ts';
import { SIGNUP_REASON } from '../billing/signup-claims.ts';
import type { Config } from '../config.ts';
import { EmailTakenError } from '../db/admin.ts';
import { dollars, html, page, type Html } from './html.ts';
import { crossSite, notFound, pageReply, redirect, sameOrigin, tooMany, UiRefusal, type UiReply, type UiRequest } from './http.ts';
import { STYLESHEET } from './portal/context.ts';
import { Throttle } from './throttle.ts';
import type { UiStore } from './ui-store.ts';

export const SIGNUP = '/_tollgate/signup';
export const SIGNUPS_PER_HOUR = 5;
// What a browser's <input type="email"> accepts (WHATWG HTML §4.10.5.1.5), and a length limit.
const EMAIL = /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$/;
const SESSION_ID = /^cs_[A-Za-z0-9_]{1,200}$/;

export interface SignupDeps {
  config: Config;
  /** The operations of the gateway's backend, bound to who acts (the admin API's). */
  operations: AdminBackend['operations'];
  store: UiStore;
  billing: Billing | undefined;
  now: () => number;
}

const frame = (title: string, body: Html, status = 200, error?: string) => pageReply(status, page({ title, stylesheet: STYLESHEET, error }, body), [], true);

export class Signup {
  private readonly throttle = new Throttle(SIGNUPS_PER_HOUR, 3600_000);
  /** The audit log names the signup as who created the account and its key. */
  private readonly ops: Operations;

  constructor(private readonly deps: SignupDeps) {
    this.ops = deps.operations({ by: 'signup', requestId: null });
  }

  async handle(req: UiRequest): Promise<UiReply> {
    const mode = this.deps.config.signup;
    if (mode === 'off') throw notFound('Signup is not open on this gateway.');
    if (req.path === `${SIGNUP}/done` && req.method !== 'POST') return this.done(req);
    if (req.path !== SIGNUP) throw notFound();
    if (req.method !== 'POST') return this.form();
    if (!sameOrigin(req)) throw crossSite();
    const form = await req.form();
    const email = (form.get('email') ?? '').trim();
    if (email.length > 254 || !EMAIL.test(email)) return this.form(400, 'That is not an email address.', email);
    const now = this.deps.now();
    const wait = this.throttle.take(req.client, now);
    if (wait > 0) throw tooMany('Too many signups from this address; try again later.', wait);
    return mode === 'open' ? this.open(email) : this.checkout(req, email, form.get('amount') ?? '');
  }

  private async open(email: string): Promise<UiReply> {
    const { ops } = this;
    let accountId: string;
    try {
      accountId = (await ops.createAccount({ email })).id;
    } catch (err) {
      if (err instanceof EmailTakenError) return this.form(409, 'An account with this email exists already.', email);
      throw err;
    }
    const key = await ops.createKey({ accountId, name: 'signup' });
    return frame('Your API key', shownOnce(key.key, key.id));
  }

  private async checkout(req: UiRequest, email: string, amount: string): Promise<UiReply> {
    const { billing, store } = this.deps;
    if (!billing) throw new UiRefusal(503, 'Billing is not configured on this gateway.');
    // An earlier signup that never paid keeps its email: it may start its checkout again.
    const held = (await this.ops.listAccounts({ limit: 1, email })).data[0];
    if (held && !(held.status === 'suspended' && held.statusReason === SIGNUP_REASON)) return this.form(409, 'An account with this email exists already.', email);
    let accountId = held?.id;
    if (!accountId) {
      try {
        accountId = (await this.ops.createAccount({ email })).id;
      } catch (err) {
        if (err instanceof EmailTakenError) return this.form(409, 'An account with this email exists already.', email);
        throw err;
      }
      await store.holdForSignup(accountId);
    }
    const origin = `${req.secure ? 'https' : 'http'}://${req.headers.host}`;
    const session = await billing.checkout(accountId, { type: 'credits', amount }, {
      success: `${origin}${SIGNUP}/done?session_id={CHECKOUT_SESSION_ID}`, cancel: `${origin}${SIGNUP}`,
    });
    await store.recordSignupClaim(session.id, accountId, this.deps.now());
    return redirect(session.url);
  }

  private async done(req: UiRequest): Promise<UiReply> {
    const sessionId = req.query.get('session_id') ?? '';
    if (!SESSION_ID.test(sessionId)) throw notFound('No such signup.');
    const claim = await this.deps.store.claimSignupKey(sessionId, this.deps.now());
    switch (claim.state) {
      case 'unknown': throw notFound('No such signup.');
      case 'waiting': return frame('Confirming your payment', html`<p id="waiting">Stripe has not confirmed the payment yet. Reload this page in a few seconds.</p>`, 202);
      case 'shown': return frame('Key already shown', html`<p id="shown">The key of this signup (${claim.keyId}) was shown once already and cannot be shown again. Ask the operator for a new key if it was lost.</p>`, 410);
      case 'ready': return frame('Your API key', shownOnce(claim.key, claim.keyId));
    }
  }

  private form(status = 200, error?: string, email = ''): UiReply {
    const packs = this.deps.config.stripe?.creditPacks ?? [];
    const checkout = this.deps.config.signup === 'checkout';
    return frame('Sign up', html`<form method="post" action="${SIGNUP}" class="stack" id="signup">
<label>Email<input name="email" type="email" required value="${email}" autocomplete="email"></label>
${checkout ? html`<label>First credits<select name="amount">${packs.map((m) => html`<option value="${(m / 1e6).toFixed(2)}">${dollars(m)}</option>`)}</select></label>` : ''}
<button type="submit">${checkout ? 'Continue to payment' : 'Create my key'}</button></form>
<p class="muted">${checkout ? 'Your key is shown once the payment is confirmed.' : 'Your key is shown once, on the next page.'}</p>`, status, error);
  }
}

function shownOnce(key: string, keyId: string): Html {
  return html`<p>Copy the key now: it is shown this once and cannot be read again.</p><p class="secret" id="new-key">${key}</p>
<p>Key id <code>${keyId}</code>. Send it as <code>Authorization: Bearer &lt;key&gt;</code>; see your usage at <a href="/_tollgate/portal">your account page</a>.</p>`;
}
