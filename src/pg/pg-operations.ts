// What the CLI does on PostgreSQL (DATABASE_URL), for now: accounts, keys and credits, each in one
// transaction with its audit row and, where a node must hear of it, its change. The other
// operations say they need the SQLite file. Validation and documents are the SQLite side's
// (admin/operations.ts, admin/shapes.ts), so both answer alike.
import { InvalidInputError, NotFoundError, ConflictError, type Account, type ApiKey } from '../db/admin-types.ts';
import { displayPrefix, generateKey, hashKey, newId } from '../keys.ts';
import { formatMicros } from '../money.ts';
import type { Config } from '../config.ts';
import { knownPlan, type Operations } from '../admin/operations.ts';
import { accountDoc, keyDoc, ledgerEntryDoc } from '../admin/shapes.ts';
import { recordChange } from './pg-changes.ts';
import { HELD_MICROS } from './pg-leases.ts';
import { transaction, type Client, type Pool } from './pool.ts';

const ACCOUNT = `a.id, a.email, a.name, a.plan, a.status, a.status_reason AS "statusReason", ${HELD_MICROS} AS "balanceMicros", a.created_at AS "createdAt"`;
const KEY = `id, account_id AS "accountId", name, prefix, created_at AS "createdAt", expires_at AS "expiresAt", revoked_at AS "revokedAt",
  replaced_by AS "replacedBy", NULL::bigint AS "lastUsedAt"`;
/** Who the changes are from: no node (every node hears them from the changes table). */
const CLI_NODE = '';

/** An operation the PostgreSQL backend does not have yet. */
export class NotOnPostgresError extends Error {
  constructor(what: string) {
    super(`${what} does not work on PostgreSQL (DATABASE_URL) yet: accounts create/show, keys create/list/revoke and credits grant/show do`);
    this.name = 'NotOnPostgresError';
  }
}

type Supported = 'createAccount' | 'account' | 'createKey' | 'listKeys' | 'revokeKey' | 'grantCredits' | 'ledger';

