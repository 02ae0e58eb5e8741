// Accounts: the list (search by email or id, filter by plan and status, paged) and one account's
// page: plan, status, balance, ledger (paged), keys, usage per day with cost, recent requests,
// and the forms of its actions (account-actions.ts).
import type { AccountStatus } from '../../storage/records.ts';
import { barChart } from '../chart.ts';
import { dollars, form, html, table, when, type Html } from '../html.ts';
import { redirect, type UiReply } from '../http.ts';
import { consolePage, seg, type ConsoleCtx } from './context.ts';

const PAGE = 25;
const LEDGER_PAGE = 20;
const ID = /^acct_[A-Za-z0-9_-]+$/;
const STATUSES: readonly AccountStatus[] = ['active', 'suspended'];

export async function accountsPage(ctx: ConsoleCtx): Promise<UiReply> {
  const { query } = ctx.req;
  const q = (query.get('q') ?? '').trim();
  if (ID.test(q)) return redirect(`/accounts/${seg(q)}`);
  const plan = query.get('plan') || undefined;
  const status = STATUSES.find((s) => s === query.get('status'));
  const after = query.get('after') || undefined;
  const { data, next } = await ctx.ops.listAccounts({ limit: PAGE, after, plan, status, email: q || undefined });
  const more = new URLSearchParams(query);
  if (next) more.set('after', next);
  const option = (value: string, selected: string | undefined, label = value) => html`<option value="${value}"${value === selected ? html` selected` : ''}>${label}</option>`;
  const body = html`<form method="get" action="/accounts" class="stack" id="account-search">
<label>Email or account id<input name="q" value="${q}" type="search"></label>
<label>Plan<select name="plan">${option('', plan, 'any')}${Object.keys(ctx.config.plans).map((p) => option(p, plan))}</select></label>
<label>Status<select name="status">${option('', status, 'any')}${STATUSES.map((s) => option(s, status))}</select></label>
<button type="submit">Search</button></form>
${table(['Account', 'Email', 'Plan', 'Status', 'Balance', 'Created'], data.map((a) => html`<tr><td><a href="/accounts/${seg(a.id)}">${a.id}</a></td><td>${a.email}</td><td>${a.plan}</td><td class="status-${a.status}">${a.status}</td><td class="num">${dollars(a.balanceMicros)}</td><td>${when(a.createdAt)}</td></tr>`), 'No account matches.', 'accounts')}
<p class="pager">${after ? html`<a href="/accounts">First page</a> ` : ''}${next ? html`<a href="/accounts?${more.toString()}" id="next-page">Next page</a>` : ''}</p>`;
  return consolePage(ctx, 'Accounts', body);
}

const NOTICES: Record<string, string> = {
  plan: 'The plan was changed.', credits: 'The credits were moved.', suspended: 'The account is suspended.',
  active: 'The account is active again.', revoked: 'The key was revoked.',
};

