// The customer's dashboard: balance, quota used and when it resets, usage per day (requests and
// cost) and tokens per model over the last 30 days (daily rollups), recent requests with cost and
// status, its keys, and the billing buttons when Stripe is configured.
import { dollars, form, html, table, when } from '../html.ts';
import type { UiReply } from '../http.ts';
import { barChart } from '../chart.ts';
import { PORTAL, portalPage, type PortalCtx } from './context.ts';

const DAY_MS = 86_400_000;
const DAYS = 30;

interface ModelTokens { model: string; requests: number; inputTokens: number; cachedTokens: number; outputTokens: number }

/** Tokens by model over the last 30 days: the rollups and what this gateway has not written yet. */
function tokensByModel(ctx: PortalCtx): ModelTokens[] {
  const today = ctx.now - (ctx.now % DAY_MS);
  const from = today - (DAYS - 1) * DAY_MS;
  const rows = ctx.db.prepare(`SELECT model, sum(requests) AS requests, sum(input_tokens) AS inputTokens, sum(cached_tokens) AS cachedTokens,
    sum(output_tokens) AS outputTokens FROM usage_daily WHERE account_id = ? AND day >= ? AND model <> '' GROUP BY model`).all(ctx.accountId, from) as ModelTokens[];
  const byModel = new Map(rows.map((r) => [r.model, r]));
  for (const d of ctx.state.live.pendingDays(ctx.accountId)) {
    if (d.model === '' || d.day < from) continue;
    let r = byModel.get(d.model);
    if (!r) byModel.set(d.model, (r = { model: d.model, requests: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0 }));
    r.requests += d.requests;
    r.inputTokens += d.inputTokens;
    r.cachedTokens += d.cachedTokens;
    r.outputTokens += d.outputTokens;
  }
  return [...byModel.values()].sort((a, b) => b.inputTokens + b.outputTokens - (a.inputTokens + a.outputTokens));
}

const NOTICES: Record<string, string> = { revoked: 'The key was revoked.' };

export function dashboard(ctx: PortalCtx): UiReply {
  const { ops, accountId, csrf } = ctx;
  const account = ops.account(accountId);
  const usage = ops.usage(accountId, {});
  const days = ops.usageByDay(accountId, {}).days;
  const models = tokensByModel(ctx);
  const recent = ops.recentRequests(accountId, 20).requests;
  const keys = ops.listKeys({ account: accountId, limit: 200 }).data;
  const stripe = ctx.billing && ctx.config.stripe;
  const billing = stripe ? html`<h2>Billing</h2><div class="cards">
${form(`${PORTAL}/buy`, csrf, html`<label>Credits<select name="amount">${stripe.creditPacks.map((m) => html`<option value="${(m / 1e6).toFixed(2)}">${dollars(m)}</option>`)}</select></label><button type="submit" id="buy-credits">Buy credits</button>`, 'stack')}
${form(`${PORTAL}/billing`, csrf, html`<button type="submit" id="manage-billing">Manage billing</button>`, 'stack')}</div>` : '';
  const body = html`<div class="cards">
<div class="card"><div class="k">Balance</div><div class="v" id="balance">${dollars(account.balanceMicros)}</div></div>
<div class="card"><div class="k">Plan</div><div class="v" id="plan">${account.plan}</div></div>
<div class="card"><div class="k">Quota used (${usage.period})</div><div class="v" id="quota">${usage.quotaUsed}${usage.monthlyQuota === null ? '' : ` of ${usage.monthlyQuota}`}</div></div>
<div class="card"><div class="k">Resets</div><div class="v" id="resets">${usage.periodEnd ? when(usage.periodEnd) : 'with your subscription'}</div></div>
${account.status === 'active' ? '' : html`<div class="card"><div class="k">Status</div><div class="v status-suspended">suspended${account.statusReason ? ` (${account.statusReason})` : ''}</div></div>`}
</div>
<div class="charts">
${barChart('chart-requests', 'Requests', days.map((d) => ({ day: d.day, value: d.requests })))}
${barChart('chart-cost', 'Cost', days.map((d) => ({ day: d.day, value: d.chargedMicros })), dollars)}
</div>
${models.length > 0 ? html`<h2>Tokens by model (30 days)</h2>${table(['Model', 'Requests', 'Input', 'Cached input', 'Output'], models.map((m) => html`<tr><td>${m.model}</td><td class="num">${m.requests}</td><td class="num">${m.inputTokens}</td><td class="num">${m.cachedTokens}</td><td class="num">${m.outputTokens}</td></tr>`), '', 'models')}` : ''}
${billing}
<h2>Recent requests</h2>
${table(['Time', 'Method', 'Path', 'Status', 'Model', 'Cost'], recent.map((r) => html`<tr><td>${when(r.time)}</td><td>${r.method}</td><td>${r.path}</td><td>${r.status}</td><td>${r.model ?? ''}</td><td class="num">${dollars(r.priceMicros)}</td></tr>`), 'No requests yet.', 'recent')}
<h2>Keys</h2>
${table(['Key', 'Name', 'Prefix', 'State', 'Created', ''], keys.map((k) => html`<tr data-key="${k.id}"><td>${k.id}${k.id === ctx.keyId ? html` <span class="muted">(this session)</span>` : ''}</td><td>${k.name ?? ''}</td><td><code>${k.prefix}</code></td><td class="state-${k.state}">${k.state}</td><td>${when(k.createdAt)}</td><td>${k.state === 'active' ? form(`${PORTAL}/keys/${encodeURIComponent(k.id)}/revoke`, csrf, html`<button type="submit" class="danger revoke">Revoke</button>`) : ''}</td></tr>`), 'No keys.', 'keys')}
${form(`${PORTAL}/keys`, csrf, html`<label>New key name<input name="name" maxlength="100"></label><button type="submit" id="create-key">Create key</button>`, 'stack')}`;
  const done = ctx.req.query.get('done');
  return portalPage(ctx, 'Your account', body, { notice: done ? NOTICES[done] : undefined });
}
