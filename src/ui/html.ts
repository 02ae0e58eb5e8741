// HTML built from template literals: every interpolated value is escaped unless it is Html
// already (made by `html` itself), so a page cannot carry markup from data by mistake.
import { formatMicros } from '../money.ts';

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escape(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

function render(v: Part): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return escape(v);
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

export const dollars = (micros: number): string => `$${formatMicros(micros)}`;
export const when = (ms: number | string | null): string => (ms === null ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC');

/** A POST form with its CSRF token; `body` holds the fields and the button. */
export function form(action: string, csrf: string, body: Html, cls = 'inline'): Html {
  return html`<form method="post" action="${action}" class="${cls}"><input type="hidden" name="csrf" value="${csrf}">${body}</form>`;
}

export interface Layout {
  title: string;
  stylesheet: string;
  /** Links of the top bar: [href, label]. */
  nav?: readonly (readonly [string, string])[];
  /** A sign-out form's action and the CSRF token. */
  signOut?: { action: string; csrf: string };
  /** A message shown above the page (from a redirect after an action). */
  notice?: string;
  error?: string;
}

export function page(l: Layout, body: Html): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${l.title} · Tollgate</title><link rel="stylesheet" href="${l.stylesheet}"></head>
<body><header><strong class="brand">Tollgate</strong><nav>${(l.nav ?? []).map(([href, label]) => html`<a href="${href}">${label}</a>`)}</nav>${
  l.signOut ? form(l.signOut.action, l.signOut.csrf, html`<button type="submit" class="link" id="sign-out">Sign out</button>`) : ''}</header>
<main><h1>${l.title}</h1>${l.notice ? html`<p class="notice" role="status">${l.notice}</p>` : ''}${l.error ? html`<p class="error" role="alert">${l.error}</p>` : ''}
${body}</main></body></html>`.text;
}

/** A table of rows; `empty` when there are none. */
export function table(head: readonly string[], rows: readonly Html[], empty = 'Nothing yet.', id?: string): Html {
  if (rows.length === 0) return html`<p class="empty">${empty}</p>`;
  return html`<table${id ? html` id="${id}"` : ''}><thead><tr>${head.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows}</tbody></table>`;
}
