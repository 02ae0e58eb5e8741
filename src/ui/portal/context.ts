// What a portal page handler gets: the signed-in key's account, operations bound to that key
// (the audit log names it; on either backend), the pages' store, the session's CSRF token and
// the page frame.
import type { Operations } from '../../admin/operations.ts';
import type { Billing } from '../../billing/billing.ts';
import type { Config } from '../../config.ts';
import type { UiStore } from '../ui-store.ts';
import { CSS_FILE } from '../css.ts';
import { page, type Html } from '../html.ts';
import { pageReply, type UiReply, type UiRequest } from '../http.ts';

export const PORTAL = '/_tollgate/portal';
export const STYLESHEET = `/_tollgate/assets/${CSS_FILE}`;

export interface PortalCtx {
  req: UiRequest;
  params: Record<string, string>;
  ops: Operations;
  accountId: string;
  /** The key the session was opened with. */
  keyId: string;
  csrf: string;
  now: number;
  config: Config;
  store: UiStore;
  billing: Billing | undefined;
}

export function portalPage(ctx: PortalCtx, title: string, body: Html, opts: { status?: number; notice?: string } = {}): UiReply {
  return pageReply(opts.status ?? 200, page({
    title, stylesheet: STYLESHEET, nav: [[PORTAL, 'Dashboard']], signOut: { action: `${PORTAL}/sign-out`, csrf: ctx.csrf }, notice: opts.notice,
  }, body), [], true);
}
