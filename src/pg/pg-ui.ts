// The pages' store (ui/ui-store.ts) on PostgreSQL, as db/sqlite-ui.ts on the file: the overview and
// the tokens per model from the daily rollups (every node writes its rows' rollups in the
// statement that writes the rows, so none wait in a node's memory), and the secret and signup
// claims of migrations/pg/0011. A signup's key is issued in the paid webhook's transaction on
// whichever node it reaches (pgCompleteSignup) and shown once by whichever node serves the page.
import type { BillingStore } from '../billing/billing-store.ts';
import { seal, SIGNUP_REASON, unseal, type Claim } from '../billing/signup-claims.ts';
import { displayPrefix, generateKey, hashKey, newId } from '../keys.ts';
import type { Change } from '../storage/ports.ts';
import type { MaybeAsync } from '../storage/steps.ts';
import type { GatewayDay, ModelTokens, RevenueDay, TopAccount, UiStore } from '../ui/ui-store.ts';
import { transaction, type Client, type Pool } from './pool.ts';

type Queryable = Client | Pool;
const DAY_MS = 86_400_000;
const SECRET = "SELECT value FROM ui_settings WHERE name = 'secret'";

const DAILY = `SELECT day, sum(requests)::bigint AS requests, sum(billable)::bigint AS billable, sum(charged_micros)::bigint AS "chargedMicros",
  sum(CASE WHEN status >= 500 THEN requests ELSE 0 END)::bigint AS errors FROM usage_daily WHERE day >= $1 AND day < $2 GROUP BY day`;
// Revenue: paid credit checkouts (checkout.session.completed) and paid subscription invoices (invoice.paid).
const REVENUE = `SELECT at - at % ${DAY_MS} AS day, sum(micros)::bigint AS micros FROM (
    SELECT created_at AS at, amount_micros AS micros FROM credit_purchases WHERE created_at >= $1 AND created_at < $2
    UNION ALL SELECT paid_at, amount_micros FROM subscription_payments WHERE paid_at >= $1 AND paid_at < $2) r
  GROUP BY 1`;
const TOP = `SELECT t.account_id AS id, a.email, t.requests, t."chargedMicros" FROM (
    SELECT account_id, sum(requests)::bigint AS requests, sum(charged_micros)::bigint AS "chargedMicros" FROM usage_daily
    WHERE day >= $1 AND day < $2 AND account_id <> '' GROUP BY account_id ORDER BY 3 DESC, 2 DESC LIMIT 10) t
  LEFT JOIN accounts a ON a.id = t.account_id ORDER BY t."chargedMicros" DESC, t.requests DESC`;
const MODELS = `SELECT model, sum(requests)::bigint AS requests, sum(input_tokens)::bigint AS "inputTokens",
  sum(cached_tokens)::bigint AS "cachedTokens", sum(output_tokens)::bigint AS "outputTokens"
  FROM usage_daily WHERE account_id = $1 AND day >= $2 AND model <> '' GROUP BY model`;

async function secretOf(c: Queryable): Promise<string> {
  return (await c.query<{ value: string }>(SECRET)).rows[0].value;
}

/** `billing`: the store the node's billing uses (a signup's account waits suspended through it, as on SQLite). */
export function pgUiStore(pool: Pool, billing: MaybeAsync<BillingStore>): UiStore {
  let secret: Promise<string> | undefined;
  const rows = async <T>(sql: string, values: unknown[]) => (await pool.query(sql, values)).rows as T[];
  return {
    // It never changes once the migration made it.
    secret: () => (secret ??= secretOf(pool)),
    async overview(from, to) {
      const [daily, revenue, top] = await Promise.all([
        rows<GatewayDay>(DAILY, [from, to]), rows<RevenueDay>(REVENUE, [from, to]), rows<TopAccount>(TOP, [from, to]),
      ]);
      return { daily, revenue, top };
    },
    tokensByModel: (accountId, from) => rows<ModelTokens>(MODELS, [accountId, from]),
    holdForSignup: (accountId) => billing.setStanding(accountId, 'suspended', SIGNUP_REASON),
    recordSignupClaim: async (sessionId, accountId, now) => void await pool.query(`INSERT INTO signup_claims (session_id, account_id, created_at)
      VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [sessionId, accountId, now]),
    claimSignupKey: (sessionId, now) => transaction(pool, async (c): Promise<Claim> => {
      // Locked: two nodes asked at once show the key once.
      const { rows: [row] } = await c.query<{ accountId: string; keyId: string | null; sealed: string | null }>(`SELECT account_id AS "accountId",
        key_id AS "keyId", sealed FROM signup_claims WHERE session_id = $1 FOR UPDATE`, [sessionId]);
      if (!row) return { state: 'unknown' };
      if (row.keyId === null) return { state: 'waiting' };
      if (row.sealed === null) return { state: 'shown', keyId: row.keyId };
      await c.query('UPDATE signup_claims SET sealed = NULL, shown_at = $2 WHERE session_id = $1', [sessionId, now]);
      return { state: 'ready', key: unseal(await secretOf(c), sessionId, row.sealed), keyId: row.keyId, accountId: row.accountId };
    }),
  };
}

/**
 * In the transaction of a paid session's credits (checkout.session.completed): a signup's session
 * activates its account and issues its key, sealed until the success page shows it; any other
 * session is left alone. As billing/signup-claims.ts's completeSignup on the file.
 */
export async function pgCompleteSignup(c: Queryable, changed: (change: Change) => Promise<void>, sessionId: string, now: number): Promise<void> {
  const { rows: [claim] } = await c.query<{ accountId: string }>(`SELECT account_id AS "accountId" FROM signup_claims
    WHERE session_id = $1 AND key_id IS NULL FOR UPDATE`, [sessionId]);
  if (!claim) return;
  const key = generateKey();
  const id = newId('key');
  const hash = hashKey(key);
  await c.query('INSERT INTO api_keys (id, account_id, name, hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
    [id, claim.accountId, 'signup', hash, displayPrefix(key), now]);
  await c.query("UPDATE accounts SET status = 'active', status_reason = NULL WHERE id = $1 AND status_reason = $2", [claim.accountId, SIGNUP_REASON]);
  await c.query('UPDATE signup_claims SET key_id = $2, sealed = $3 WHERE session_id = $1', [sessionId, id, seal(await secretOf(c), sessionId, key)]);
  await c.query('INSERT INTO audit_log (at, actor, action, target, account_id, change) VALUES ($1, $2, $3, $4, $5, $6)',
    [now, 'signup', 'key.create', id, claim.accountId, JSON.stringify({ name: 'signup', expiresAt: null, checkoutSession: sessionId })]);
  await changed({ kind: 'account', id: claim.accountId });
  await changed({ kind: 'key', hash });
}
