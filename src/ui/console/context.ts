// What a console page handler gets: the request, the operator's operations (bound to the
// signed-in token, so the audit log names it; on either backend), the pages' store, the session's
// CSRF token, and the page frame.
import type { Config } from '../../config.ts';
import type { Operations } from '../../admin/operations.ts';
import type { UiStore } from '../ui-store.ts';
import { CSS_FILE } from '../css.ts';
import { page, type Html } from '../html.ts';
import { pageReply, type UiReply, type UiRequest } from '../http.ts';

export interface ConsoleCtx {
  req: UiRequest;
  params: Record<string, string>;
  ops: Operations;
  store: UiStore;
  config: Config;
  now: number;
  csrf: string;
}

export const STYLESHEET = `/assets/${CSS_FILE}`;
export const NAV = [['/', 'Overview'], ['/accounts', 'Accounts'], ['/webhooks', 'Webhooks'], ['/config', 'Configuration']] as const;

export function consolePage(ctx: ConsoleCtx, title: string, body: Html, opts: { status?: number; notice?: string; error?: string } = {}): UiReply {
  return pageReply(opts.status ?? 200, page({
    title, stylesheet: STYLESHEET, nav: NAV, signOut: { action: '/sign-out', csrf: ctx.csrf }, notice: opts.notice, error: opts.error,
  }, body));
}

/** A path segment of ours, percent-encoded. */
export const seg = encodeURIComponent;
