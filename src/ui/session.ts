// Stateless signed sessions: the cookie is base64url(JSON {kind, subject, exp, nonce}) and an
// HMAC-SHA256 of it, so a session survives restarts and nothing is stored per sign-in. The CSRF
// token of a session is an HMAC of its nonce: bound to it, unknown to another site, checked in
// constant time.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface Session {
  kind: 'console' | 'portal';
  /** Console: a digest of the admin token signed in with; portal: the API key's id. */
  subject: string;
  /** Milliseconds since the epoch. */
  exp: number;
  nonce: string;
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export class SessionSigner {
  constructor(private readonly key: Buffer, readonly kind: Session['kind'], readonly ttlMs: number) {}

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }

  issue(subject: string, now: number): { cookie: string; session: Session } {
    const session: Session = { kind: this.kind, subject, exp: now + this.ttlMs, nonce: randomBytes(16).toString('base64url') };
    const body = b64(JSON.stringify(session));
    return { cookie: `${body}.${this.mac(body)}`, session };
  }

  /** The session a cookie carries, if it is ours, of this kind and not expired. */
  verify(cookie: string | undefined, now: number): Session | undefined {
    if (!cookie) return undefined;
    const dot = cookie.indexOf('.');
    if (dot < 1) return undefined;
    const body = cookie.slice(0, dot);
    if (!same(cookie.slice(dot + 1), this.mac(body))) return undefined;
    let s: Session;
    try {
      s = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Session;
    } catch {
      return undefined;
    }
    if (s.kind !== this.kind || typeof s.subject !== 'string' || typeof s.exp !== 'number' || typeof s.nonce !== 'string') return undefined;
    return now < s.exp ? s : undefined;
  }

  csrf(session: Session): string {
    return this.mac(`csrf:${session.nonce}`);
  }

  checkCsrf(session: Session, token: string | null): boolean {
    return token !== null && same(token, this.csrf(session));
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A key for one purpose derived from a secret (HMAC as a KDF, as HKDF's extract step). */
export function deriveKey(secret: string, purpose: string): Buffer {
  return createHmac('sha256', secret).update(`tollgate ${purpose}`).digest();
}
