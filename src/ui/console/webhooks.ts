// Webhooks: the latest Stripe events received (or only the failed ones), each failed one with a
// Replay button that applies it again through the webhook's own path (Admin.replayWebhook).
import { form, html, table, when } from '../html.ts';
import { redirect, type UiReply } from '../http.ts';
import { consolePage, seg, type ConsoleCtx } from './context.ts';

const PAGE = 50;
const OUTCOMES = new Set(['applied', 'ignored', 'duplicate', 'failed']);

export async function webhooksPage(ctx: ConsoleCtx): Promise<UiReply> {
  const failed = ctx.req.query.get('failed') === '1';
  const after = ctx.req.query.get('after') || undefined;
  const { data, next } = await ctx.ops.webhookEvents({ failed, limit: PAGE, after });
  const rows = data.map((e) => html`<tr data-event="${e.id}"><td><code>${e.id}</code></td><td>${e.type}</td><td class="status-${e.status}">${e.status}</td><td class="num">${e.attempts}</td><td>${when(e.receivedAt)}</td><td>${e.note ?? ''}</td><td>${
    e.status === 'failed' ? form(`/webhooks/${seg(e.id)}/replay`, ctx.csrf, html`<button type="submit" class="replay">Replay</button>`) : ''}</td></tr>`);
  const replayed = ctx.req.query.get('replayed');
  const base = failed ? '/webhooks?failed=1&' : '/webhooks?';
  const body = html`<p>${failed ? html`<a href="/webhooks">All events</a> · <strong>Failed only</strong>` : html`<strong>All events</strong> · <a href="/webhooks?failed=1" id="only-failed">Failed only</a>`}</p>
${table(['Event', 'Type', 'Status', 'Attempts', 'Received', 'Note', ''], rows, failed ? 'No failed events.' : 'No events received yet.', 'events')}
<p class="pager">${next ? html`<a href="${base}after=${seg(next)}">Older events</a>` : ''}</p>`;
  return consolePage(ctx, 'Webhooks', body, { notice: replayed && OUTCOMES.has(replayed) ? `Replayed: ${replayed}.` : undefined });
}

export async function replayWebhook(ctx: ConsoleCtx): Promise<UiReply> {
  const replay = await ctx.ops.replayWebhook(ctx.params.id);
  return redirect(`/webhooks?replayed=${seg(replay.outcome)}`);
}
