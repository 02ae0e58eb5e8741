// Reading GET /metrics as Prometheus does: a strict parser of the text exposition format
// (version 0.0.4) and a stand-in for the admin listener that serves the gateway's handler.
import { expect } from 'vitest';
import type { App } from '../src/app.ts';

export interface Sample { name: string; labels: Record<string, string>; value: number }

export interface Exposition {
  /** Metric family → its TYPE. */
  types: Map<string, string>;
  samples: Sample[];
  /** The value of the sample with exactly these labels (undefined when there is none). */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Summed over every sample of `name` whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

/** Parses the text format; throws on any line Prometheus would refuse. */
export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      if (types.has(type[1])) throw new Error(`metric family ${type[1]} declared twice`);
      types.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith('#')) throw new Error(`unexpected comment: ${line}`);
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      LABEL.lastIndex = 0;
      while (LABEL.lastIndex < m[2].length) {
        const l = LABEL.exec(m[2]);
        if (!l) throw new Error(`bad labels in ${JSON.stringify(line)}`);
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
    }
    // Prometheus reads values with Go's ParseFloat: NaN in any case (prom-client writes "Nan").
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : /^nan$/i.test(m[3]) ? NaN : Number(m[3]);
    if (Number.isNaN(value) && !/^nan$/i.test(m[3])) throw new Error(`bad value in ${JSON.stringify(line)}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    if (!types.has(m[1]) && !types.has(family)) throw new Error(`sample before its TYPE: ${line}`);
    samples.push({ name: m[1], labels, value });
  }
  const matches = (s: Sample, labels: Record<string, string>) => Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  return {
    types,
    samples,
    value(name, labels = {}) {
      const want = Object.keys(labels).length;
      return samples.find((s) => s.name === name && Object.keys(s.labels).length === want && matches(s, labels))?.value;
    },
    sum(name, labels = {}) {
      return samples.filter((s) => s.name === name && matches(s, labels)).reduce((a, s) => a + s.value, 0);
    },
  };
}

/** Every histogram series: buckets cumulative and ending at +Inf with the series' _count. */
export function checkHistograms(e: Exposition): void {
  for (const [family, type] of e.types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const s of e.samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le, ...rest } = s.labels;
      const k = JSON.stringify(rest);
      series.set(k, [...(series.get(k) ?? []), { ...s, labels: { le } }]);
    }
    for (const [k, buckets] of series) {
      for (let i = 1; i < buckets.length; i++) expect(buckets[i].value, `${family} ${k}`).toBeGreaterThanOrEqual(buckets[i - 1].value);
      expect(buckets.at(-1)!.labels.le, `${family} ${k}`).toBe('+Inf');
      expect(e.value(`${family}_count`, JSON.parse(k) as Record<string, string>), `${family} ${k}`).toBe(buckets.at(-1)!.value);
    }
  }
}

export interface Scraper {
  /** GET /metrics, parsed (and checked). */
  scrape(): Promise<Exposition>;
  contentType(): Promise<string | null>;
  close(): Promise<void>;
}

/** The admin token the metrics tests start their gateways with (env ADMIN_TOKEN). */
export const METRICS_TOKEN = 'metrics-test-token-0123456789';

/** GET /metrics on the app's admin listener, on 127.0.0.1:0 (the gateway was started with METRICS_TOKEN). */
export async function metricsListener(app: App): Promise<Scraper> {
  const port = await app.admin!.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}/metrics`;
  const headers = { authorization: `Bearer ${METRICS_TOKEN}` };
  return {
    async scrape() {
      const res = await fetch(url, { headers });
      expect(res.status).toBe(200);
      const e = parseExposition(await res.text());
      checkHistograms(e);
      return e;
    },
    async contentType() {
      const res = await fetch(url, { headers });
      await res.arrayBuffer();
      return res.headers.get('content-type');
    },
    close: () => app.admin!.close(),
  };
}
