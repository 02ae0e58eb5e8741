// The console's front page: the whole gateway per day (requests, billable requests, credits
// charged, Stripe revenue, error rate) over the last 30 days, the top accounts and the failed
// webhooks. Everything comes from the daily rollups (usage_daily) and the small billing tables
// (UiStore.overview, on either backend), so its cost does not grow with the usage table.
import { barChart, type Point } from '../chart.ts';
import { dollars, html, table, when } from '../html.ts';
import type { UiReply } from '../http.ts';
import type { GatewayDay, UiStore } from '../ui-store.ts';
import { consolePage, seg, type ConsoleCtx } from './context.ts';

const DAY_MS = 86_400_000;
export const OVERVIEW_DAYS = 30;

const dayText = (d: number) => new Date(d).toISOString().slice(0, 10);

/** Every day of [from, to) in order, zeros where nothing happened. */
function fill<T extends { day: number }>(rows: T[], from: number, days: number, empty: (day: number) => T): T[] {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  return Array.from({ length: days }, (_, i) => byDay.get(from + i * DAY_MS) ?? empty(from + i * DAY_MS));
}

export async function overviewData(store: UiStore, now: number) {
  const today = now - (now % DAY_MS);
  const from = today - (OVERVIEW_DAYS - 1) * DAY_MS;
  const { daily, revenue, top } = await store.overview(from, today + DAY_MS);
  return {
    days: fill(daily, from, OVERVIEW_DAYS, (day) => ({ day, requests: 0, billable: 0, chargedMicros: 0, errors: 0 })),
    revenue: fill(revenue, from, OVERVIEW_DAYS, (day) => ({ day, micros: 0 })),
    top,
  };
}

const pct = (n: number, of: number) => (of === 0 ? '0%' : `${((n / of) * 100).toFixed(1)}%`);

export async function overviewPage(ctx: ConsoleCtx): Promise<UiReply> {
  const [{ days, revenue, top }, { data: failed }] = await Promise.all([overviewData(ctx.store, ctx.now), ctx.ops.webhookEvents({ failed: true, limit: 10 })]);
  const sum = (f: (d: GatewayDay) => number) => days.reduce((s, d) => s + f(d), 0);
  const requests = sum((d) => d.requests);
  const errors = sum((d) => d.errors);
  const series = (f: (d: GatewayDay) => number): Point[] => days.map((d) => ({ day: dayText(d.day), value: f(d) }));
  const body = html`<div class="cards">
<div class="card"><div class="k">Requests (30 days)</div><div class="v" id="total-requests">${requests}</div></div>
<div class="card"><div class="k">Billable</div><div class="v">${sum((d) => d.billable)}</div></div>
<div class="card"><div class="k">Credits charged</div><div class="v">${dollars(sum((d) => d.chargedMicros))}</div></div>
<div class="card"><div class="k">Stripe revenue</div><div class="v" id="total-revenue">${dollars(revenue.reduce((s, r) => s + r.micros, 0))}</div></div>
<div class="card"><div class="k">Error rate (5xx)</div><div class="v" id="error-rate">${pct(errors, requests)}</div></div>
</div>
<div class="charts">
${barChart('chart-requests', 'Requests', series((d) => d.requests))}
${barChart('chart-billable', 'Billable requests', series((d) => d.billable))}
${barChart('chart-charged', 'Credits charged', series((d) => d.chargedMicros), dollars)}
${barChart('chart-revenue', 'Stripe revenue', revenue.map((r) => ({ day: dayText(r.day), value: r.micros })), dollars)}
${barChart('chart-errors', 'Errors (5xx)', series((d) => d.errors))}
</div>
<h2>Top accounts</h2>
${table(['Account', 'Email', 'Requests', 'Charged'], top.map((a) => html`<tr><td><a href="/accounts/${seg(a.id)}">${a.id}</a></td><td>${a.email ?? ''}</td><td class="num">${a.requests}</td><td class="num">${dollars(a.chargedMicros)}</td></tr>`), 'No requests in the last 30 days.', 'top-accounts')}
<h2>Failed webhooks</h2>
${table(['Event', 'Type', 'Attempts', 'Received', 'Error'], failed.map((e) => html`<tr><td>${e.id}</td><td>${e.type}</td><td class="num">${e.attempts}</td><td>${when(e.receivedAt)}</td><td>${e.note ?? ''}</td></tr>`), 'No failed webhooks.', 'failed-webhooks')}
${failed.length > 0 ? html`<p><a href="/webhooks?failed=1">Replay them on the webhooks page</a></p>` : ''}`;
  return consolePage(ctx, 'Overview', body);
}
