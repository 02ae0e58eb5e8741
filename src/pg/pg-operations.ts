// What the CLI does on PostgreSQL (DATABASE_URL): accounts, keys, credits, webhook events, the
// audit log and the config, each change in one transaction with its audit row and, where a node
// must hear of it, its change row; usage and requests are in pg-usage-operations.ts, notifications
// in pg-notify-operations.ts. Validation, refusals and documents are the SQLite
// side's (db/admin.ts, admin/operations.ts, admin/shapes.ts), so both answer alike.
import { configDoc } from '../admin/config.ts';
import { knownPlan, type Operations } from '../admin/operations.ts';
import { accountDoc, auditDoc, eventDoc, keyDoc as keyShape, ledgerEntryDoc, type Page } from '../admin/shapes.ts';
import type { StripeEvent } from '../billing/stripe-events.ts';
import { apply } from '../billing/webhooks.ts';
import type { Config } from '../config.ts';
import {
  ConflictError, EmailTakenError, InsufficientBalanceError, InvalidInputError, NotFoundError,
  type Account, type AccountChange, type ApiKey, type WebhookEvent,
} from '../db/admin-types.ts';
import type { AuditAction, AuditEntry } from '../db/audit.ts';
import { displayPrefix, generateKey, hashKey, newId } from '../keys.ts';
import { createLogger, type Logger } from '../log.ts';
import { formatMicros } from '../money.ts';
import type { EventLog, LeaseHolder } from '../storage/ports.ts';
import { createPgBilling } from './pg-billing.ts';
import { recordChange } from './pg-changes.ts';
import { HELD_MICROS } from './pg-leases.ts';
import { pgNotifyOperations, type NotifyOperations } from './pg-notify-operations.ts';
import { pgUsageOperations, type UsageOperations } from './pg-usage-operations.ts';
import { transaction, type Client, type Pool } from './pool.ts';

type Queryable = Client | Pool;
type KeyRow = ApiKey & { hash: string };

const ACCOUNT = `a.id, a.email, a.name, a.plan, a.status, a.status_reason AS "statusReason", ${HELD_MICROS} AS "balanceMicros", a.created_at AS "createdAt"`;
const KEY = `id, account_id AS "accountId", name, prefix, created_at AS "createdAt", expires_at AS "expiresAt", revoked_at AS "revokedAt",
  replaced_by AS "replacedBy", NULL::bigint AS "lastUsedAt", hash`;
const EVENT = 'id, type, status, note, attempts, received_at AS "receivedAt", applied_at AS "appliedAt"';
const AUDIT = 'id, at, actor, action, target, account_id AS "accountId", change, request_id AS "requestId"';
/** The fields of an account an operator changes, and the audit log's diff of them. */
const ACCOUNT_FIELDS = ['name', 'email', 'plan', 'status', 'statusReason'] as const;

/**
 * Moves $2 (signed) micro-dollars into the balance and writes its ledger row, in one statement;
 * no row when the balance would leave 0 … 2^53 − 1 (its CHECK), and then nothing moves.
 */
const MOVE = `WITH a AS (UPDATE accounts SET balance_micros = balance_micros + $2 WHERE id = $1
    AND balance_micros + $2 BETWEEN 0 AND 9007199254740991 RETURNING balance_micros AS after)
  INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
  SELECT $1, $2, after, $3, $4, $5 FROM a RETURNING balance_after_micros AS after`;

/**
 * Where a listing's page starts: the time of the row its `after` names. Rows are ordered by
 * (time, id), where SQLite orders by rowid: only rows of the same millisecond may differ in order.
 */
const CURSOR = {
  account: 'SELECT created_at AS at FROM accounts WHERE id = $1',
  key: 'SELECT created_at AS at FROM api_keys WHERE id = $1',
  event: 'SELECT received_at AS at FROM webhook_events WHERE id = $1',
} as const;

