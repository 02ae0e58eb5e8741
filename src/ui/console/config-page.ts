// Configuration, read-only: routes, plans and model prices as the admin API's GET /config shows
// them (secrets redacted there).
import { dollars, html, table } from '../html.ts';
import type { UiReply } from '../http.ts';
import { consolePage, type ConsoleCtx } from './context.ts';

const limits = (l: Record<string, number | undefined>) => Object.entries(l).filter(([, v]) => v !== undefined).map(([k, v]) => `${v}/${k.replace(/^per/, '').toLowerCase()}`).join(', ');
const perMillion = (micros: number | undefined) => (micros === undefined ? '' : `${dollars(micros)}`);

export async function configPage(ctx: ConsoleCtx): Promise<UiReply> {
  const c = await ctx.ops.config();
  const body = html`<p class="muted">From ${c.source}; default plan <strong>${c.defaultPlan}</strong>. Change these in the configuration and restart.</p>
<h2>Routes</h2>
${table(['Path', 'Upstreams', 'Price', 'Counted', 'Auth', 'Priced by'], c.routes.map((r) => html`<tr><td><code>${r.path}</code></td><td>${r.upstreams.join(', ')}</td><td class="num">${dollars(r.priceMicros)}</td><td>${r.metered ? 'yes' : 'no'}</td><td>${r.auth ? 'key' : 'open'}</td><td>${r.meter ?? 'request'}</td></tr>`), 'No routes.', 'routes')}
<h2>Plans</h2>
${table(['Plan', 'Limits', 'Monthly quota', 'Overage', 'Stripe price', 'Models'], Object.values(c.plans).map((p) => html`<tr><td>${p.name}</td><td>${limits(p.limits as Record<string, number | undefined>)}</td><td class="num">${p.monthlyQuota ?? 'none'}</td><td>${p.overage}</td><td>${p.stripePrice ?? ''}</td><td>${p.models?.join(', ') ?? 'all'}</td></tr>`), 'No plans.', 'plans')}
<h2>Model prices (per million tokens)</h2>
${table(['Model', 'Input', 'Cached input', 'Output'], Object.entries(c.prices).map(([model, p]) => html`<tr><td>${model}</td><td class="num">${perMillion(p.input)}</td><td class="num">${perMillion(p.cachedInput)}</td><td class="num">${perMillion(p.output)}</td></tr>`), 'No model prices.', 'prices')}`;
  return consolePage(ctx, 'Configuration', body);
}
