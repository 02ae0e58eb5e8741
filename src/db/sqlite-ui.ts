// The pages' store (ui/ui-store.ts) on the SQLite file: the overview and the tokens per model from
// the daily rollups (and, for the tokens, what this gateway counted but has not written yet), the
// secret and signup claims of migration 0010.
import type { BillingStore } from '../billing/billing-store.ts';
import { claimSignupKey, recordSignupClaim, SIGNUP_REASON, uiSecret } from '../billing/signup-claims.ts';
import type { DayTotals } from '../storage/ports.ts';
import type { GatewayDay, ModelTokens, RevenueDay, TopAccount, UiStore } from '../ui/ui-store.ts';
import type { Db } from './open.ts';
import { writing } from './sqlite-busy.ts';

const DAY_MS = 86_400_000;

/** `pendingDays`: the account's daily totals this gateway has not written yet. */
export function sqliteUiStore(db: Db, billing: BillingStore, pendingDays: (accountId: string) => Iterable<DayTotals>): UiStore {
  const q = {
    daily: db.prepare(`SELECT day, sum(requests) AS requests, sum(billable) AS billable, sum(charged_micros) AS chargedMicros,
      sum(CASE WHEN status >= 500 THEN requests ELSE 0 END) AS errors FROM usage_daily WHERE day >= ? AND day < ? GROUP BY day`),
    // Revenue: paid credit checkouts (checkout.session.completed) and paid subscription invoices (invoice.paid).
    revenue: db.prepare(`SELECT at - at % ${DAY_MS} AS day, sum(micros) AS micros FROM (
        SELECT created_at AS at, amount_micros AS micros FROM credit_purchases WHERE created_at >= @from AND created_at < @to
        UNION ALL SELECT paid_at, amount_micros FROM subscription_payments WHERE paid_at >= @from AND paid_at < @to)
      GROUP BY 1`),
    top: db.prepare(`SELECT t.account_id AS id, a.email, t.requests, t.chargedMicros FROM (
        SELECT account_id, sum(requests) AS requests, sum(charged_micros) AS chargedMicros FROM usage_daily
        WHERE day >= ? AND day < ? AND account_id <> '' GROUP BY account_id ORDER BY chargedMicros DESC, requests DESC LIMIT 10) t
      LEFT JOIN accounts a ON a.id = t.account_id ORDER BY t.chargedMicros DESC, t.requests DESC`),
    models: db.prepare(`SELECT model, sum(requests) AS requests, sum(input_tokens) AS inputTokens, sum(cached_tokens) AS cachedTokens,
      sum(output_tokens) AS outputTokens FROM usage_daily WHERE account_id = ? AND day >= ? AND model <> '' GROUP BY model`),
  };
  return {
    secret: () => writing(() => uiSecret(db)),
    overview: (from, to) => ({
      daily: q.daily.all(from, to) as GatewayDay[],
      revenue: q.revenue.all({ from, to }) as RevenueDay[],
      top: q.top.all(from, to) as TopAccount[],
    }),
    tokensByModel(accountId, from) {
      const byModel = new Map((q.models.all(accountId, from) as ModelTokens[]).map((r) => [r.model, r]));
      for (const d of pendingDays(accountId)) {
        if (d.model === '' || d.day < from) continue;
        let r = byModel.get(d.model);
        if (!r) byModel.set(d.model, (r = { model: d.model, requests: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0 }));
        r.requests += d.requests;
        r.inputTokens += d.inputTokens;
        r.cachedTokens += d.cachedTokens;
        r.outputTokens += d.outputTokens;
      }
      return [...byModel.values()];
    },
    holdForSignup: (accountId) => billing.setStanding(accountId, 'suspended', SIGNUP_REASON),
    recordSignupClaim: (sessionId, accountId, now) => writing(() => recordSignupClaim(db, sessionId, accountId, now)),
    claimSignupKey: (sessionId, now) => writing(() => claimSignupKey(db, sessionId, now)),
  };
}
