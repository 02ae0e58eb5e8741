// A bar chart per day as inline SVG, drawn on the server: one <rect class="bar"> per day with
// its day and value in data attributes and a <title> tooltip. No script, nothing to load.
import { html, type Html } from './html.ts';

export interface Point {
  /** "2026-11-03" */
  day: string;
  value: number;
}

const W = 600;
const H = 160;
const PAD_LEFT = 44;
const PAD_BOTTOM = 18;

/** `format` shows a value (the axis and the tooltips); `id` names the chart for tests and links. */
export function barChart(id: string, caption: string, points: readonly Point[], format: (v: number) => string = String): Html {
  const max = Math.max(0, ...points.map((p) => p.value));
  const plotW = W - PAD_LEFT;
  const plotH = H - PAD_BOTTOM - 6;
  const step = points.length === 0 ? plotW : plotW / points.length;
  const bars = points.map((p, i) => {
    const h = max === 0 ? 0 : (p.value / max) * plotH;
    const x = PAD_LEFT + i * step + step * 0.1;
    return html`<rect class="bar" data-day="${p.day}" data-value="${p.value}" x="${x.toFixed(1)}" y="${(6 + plotH - h).toFixed(1)}" width="${(step * 0.8).toFixed(1)}" height="${h.toFixed(1)}"><title>${p.day}: ${format(p.value)}</title></rect>`;
  });
  const first = points[0]?.day ?? '';
  const last = points.at(-1)?.day ?? '';
  return html`<figure><figcaption>${caption}</figcaption><svg class="chart" id="${id}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${caption} per day">
<line class="axis" x1="${PAD_LEFT}" y1="${6 + plotH}" x2="${W}" y2="${6 + plotH}"/>
<text x="${PAD_LEFT - 4}" y="14" text-anchor="end">${format(max)}</text><text x="${PAD_LEFT - 4}" y="${6 + plotH}" text-anchor="end">0</text>
${bars}<text x="${PAD_LEFT}" y="${H - 4}">${first}</text><text x="${W}" y="${H - 4}" text-anchor="end">${last}</text></svg></figure>`;
}
