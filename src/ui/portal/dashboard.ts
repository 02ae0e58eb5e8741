// The customer's dashboard: balance, quota used and when it resets, usage per day (requests and
// cost) and tokens per model over the last 30 days (daily rollups), recent requests with cost and
// status, its keys, and the billing buttons when Stripe is configured.
import { dollars, form, html, table, when } from '../html.ts';
import type { UiReply } from '../http.ts';
import { barChart } from '../chart.ts';
import type { ModelTokens } from '../ui-store.ts';
import { PORTAL, portalPage, type PortalCtx } from './context.ts';

const DAY_MS = 86_400_000;
const DAYS = 30;

/** Tokens by model over the last 30 days, the most first. */
async function tokensByModel(ctx: PortalCtx): Promise<ModelTokens[]> {
  const today = ctx.now - (ctx.now % DAY_MS);
  const rows = await ctx.store.tokensByModel(ctx.accountId, today - (DAYS - 1) * DAY_MS);
  // Ties by name: the backends group in different orders.
  return rows.sort((a, b) => b.inputTokens + b.outputTokens - (a.inputTokens + a.outputTokens) || (a.model < b.model ? -1 : 1));
}

const NOTICES: Record<string, string> = { revoked: 'The key was revoked.' };

export async function dashboard(ctx: PortalCtx): Promise<UiReply> {
  const { ops, accountId, csrf } = ctx;
  const [account, usage, { days }, models, { requests: recent }, { data: keys }] = await Promise.all([
    ops.account(accountId), ops.usage(accountId, {}), ops.usageByDay(accountId, {}), tokensByModel(ctx),
    ops.recentRequests(accountId, 20), ops.listKeys({ account: accountId, limit: 200 }),
  ]);
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
