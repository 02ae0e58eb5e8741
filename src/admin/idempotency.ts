// Idempotency-Key on admin POSTs (the IETF httpapi draft, as Stripe does it): the first answer is
// kept 24 h per token and key; a retry with the same body gets it again without the action being
// done twice, the same key with another request gets 422. The answer is written in the action's
// own transaction (server.ts, AdminBackend.atomically), so no crash can leave an action done and
// its answer unkept. Each backend keeps the rows in its admin_idempotency table.
//
// Answers are stored encrypted (AES-256-GCM) with a key derived from the admin token and the
// Idempotency-Key: a created API key is in its answer, and the database holds only hashes of
// keys. Without the token (which is not stored) the rows are of no use.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import type { Db } from '../db/open.ts';
import { writing } from '../db/sqlite-busy.ts';
import type { MaybePromise } from '../storage/ports.ts';

export const KEEP_MS = 24 * 3_600_000;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface StoredAnswer { status: number; body: string; contentType: string }

/** What a request is, for telling a retry from another request under the same key. */
export function requestHash(method: string, path: string, body: Buffer | undefined): string {
  return createHash('sha256').update(`${method} ${path}\n`).update(body ?? Buffer.alloc(0)).digest('base64url');
}

function cipherKey(token: string, key: string): Buffer {
  return createHmac('sha256', token).update(`tollgate idempotency\u0000${key}`).digest();
}

/** An answer as kept: what the request was, its status and the sealed body. */
export interface KeptRow { hash: string; status: number; body: Buffer }

/** Where answers are kept: the admin_idempotency table of a backend, in the caller's transaction. */
export interface KeptRows {
  find(actor: string, key: string, since: number): MaybePromise<KeptRow | undefined>;
  /** Keeps the row unless one younger than `olderThan` is there, and forgets rows before `olderThan`. */
  save(actor: string, key: string, row: KeptRow, at: number, olderThan: number): MaybePromise<void>;
}

export function sqliteKeptRows(db: Db): KeptRows {
  const q = {
    find: db.prepare('SELECT request_hash AS hash, status, body FROM admin_idempotency WHERE actor = ? AND key = ? AND created_at >= ?'),
    save: db.prepare(`INSERT INTO admin_idempotency (actor, key, request_hash, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (actor, key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status, body = excluded.body,
        created_at = excluded.created_at WHERE created_at < ?`),
    prune: db.prepare('DELETE FROM admin_idempotency WHERE created_at < ?'),
  };
  return {
    find: (actor, key, since) => q.find.get(actor, key, since) as KeptRow | undefined,
    // Inside the action's transaction, or alone (a route that is not atomic): StorageBusy when the file is locked.
    save: (actor, key, row, at, olderThan) => writing(() => {
      q.prune.run(olderThan);
      q.save.run(actor, key, row.hash, row.status, row.body, at, olderThan);
    }),
  };
}

export class IdempotencyStore {
  constructor(private readonly rows: KeptRows, private readonly now: () => number) {}

  /** The answer kept for this token and key, or 'reused' when the key was used for another request. */
  find(actor: string, token: string, key: string, hash: string): MaybePromise<StoredAnswer | 'reused' | undefined> {
    const row = this.rows.find(actor, key, this.now() - KEEP_MS);
    return row instanceof Promise ? row.then((r) => unseal(r, token, key, hash)) : unseal(row, token, key, hash);
  }

  /** Keeps an answer (and forgets those past KEEP_MS). Call inside the action's transaction. */
  save(actor: string, token: string, key: string, hash: string, answer: StoredAnswer): MaybePromise<void> {
    const t = this.now();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', cipherKey(token, key), iv);
    const sealed = Buffer.concat([cipher.update(JSON.stringify({ body: answer.body, contentType: answer.contentType }), 'utf8'), cipher.final()]);
    return this.rows.save(actor, key, { hash, status: answer.status, body: Buffer.concat([iv, cipher.getAuthTag(), sealed]) }, t, t - KEEP_MS);
  }
}

function unseal(row: KeptRow | undefined, token: string, key: string, hash: string): StoredAnswer | 'reused' | undefined {
  if (!row) return undefined;
  if (row.hash !== hash) return 'reused';
  const iv = row.body.subarray(0, IV_BYTES);
  const tag = row.body.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', cipherKey(token, key), iv).setAuthTag(tag);
  const plain = Buffer.concat([decipher.update(row.body.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  return { status: row.status, ...(JSON.parse(plain) as { body: string; contentType: string }) };
}