/** Who the changes are from: no node (every node hears them from the changes table). */
const CLI_NODE = '';
/** migrations/pg/0001: one account per email, ignoring case. */
const EMAIL_INDEX = 'accounts_email_nocase';
const UNIQUE_VIOLATION = '23505';

/** One more row than asked says whether there is a next page; its cursor is the last row's id. */
function page<T extends { id: string | number }>(rows: T[], limit: number): Page<T> {
  const data = rows.slice(0, limit);
  return { data, next: rows.length > limit ? String(data[data.length - 1].id) : null };
}

const docs = <T, D>({ data, next }: Page<T>, doc: (row: T) => D): Page<D> => ({ data: data.map(doc), next });

async function cursorAt(c: Queryable, what: keyof typeof CURSOR, id: string | undefined): Promise<number | null> {
  if (id === undefined) return null;
  const { rows } = await c.query<{ at: number }>(CURSOR[what], [id]);
  if (!rows[0]) throw new InvalidInputError(`after: no ${what} ${id} (pass the "next" cursor of the previous page)`);
  return rows[0].at;
}

/** `lock`: the row stays locked until the transaction ends, so what is changed is what was read. */
async function accountRow(c: Queryable, id: string, lock = false): Promise<Account> {
  const { rows } = await c.query<Account>(`SELECT ${ACCOUNT} FROM accounts a WHERE a.id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
  if (!rows[0]) throw new NotFoundError(`account ${id}`);
  return rows[0];
}

async function keyRow(c: Queryable, id: string, lock = false): Promise<KeyRow> {
  const { rows } = await c.query<KeyRow>(`SELECT ${KEY} FROM api_keys WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
  if (!rows[0]) throw new NotFoundError(`key ${id}`);
  return rows[0];
}

/** Runs `write`, refusing an email another account has in any case as SQLite does: EmailTakenError, naming it. */
async function withUniqueEmail(c: Client, email: string, write: () => Promise<unknown>): Promise<void> {
  // A savepoint, because a failed statement aborts the transaction and the holder is read after it.
  await c.query('SAVEPOINT unique_email');
  try {
    await write();
  } catch (err) {
    const { code, constraint } = err as { code?: string; constraint?: string };
    if (code !== UNIQUE_VIOLATION || constraint !== EMAIL_INDEX) throw err;
    await c.query('ROLLBACK TO SAVEPOINT unique_email');
    const { rows } = await c.query<Account>(`SELECT ${ACCOUNT} FROM accounts a WHERE lower(a.email) = lower($1)`, [email]);
    throw rows[0] ? new EmailTakenError(rows[0]) : new ConflictError(`an account with the email ${email} exists`);
  }
}

function positiveMicros(micros: number): void {
  if (!Number.isSafeInteger(micros) || micros <= 0) throw new InvalidInputError('the amount must be a positive whole number of micro-dollars');
}

/**
 * The refusal of a deduction the durable balance cannot pay. What the nodes' open leases hold is
 * theirs to spend, in their memory: the CLI cannot take it back, and the admin API only what its
 * own node's lease holds (deductCredits); a lease returns what it did not spend when it ends.
 */
async function cannotPay(c: Client, accountId: string, micros: number, own: number | undefined): Promise<InsufficientBalanceError> {
  const { rows: [b] } = await c.query<{ durable: number; held: number }>(
    `SELECT a.balance_micros AS durable, ${HELD_MICROS} AS held FROM accounts a WHERE a.id = $1`, [accountId]);
  const leased = b.held - b.durable - (own ?? 0);
  // `own` undefined: no gateway here (the CLI); else what this node's lease holds unreserved.
  const rest = own === undefined
    ? `the gateways' open leases hold ${formatMicros(leased)} more, which the CLI cannot take on PostgreSQL`
    : `other gateways' leases hold ${formatMicros(leased)} more, which only they can give back`;
  return new InsufficientBalanceError(`account ${accountId} cannot pay ${formatMicros(micros)}: it can give ${formatMicros(b.durable + (own ?? 0))}` +
    (leased > 0 ? ` (${rest}: what a lease does not spend returns when it ends)` : ''));
}

/**
 * The event log of a replay: each outcome but 'duplicate' gets its 'webhook.replay' audit row.
 * SQLite writes the row in the effect's transaction; here applyOnce keeps its transaction to
 * itself (EventTx hands the effect no connection), so the row follows in its own statement once
 * the effect has committed. A crash in between leaves the effect without its row; a row that
 * cannot be written makes the replay report 'failed' (apply() catches it), and the next one 'duplicate'.
 */
function audited(events: EventLog, record: (outcome: { outcome: string; note: string | null }) => Promise<unknown>): EventLog {
  return {
    async applyOnce(inbound, effect) {
      const done = await events.applyOnce(inbound, effect);
      if (done.status !== 'duplicate') await record({ outcome: done.status, note: done.status === 'ignored' ? done.note : null });
      return done;
    },
    async recordFailure(inbound, error) {
      await events.recordFailure(inbound, error);
      await record({ outcome: 'failed', note: error });
    },
  };
}

export interface PgOperationsDeps {
  config: () => Config;
  now: () => number;
  /** Whom the audit log names. */
  actor: string;
  /** The admin API's request these operations answer (the audit log names it); none for the CLI. */
  requestId?: string | null;
  /** Where a replayed event's failure is logged (default: nowhere; the CLI prints the outcome). */
  log?: Logger;
  /**
   * The gateway these operations run in (the admin API; the CLI has none): the leases it holds,
   * which a deduction may take back, and when each key last authenticated a request.
   */
  node?: { id: string; holder: LeaseHolder; keyLastUsed(hash: string): number | undefined };
}

/**
 * `tx`: a connection in a transaction (an admin POST with its Idempotency-Key): every operation
 * runs in it. Without, each runs in a transaction of its own.
 */
export function pgOperations(pool: Pool, deps: PgOperationsDeps, tx?: Client): Operations {
  const db = tx ?? pool;
  const keyDoc = (k: KeyRow, at: number) => keyShape({ ...k, lastUsedAt: deps.node?.keyLastUsed(k.hash) ?? null }, at);

  /**
   * What the customers have, as the gateway these operations run in knows it (the admin API):
   * its own leases as its memory holds them, not as their rows were last written.
   */
  async function live(c: Queryable, accounts: Account[]): Promise<Account[]> {
    const node = deps.node;
    if (!node || accounts.length === 0) return accounts;
    const { rows } = await c.query<{ id: string; unspent: number }>(`SELECT account_id AS id, sum(granted_micros - consumed_micros)::bigint AS unspent
      FROM leases WHERE node = $1 AND closed_at IS NULL AND account_id = ANY($2) GROUP BY account_id`, [node.id, accounts.map((a) => a.id)]);
    const unspent = new Map(rows.map((r) => [r.id, r.unspent]));
    return accounts.map((a) => ({ ...a, balanceMicros: a.balanceMicros - (unspent.get(a.id) ?? 0) + node.holder.holding(a.id) }));
  }
  const liveRow = async (c: Queryable, id: string) => (await live(c, [await accountRow(c, id)]))[0];
  const { now } = deps;
  const log = deps.log ?? createLogger('silent');
  const writeAudit = (c: Queryable, action: AuditAction, target: string, accountId: string | null, change: Record<string, unknown>) =>
    c.query('INSERT INTO audit_log (at, actor, action, target, account_id, change, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [now(), deps.actor, action, target, accountId, JSON.stringify(change), deps.requestId ?? null]);

  /** A new key of the account; the key itself is returned this once, only its hash is stored. */
  async function insertKey(c: Client, accountId: string, name: string | null, expiresAt: number | null): Promise<KeyRow & { key: string }> {
    const key = generateKey();
    const id = newId('key');
    const hash = hashKey(key);
    await c.query('INSERT INTO api_keys (id, account_id, name, hash, prefix, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [id, accountId, name, hash, displayPrefix(key), now(), expiresAt]);
    // A node may have seen this key before it existed (and remembered it as unknown).
    await recordChange(c, { kind: 'key', hash }, CLI_NODE);
    return { ...(await keyRow(c, id)), key };
  }

  /**
   * Grants (`micros` > 0) or deducts credits: the balance with its ledger row, the change the
   * nodes hear of and the audit row. The account after it, or undefined when the balance cannot
   * take it (nothing moved).
   */
  async function moveCredits(c: Client, accountId: string, micros: number, kind: 'grant' | 'adjustment', reason: string): Promise<Account | undefined> {
    const before = await liveRow(c, accountId);
    if ((await c.query(MOVE, [accountId, micros, kind, reason, now()])).rowCount === 0) return undefined;
    await recordChange(c, { kind: 'balance', id: accountId }, CLI_NODE);
    const after = await liveRow(c, accountId);
    await writeAudit(c, micros > 0 ? 'credits.grant' : 'credits.deduct', accountId, accountId,
      { amountMicros: Math.abs(micros), reason, balanceMicros: { from: before.balanceMicros, to: after.balanceMicros } });
    return after;
  }

  const supported: Omit<Operations, keyof NotifyOperations | keyof UsageOperations> = {
    createAccount: ({ email, name, plan }) => transaction(db, async (c) => {
      const config = deps.config();
      const p = knownPlan(config, plan ?? config.defaultPlan);
      const id = newId('acct');
      await withUniqueEmail(c, email, () => c.query('INSERT INTO accounts (id, email, name, plan, created_at) VALUES ($1, $2, $3, $4, $5)',
        [id, email, name ?? null, p, now()]));
      await writeAudit(c, 'account.create', id, id, { email, name: name ?? null, plan: p });
      return accountDoc(await liveRow(c, id));
    }),

    listAccounts: async ({ limit, after, plan, status, email }) => {
      const at = await cursorAt(db, 'account', after);
      const { rows } = await db.query<Account>(`SELECT ${ACCOUNT} FROM accounts a
        WHERE ($1::bigint IS NULL OR (a.created_at, a.id) > ($1, $2::text)) AND ($3::text IS NULL OR a.plan = $3)
          AND ($4::text IS NULL OR a.status = $4) AND ($5::text IS NULL OR lower(a.email) = lower($5))
        ORDER BY a.created_at, a.id LIMIT $6`, [at, after ?? null, plan ?? null, status ?? null, email ?? null, limit + 1]);
      return docs(page(await live(db, rows), limit), accountDoc);
    },

    account: async (id) => accountDoc(await liveRow(db, id)),

    // Suspending by hand records the reason 'operator' (a paid invoice does not lift it);
    // reactivating clears any reason, whoever suspended.
    updateAccount: (id, change) => {
      if (change.plan !== undefined) knownPlan(deps.config(), change.plan);
      return transaction(db, async (c) => {
        const before = await accountRow(c, id, true);
        const given = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) as AccountChange;
        const after = { ...before, ...given };
        if (change.status !== undefined && change.status !== before.status) after.statusReason = change.status === 'suspended' ? 'operator' : null;
        const diff: Record<string, { from: unknown; to: unknown }> = {};
        for (const f of ACCOUNT_FIELDS) if (after[f] !== before[f]) diff[f] = { from: before[f], to: after[f] };
        if (Object.keys(diff).length === 0) return accountDoc(before);
        await withUniqueEmail(c, after.email, () => c.query('UPDATE accounts SET name = $2, email = $3, plan = $4, status = $5, status_reason = $6 WHERE id = $1',
          [id, after.name, after.email, after.plan, after.status, after.statusReason]));
        await recordChange(c, { kind: 'account', id }, CLI_NODE);
        await writeAudit(c, 'account.update', id, id, diff);
        return accountDoc(await liveRow(c, id));
      });
    },

    createKey: ({ accountId, name, expiresAt }) => transaction(db, async (c) => {
      const expires = expiresAt == null ? null : Date.parse(expiresAt);
      // The messages of LocalOperations.createKey.
      if (Number.isNaN(expires)) throw new InvalidInputError(`expiresAt: not an ISO 8601 time: "${expiresAt}"`);
      if (expires !== null && expires <= now()) throw new InvalidInputError('expiresAt: a key cannot expire in the past');
      await accountRow(c, accountId);
      const created = await insertKey(c, accountId, name ?? null, expires);
      await writeAudit(c, 'key.create', created.id, accountId, { name: created.name, expiresAt: expires });
      return { ...keyDoc(created, now()), key: created.key };
    }),

    listKeys: async ({ account: accountId, limit, after }) => {
      if (accountId !== undefined) await accountRow(db, accountId);
      const at = await cursorAt(db, 'key', after);
      const { rows } = await db.query<KeyRow>(`SELECT ${KEY} FROM api_keys WHERE ($1::text IS NULL OR account_id = $1)
        AND ($2::bigint IS NULL OR (created_at, id) > ($2, $3::text)) ORDER BY created_at, id LIMIT $4`,
      [accountId ?? null, at, after ?? null, limit + 1]);
      const t = now();
      return docs(page(rows, limit), (k) => keyDoc(k, t));
    },

    key: async (id) => keyDoc(await keyRow(db, id), now()),

    revokeKey: (id) => transaction(db, async (c) => {
      const k = await keyRow(c, id, true);
      // Revoking twice keeps the first time (and records only the first).
      if (k.revokedAt === null) {
        await c.query('UPDATE api_keys SET revoked_at = $2 WHERE id = $1', [id, now()]);
        await writeAudit(c, 'key.revoke', id, k.accountId, {});
        await recordChange(c, { kind: 'key', hash: k.hash }, CLI_NODE);
      }
      // The state is taken after the write: a key revoked this instant reads as revoked.
      return keyDoc(await keyRow(c, id), now());
    }),

    // A new key for the same account; the old one keeps working for the grace period, then stops.
    rotateKey: (id, graceSeconds) => transaction(db, async (c) => {
      // Locked: two rotations of one key at once would issue two replacements.
      const old = await keyRow(c, id, true);
      if (old.revokedAt !== null) throw new ConflictError(`key ${id} is revoked; create a new key instead`);
      if (old.expiresAt !== null && old.expiresAt <= now()) throw new ConflictError(`key ${id} has expired; create a new key instead`);
      const fresh = await insertKey(c, old.accountId, old.name, old.expiresAt);
      await c.query('UPDATE api_keys SET expires_at = least(coalesce(expires_at, $2), $2), replaced_by = $3 WHERE id = $1',
        [id, now() + Math.round(graceSeconds * 1000), fresh.id]);
      await recordChange(c, { kind: 'key', hash: old.hash }, CLI_NODE);
      const rotated = await keyRow(c, id);
      await writeAudit(c, 'key.rotate', id, old.accountId, { newKeyId: fresh.id, expiresAt: { from: old.expiresAt, to: rotated.expiresAt } });
      const t = now();
      return { old: keyDoc(rotated, t), new: { ...keyDoc(fresh, t), key: fresh.key } };
    }),

    grantCredits: (accountId, { amountMicros, reason }) => {
      positiveMicros(amountMicros);
      return transaction(db, async (c) => {
        const after = await moveCredits(c, accountId, amountMicros, 'grant', reason);
        if (!after) throw new InvalidInputError(`granting ${formatMicros(amountMicros)} would take the balance past ${formatMicros(Number.MAX_SAFE_INTEGER)}`);
        return { ...accountDoc(after), grantedMicros: amountMicros, granted: formatMicros(amountMicros), reason };
      });
    },

    // Never below zero: refused, with nothing taken, when the balance cannot pay all of it.
    deductCredits: async (accountId, { amountMicros, reason }) => {
      positiveMicros(amountMicros);
      const holder = deps.node?.holder;
      if (holder) {
        // What this gateway's lease holds unreserved goes back first, in the lease's own
        // transaction (before this one reads the account), and only when that makes it payable.
        const { rows: [a] } = await db.query<{ durable: number }>('SELECT balance_micros AS durable FROM accounts WHERE id = $1', [accountId]);
        const short = amountMicros - (a?.durable ?? 0);
        if (a && short > 0 && holder.holding(accountId) >= short) await holder.giveBack(accountId, short);
      }
      return transaction(db, async (c) => {
        const after = await moveCredits(c, accountId, -amountMicros, 'adjustment', reason);
        if (!after) throw await cannotPay(c, accountId, amountMicros, holder?.holding(accountId));
        return { ...accountDoc(after), deductedMicros: amountMicros, deducted: formatMicros(amountMicros), reason };
      });
    },

    ledger: async (accountId, { limit, before }) => {
      const a = await liveRow(db, accountId);
      const { rows } = await db.query(`SELECT id, amount_micros AS "amountMicros", balance_after_micros AS "balanceAfterMicros", kind, reference,
        created_at AS "createdAt" FROM ledger WHERE account_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
      [accountId, before ?? null, limit + 1]);
      const entries = rows.slice(0, limit);
      return {
        id: a.id, balanceMicros: a.balanceMicros, balance: formatMicros(a.balanceMicros), ledger: entries.map(ledgerEntryDoc),
        nextBefore: rows.length > limit ? entries[entries.length - 1].id : null,
      };
    },

    webhookEvents: async ({ failed = false, limit, after }) => {
      const at = await cursorAt(db, 'event', after);
      const { rows } = await db.query<WebhookEvent>(`SELECT ${EVENT} FROM webhook_events
        WHERE ($1::bigint IS NULL OR (received_at, id) < ($1, $2::text)) AND (NOT $3::boolean OR status = 'failed')
        ORDER BY received_at DESC, id DESC LIMIT $4`, [at, after ?? null, failed, limit + 1]);
      return docs(page(rows, limit), eventDoc);
    },

    // Applied again through the webhook's own path (billing/webhooks.ts): once across all nodes,
    // as a delivery from Stripe would be; an event applied before changes nothing and is not recorded.
    replayWebhook: async (id) => {
      const { rows: [stored] } = await pool.query<{ source: string; payload: string }>('SELECT source, payload FROM webhook_events WHERE id = $1', [id]);
      if (!stored) throw new NotFoundError(`event ${id}`);
      const event = JSON.parse(stored.payload) as StripeEvent;
      const events = audited(createPgBilling(pool, { now }).events, (outcome) => writeAudit(pool, 'webhook.replay', id, null, { type: event.type, ...outcome }));
      const reply = await apply({ source: stored.source, id, type: event.type, payload: stored.payload }, event, { config: deps.config(), events, log });
      return { id, type: event.type, outcome: (reply.body.outcome as string | undefined) ?? 'failed' };
    },

    audit: async ({ account: accountId, limit, after }) => {
      if (after !== undefined && !/^\d+$/.test(after)) throw new InvalidInputError(`after: not an audit cursor: "${after}" (pass the "next" of the previous page)`);
      if (accountId !== undefined) await accountRow(db, accountId);
      const before = after === undefined ? Number.MAX_SAFE_INTEGER : Math.min(Number(after), Number.MAX_SAFE_INTEGER);
      const { rows } = await db.query<Omit<AuditEntry, 'change'> & { change: string }>(`SELECT ${AUDIT} FROM audit_log
        WHERE ($1::text IS NULL OR account_id = $1) AND id < $2 ORDER BY id DESC LIMIT $3`, [accountId ?? null, before, limit + 1]);
      return docs(page(rows, limit), (r) => auditDoc({ ...r, change: JSON.parse(r.change) as Record<string, unknown> }));
    },

    config: () => configDoc(deps.config()),
  };

  const notify = pgNotifyOperations(db, { now, node: CLI_NODE, account: (c, id) => accountRow(c, id), audit: writeAudit });
  return { ...supported, ...pgUsageOperations(db, deps), ...notify };
}
