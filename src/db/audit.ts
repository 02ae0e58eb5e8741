// The audit log (migration 0007): who changed what, written by Admin in the transaction of the
// change, so a change is never without its row nor a row without its change.
import type { Db } from './open.ts';

/** Who acts: 'cli', or 'token:<fingerprint>' for an admin API token; and the API request's id. */
export interface Actor {
  by: string;
  requestId: string | null;
}

export const CLI_ACTOR: Actor = Object.freeze({ by: 'cli', requestId: null });

export type AuditAction =
  | 'account.create' | 'account.update' | 'account.alerts'
  | 'key.create' | 'key.revoke' | 'key.rotate'
  | 'credits.grant' | 'credits.deduct'
  | 'webhook.replay' | 'notification.resend';

export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: AuditAction;
  target: string;
  accountId: string | null;
  change: Record<string, unknown>;
  requestId: string | null;
}

/** A page of a listing and the cursor of the next one (null: this was the last). */
export interface Page<T> {
  data: T[];
  next: string | null;
}

const COLS = `id, at, actor, action, target, account_id AS accountId, change, request_id AS requestId`;

export function recordAudit(db: Db, actor: Actor, at: number, action: AuditAction, target: string, accountId: string | null,
  change: Record<string, unknown>): void {
  db.prepare('INSERT INTO audit_log (at, actor, action, target, account_id, change, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .run(at, actor.by, action, target, accountId, JSON.stringify(change), actor.requestId);
}

/** Newest first; `after` is the id of the last entry of the previous page. */
export function auditPage(db: Db, { accountId, limit, after }: { accountId?: string; limit: number; after?: number }): Page<AuditEntry> {
  const before = after ?? Number.MAX_SAFE_INTEGER;
  // Two statements, so the account's filter uses audit_log_account (account_id, id).
  const rows = (accountId === undefined
    ? db.prepare(`SELECT ${COLS} FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?`).all(before, limit + 1)
    : db.prepare(`SELECT ${COLS} FROM audit_log WHERE account_id = ? AND id < ? ORDER BY id DESC LIMIT ?`).all(accountId, before, limit + 1)
  ) as (Omit<AuditEntry, 'change'> & { change: string })[];
  const data = rows.slice(0, limit).map((r) => ({ ...r, change: JSON.parse(r.change) as Record<string, unknown> }));
  return { data, next: rows.length > limit ? String(data[data.length - 1].id) : null };
}
