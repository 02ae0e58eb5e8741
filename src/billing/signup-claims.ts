// SIGNUP=checkout (src/ui/signup.ts): an account waits, suspended with the reason 'signup', for
// its Checkout session to be paid. When checkout.session.completed credits that session, the
// account is made active and its first key issued, in the webhook's transaction, once; the key
// is kept sealed (AES-256-GCM, under a key derived from the database's UI secret and the session
// id) until the success page shows it, once, and then forgotten. The SQLite file's claims are
// here; PostgreSQL's, sealed alike, in pg/pg-ui.ts.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { recordAudit } from '../db/audit.ts';
import type { Db } from '../db/open.ts';
import { displayPrefix, generateKey, hashKey, newId } from '../keys.ts';
import type { ChangeFeed } from '../storage/ports.ts';

export const SIGNUP_REASON = 'signup';
const SIGNUP_ACTOR = { by: 'signup', requestId: null };

/** The secret migration 0010 made for this file (migrations/pg/0011 for a PostgreSQL database). */
export function uiSecret(db: Db): string {
  return db.prepare("SELECT value FROM ui_settings WHERE name = 'secret'").pluck().get() as string;
}

function sealKey(secret: string, sessionId: string): Buffer {
  return createHmac('sha256', secret).update(`tollgate signup claim ${sessionId}`).digest();
}

/** A signup's key sealed under the database's UI secret (pg/pg-ui.ts seals the same way). */
export function seal(secret: string, sessionId: string, text: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(secret, sessionId), iv);
  const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

export function unseal(secret: string, sessionId: string, sealed: string): string {
  const raw = Buffer.from(sealed, 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', sealKey(secret, sessionId), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
}

export function recordSignupClaim(db: Db, sessionId: string, accountId: string, now: number): void {
  db.prepare('INSERT INTO signup_claims (session_id, account_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(sessionId, accountId, now);
}

/**
 * Called with the credits of a paid session (inside the webhook's transaction): a signup's
 * session activates its account and issues its key; any other session is left alone.
 */
export function completeSignup(db: Db, changes: ChangeFeed, sessionId: string, now: number): void {
  const claim = db.prepare('SELECT account_id AS accountId FROM signup_claims WHERE session_id = ? AND key_id IS NULL').get(sessionId) as { accountId: string } | undefined;
  if (!claim) return;
  const key = generateKey();
  const id = newId('key');
  const hash = hashKey(key);
  db.prepare('INSERT INTO api_keys (id, account_id, name, hash, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run(id, claim.accountId, 'signup', hash, displayPrefix(key), now);
  db.prepare("UPDATE accounts SET status = 'active', status_reason = NULL WHERE id = ? AND status_reason = ?").run(claim.accountId, SIGNUP_REASON);
  db.prepare('UPDATE signup_claims SET key_id = ?, sealed = ? WHERE session_id = ?').run(id, seal(uiSecret(db), sessionId, key), sessionId);
  recordAudit(db, SIGNUP_ACTOR, now, 'key.create', id, claim.accountId, { name: 'signup', expiresAt: null, checkoutSession: sessionId });
  changes.publish({ kind: 'account', id: claim.accountId });
  changes.publish({ kind: 'key', hash });
}

export type Claim = { state: 'unknown' } | { state: 'waiting' } | { state: 'shown'; keyId: string } | { state: 'ready'; key: string; keyId: string; accountId: string };

/** The key of a paid signup, the first time it is asked for; after that only that it was shown. */
export function claimSignupKey(db: Db, sessionId: string, now: number): Claim {
  return db.transaction((): Claim => {
    const row = db.prepare('SELECT account_id AS accountId, key_id AS keyId, sealed FROM signup_claims WHERE session_id = ?').get(sessionId) as
      { accountId: string; keyId: string | null; sealed: string | null } | undefined;
    if (!row) return { state: 'unknown' };
    if (row.keyId === null) return { state: 'waiting' };
    if (row.sealed === null) return { state: 'shown', keyId: row.keyId };
    db.prepare('UPDATE signup_claims SET sealed = NULL, shown_at = ? WHERE session_id = ?').run(now, sessionId);
    return { state: 'ready', key: unseal(uiSecret(db), sessionId, row.sealed), keyId: row.keyId, accountId: row.accountId };
  }).immediate();
}
