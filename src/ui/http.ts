// What a page handler sees of a request and gives back, the same on the admin listener and the
// public port; the listeners adapt their own request to it and write the reply. Every page goes
// out with a strict Content-Security-Policy (nothing but this origin's stylesheet, no script, no
// framing) and is never cached.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.ts';
import { readBody } from '../pipeline/read-body.ts';
import { CSS, CSS_FILE } from './css.ts';

export interface UiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The client's address (behind a trusted proxy, the one it names). */
  client: string;
  /** Came over TLS: to the gateway, or to a trusted proxy that says so (X-Forwarded-Proto). */
  secure: boolean;
  /** The urlencoded body of a POST. */
  form(): Promise<URLSearchParams>;
}

export interface UiReply {
  status: number;
  /** Flat [name, value, …]. */
  headers: string[];
  body: string;
}

const policy = (formAction: string) => `default-src 'none'; style-src 'self'; img-src 'self'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`;
export const CSP = policy("'self'");
/**
 * The customer's pages: a form there may be answered with a redirect to Stripe (Buy credits,
 * Manage billing, a checkout signup), and form-action covers the redirect's target too.
 */
export const CUSTOMER_CSP = policy("'self' https://checkout.stripe.com https://billing.stripe.com");
const headersOf = (csp: string) => [
  'content-type', 'text/html; charset=utf-8', 'content-security-policy', csp, 'x-content-type-options', 'nosniff',
  'referrer-policy', 'no-referrer', 'cache-control', 'no-store', 'x-frame-options', 'DENY',
];
const PAGE_HEADERS = headersOf(CSP);
const CUSTOMER_HEADERS = headersOf(CUSTOMER_CSP);

/** Thrown by a handler: rendered as an error page with this status. */
export class UiRefusal extends Error {
  constructor(readonly status: number, message: string, readonly headers: string[] = []) {
    super(message);
  }
}

export const notFound = (what = 'This page does not exist.') => new UiRefusal(404, what);
export const crossSite = () => new UiRefusal(403, 'This form was sent from another site; it was refused.');
export const badCsrf = () => new UiRefusal(403, 'The form\u2019s security token is missing or wrong: reload the page and try again.');
export const signedOut = () => new UiRefusal(401, 'Your session has ended or is not valid: sign in again.');
/** 429 with Retry-After, `waitMs` from a Throttle. */
export const tooMany = (message: string, waitMs: number) => new UiRefusal(429, message, ['retry-after', String(Math.ceil(waitMs / 1000))]);

export function pageReply(status: number, body: string, headers: string[] = [], customer = false): UiReply {
  return { status, headers: [...(customer ? CUSTOMER_HEADERS : PAGE_HEADERS), ...headers], body };
}

export function redirect(location: string, headers: string[] = []): UiReply {
  return { status: 303, headers: [...PAGE_HEADERS, 'location', location, ...headers], body: '' };
}

/** The stylesheet at `${prefix}${CSS_FILE}`, or undefined for any other path. */
export function stylesheet(path: string, prefix: string): UiReply | undefined {
  if (path !== prefix + CSS_FILE) return undefined;
  return { status: 200, headers: ['content-type', 'text/css; charset=utf-8', 'cache-control', 'public, max-age=31536000, immutable', 'x-content-type-options', 'nosniff'], body: CSS };
}

export function cookieHeader(name: string, value: string, { path, maxAgeS, secure }: { path: string; maxAgeS: number; secure: boolean }): string[] {
  return ['set-cookie', `${name}=${value}; Path=${path}; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`];
}

export function readCookie(headers: IncomingHttpHeaders, name: string): string | undefined {
  for (const part of (headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * A POST from a page of this origin. A browser marks every request with Sec-Fetch-Site, which no
 * page can forge: only 'same-origin' passes. Without it (an older browser), Origin must be ours;
 * under Referrer-Policy no-referrer a form's Origin is "null", which is refused then. A client
 * that sends neither is no browser and cannot be led by another site (it still needs the CSRF token).
 */
export function sameOrigin(req: UiRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin';
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  return origin === `${req.secure ? 'https' : 'http'}://${req.headers.host ?? ''}`;
}

const FORM_LIMIT = 16 * 1024;

/** Reads an application/x-www-form-urlencoded body (anything else: 415). */
export async function readForm(req: IncomingMessage, timeoutMs: number): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0].trim().toLowerCase();
  let raw: Buffer;
  try {
    raw = await readBody(req, FORM_LIMIT, timeoutMs);
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'PAYLOAD_TOO_LARGE') throw new UiRefusal(413, 'The form is too large.');
    throw err;
  }
  if (type !== 'application/x-www-form-urlencoded') throw new UiRefusal(415, 'Send the form as application/x-www-form-urlencoded.');
  return new URLSearchParams(raw.toString('utf8'));
}

/** The request came over TLS, or through a trusted proxy that says it did. */
export function isSecure(req: IncomingMessage, viaTrustedProxy: boolean): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  const proto = req.headers['x-forwarded-proto'];
  return viaTrustedProxy && typeof proto === 'string' && proto.split(',', 1)[0].trim().toLowerCase() === 'https';
}