export function pgOperations(pool: Pool, deps: { config: () => Config; now: () => number; actor: string }): Operations {
  const account = async (c: Client | Pool, id: string): Promise<Account> => {
    const { rows } = await c.query<Account>(`SELECT ${ACCOUNT} FROM accounts a WHERE a.id = $1`, [id]);
    if (!rows[0]) throw new NotFoundError(`account ${id}`);
    return rows[0];
  };
  const key = async (c: Client, id: string): Promise<ApiKey> => {
    const { rows } = await c.query<ApiKey>(`SELECT ${KEY} FROM api_keys WHERE id = $1`, [id]);
    if (!rows[0]) throw new NotFoundError(`key ${id}`);
    return rows[0];
  };
  const audit = (c: Client, action: string, target: string, accountId: string, change: Record<string, unknown>) =>
    c.query('INSERT INTO audit_log (at, actor, action, target, account_id, change) VALUES ($1, $2, $3, $4, $5, $6)',
      [deps.now(), deps.actor, action, target, accountId, JSON.stringify(change)]);

  const supported: Pick<Operations, Supported> = {
    createAccount: ({ email, name, plan }) => transaction(pool, async (c) => {
      const config = deps.config();
      const p = knownPlan(config, plan ?? config.defaultPlan);
      const id = newId('acct');
      try {
        await c.query('INSERT INTO accounts (id, email, name, plan, created_at) VALUES ($1, $2, $3, $4, $5)', [id, email, name ?? null, p, deps.now()]);
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new ConflictError(`an account with the email ${email} exists`);
        throw err;
      }
      await audit(c, 'account.create', id, id, { email, name: name ?? null, plan: p });
      return accountDoc(await account(c, id));
    }),

    account: async (id) => accountDoc(await account(pool, id)),

    createKey: ({ accountId, name, expiresAt }) => transaction(pool, async (c) => {
      const expires = expiresAt == null ? null : Date.parse(expiresAt);
      if (expires !== null && !(expires > deps.now())) throw new InvalidInputError('expiresAt: an ISO 8601 time in the future');
      await account(c, accountId);
      const k = generateKey();
      const id = newId('key');
      const hash = hashKey(k);
      await c.query('INSERT INTO api_keys (id, account_id, name, hash, prefix, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [id, accountId, name ?? null, hash, displayPrefix(k), deps.now(), expires]);
      await audit(c, 'key.create', id, accountId, { name: name ?? null, expiresAt: expires });
      // A node may have seen this key before it existed (and remembered it as unknown).
      await recordChange(c, { kind: 'key', hash }, CLI_NODE);
      return { ...keyDoc(await key(c, id), deps.now()), key: k };
    }),

    listKeys: async ({ account: accountId, limit, after }) => {
      if (accountId !== undefined) await account(pool, accountId);
      const { rows } = await pool.query<ApiKey>(`SELECT ${KEY} FROM api_keys k WHERE ($1::text IS NULL OR account_id = $1)
        AND ($2::text IS NULL OR (created_at, id) > (SELECT created_at, id FROM api_keys WHERE id = $2)) ORDER BY created_at, id LIMIT $3`,
      [accountId ?? null, after ?? null, limit + 1]);
      const now = deps.now();
      const data = rows.slice(0, limit).map((k) => keyDoc(k, now));
      return { data, next: rows.length > limit ? data[data.length - 1].id : null };
    },

    revokeKey: (id) => transaction(pool, async (c) => {
      const k = await key(c, id);
      if (k.revokedAt === null) {
        const { rows } = await c.query<{ hash: string }>('UPDATE api_keys SET revoked_at = $2 WHERE id = $1 RETURNING hash', [id, deps.now()]);
        await audit(c, 'key.revoke', id, k.accountId, {});
        await recordChange(c, { kind: 'key', hash: rows[0].hash }, CLI_NODE);
      }
      return keyDoc(await key(c, id), deps.now());
    }),

    grantCredits: (accountId, { amountMicros, reason }) => transaction(pool, async (c) => {
      if (!Number.isSafeInteger(amountMicros) || amountMicros <= 0) throw new InvalidInputError('the amount must be a positive whole number of micro-dollars');
      const before = await account(c, accountId);
      // The balance and its ledger row in one statement: the balance never passes 2^53 (its CHECK).
      const { rows } = await c.query<{ after: number }>(`WITH a AS (UPDATE accounts SET balance_micros = balance_micros + $2 WHERE id = $1
          AND balance_micros <= 9007199254740991 - $2 RETURNING balance_micros AS after)
        INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
        SELECT $1, $2, after, 'grant', $3, $4 FROM a RETURNING balance_after_micros AS after`, [accountId, amountMicros, reason, deps.now()]);
      if (rows.length === 0) throw new InvalidInputError(`granting ${formatMicros(amountMicros)} would take the balance past ${formatMicros(Number.MAX_SAFE_INTEGER)}`);
      await recordChange(c, { kind: 'balance', id: accountId }, CLI_NODE);
      const after = await account(c, accountId);
      await audit(c, 'credits.grant', accountId, accountId, { amountMicros, reason, balanceMicros: { from: before.balanceMicros, to: after.balanceMicros } });
      return { ...accountDoc(after), grantedMicros: amountMicros, granted: formatMicros(amountMicros), reason };
    }),

    ledger: async (accountId, { limit, before }) => {
      const a = await account(pool, accountId);
      const { rows } = await pool.query(`SELECT id, amount_micros AS "amountMicros", balance_after_micros AS "balanceAfterMicros", kind, reference,
        created_at AS "createdAt" FROM ledger WHERE account_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
      [accountId, before ?? null, limit + 1]);
      const entries = rows.slice(0, limit);
      return {
        id: a.id, balanceMicros: a.balanceMicros, balance: formatMicros(a.balanceMicros), ledger: entries.map(ledgerEntryDoc),
        nextBefore: rows.length > limit ? entries[entries.length - 1].id : null,
      };
    },
  };
  // Every other operation: a clear refusal rather than an answer from the wrong database.
  return new Proxy(supported as Operations, {
    get(target, name) {
      // Not a thenable, and symbols are what they are.
      if (typeof name !== 'string' || name === 'then') return undefined;
      if (name in target) return target[name as Supported];
      return () => {
        throw new NotOnPostgresError(name);
      };
    },
  });
}
