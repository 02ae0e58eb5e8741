// Who may call the admin API: a bearer token among ADMIN_TOKEN's. Each presented token is hashed
// and its digest compared with every configured one in constant time (equal-length SHA-256
// digests through timingSafeEqual, no early exit), so neither a token's content nor which one
// matched shows in the timing. The audit log names a token by a short fingerprint, never itself.
import { createHash, timingSafeEqual } from 'node:crypto';

const BEARER = /^Bearer +(\S+) *$/i;

const digest = (token: string): Buffer => createHash('sha256').update(token).digest();

/** 'token:' and 12 hex digits of the token's SHA-256: enough to tell tokens apart, useless to guess one. */
export function fingerprint(token: string): string {
  return `token:${digest(token).toString('hex').slice(0, 12)}`;
}

export interface Caller {
  /** The audit log's name for it. */
  actor: string;
  /** The token itself: the key of its stored Idempotency-Key answers is derived from it. */
  token: string;
}

export function adminAuth(tokens: readonly string[]): (authorization: string | undefined) => Caller | undefined {
  const known = tokens.map((token) => ({ token, digest: digest(token), actor: fingerprint(token) }));
  return (authorization) => {
    const presented = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
    if (presented === undefined) return undefined;
    const d = digest(presented);
    let found: (typeof known)[number] | undefined;
    for (const k of known) if (timingSafeEqual(d, k.digest)) found = k;
    return found && { actor: found.actor, token: found.token };
  };
}