export async function accountPage(ctx: ConsoleCtx): Promise<UiReply> {
  const id = ctx.params.id;
  const account = await ctx.ops.account(id);
  const beforeText = ctx.req.query.get('before');
  const before = beforeText && /^\d+$/.test(beforeText) ? Number(beforeText) : undefined;
  const [usage, { days }, ledger, { data: keys }, { requests: recent }] = await Promise.all([
    ctx.ops.usage(id, {}), ctx.ops.usageByDay(id, {}), ctx.ops.ledger(id, { limit: LEDGER_PAGE, before }),
    ctx.ops.listKeys({ account: id, limit: 200 }), ctx.ops.recentRequests(id, 20),
  ]);
  const path = `/accounts/${seg(id)}`;
  const csrf = ctx.csrf;
  const planOptions = Object.keys(ctx.config.plans).map((p) => html`<option value="${p}"${p === account.plan ? html` selected` : ''}>${p}</option>`);
  const actions: Html = html`<h2>Actions</h2>
${form(`${path}/plan`, csrf, html`<label>Plan<select name="plan">${planOptions}</select></label><button type="submit" id="change-plan">Change plan</button>`, 'stack')}
${form(`${path}/credits`, csrf, html`<label>Credits<select name="direction"><option value="grant">grant</option><option value="deduct">deduct</option></select></label>
<label>Amount ($)<input name="amount" required inputmode="decimal" placeholder="10.00"></label><label>Reason<input name="reason" required></label><button type="submit" id="move-credits">Apply</button>`, 'stack')}
${form(`${path}/status`, csrf, account.status === 'active'
    ? html`<input type="hidden" name="status" value="suspended"><button type="submit" class="danger" id="suspend">Suspend</button>`
    : html`<input type="hidden" name="status" value="active"><button type="submit" id="reactivate">Reactivate</button>`, 'stack')}`;
  const body = html`<div class="cards">
<div class="card"><div class="k">Email</div><div class="v">${account.email}</div></div>
<div class="card"><div class="k">Plan</div><div class="v" id="plan">${account.plan}</div></div>
<div class="card"><div class="k">Status</div><div class="v status-${account.status}" id="status">${account.status}${account.statusReason ? ` (${account.statusReason})` : ''}</div></div>
<div class="card"><div class="k">Balance</div><div class="v" id="balance">${dollars(account.balanceMicros)}</div></div>
<div class="card"><div class="k">Quota (${usage.period})</div><div class="v">${usage.quotaUsed}${usage.monthlyQuota === null ? '' : ` / ${usage.monthlyQuota}`}</div></div>
</div>
<div class="charts">
${barChart('chart-requests', 'Requests', days.map((d) => ({ day: d.day, value: d.requests })))}
${barChart('chart-cost', 'Cost', days.map((d) => ({ day: d.day, value: d.chargedMicros })), dollars)}
</div>
${actions}
<h2>Keys</h2>
${table(['Key', 'Name', 'Prefix', 'State', 'Created', 'Expires', ''], keys.map((k) => html`<tr data-key="${k.id}"><td>${k.id}</td><td>${k.name ?? ''}</td><td><code>${k.prefix}</code></td><td class="state-${k.state}">${k.state}</td><td>${when(k.createdAt)}</td><td>${when(k.expiresAt)}</td><td>${k.state === 'active' ? html`${form(`/keys/${seg(k.id)}/rotate`, csrf, html`<button type="submit" class="rotate">Rotate</button>`)} ${form(`/keys/${seg(k.id)}/revoke`, csrf, html`<button type="submit" class="danger revoke">Revoke</button>`)}` : ''}</td></tr>`), 'No keys.', 'keys')}
${form(`${path}/keys`, csrf, html`<label>New key name<input name="name" maxlength="100"></label><button type="submit" id="create-key">Create key</button>`, 'stack')}
<h2>Recent requests</h2>
${table(['Time', 'Request', 'Method', 'Path', 'Status', 'Model', 'Cost'], recent.map((r) => html`<tr><td>${when(r.time)}</td><td><code>${r.requestId}</code></td><td>${r.method}</td><td>${r.path}</td><td>${r.status}</td><td>${r.model ?? ''}</td><td class="num">${dollars(r.priceMicros)}</td></tr>`), 'No requests yet.', 'recent')}
<h2>Ledger</h2>
${table(['Time', 'Kind', 'Reference', 'Amount', 'Balance after'], ledger.ledger.map((e) => html`<tr><td>${when(e.createdAt)}</td><td>${e.kind}</td><td>${e.reference ?? ''}</td><td class="num">${dollars(e.amountMicros)}</td><td class="num">${dollars(e.balanceAfterMicros)}</td></tr>`), 'No ledger entries.', 'ledger')}
<p class="pager">${before !== undefined ? html`<a href="${path}">Newest</a> ` : ''}${ledger.nextBefore !== null ? html`<a href="${path}?before=${ledger.nextBefore}" id="ledger-older">Older entries</a>` : ''}</p>`;
  const done = ctx.req.query.get('done');
  return consolePage(ctx, `Account ${account.id}`, body, { notice: done ? NOTICES[done] : undefined });
}
