// Prometheus metrics, with prom-client. One Registry per gateway owns the metric objects; the
// request path calls the small functions below. What it counts on every request is kept in plain
// numbers and read when Prometheus scrapes: prom-client's own inc() and observe() hash their
// labels and allocate on each call (about 1 µs and 1.5 µs here), several times the rest of a
// metric's work. Labels stay bounded: configured route paths, status classes, error codes, priced
// models, upstream origins; never an account, a key or a raw URL.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type LabelValues, type MetricType } from 'prom-client';
import type { TokenUsage } from './meters/prices.ts';

// Seconds: a gateway's own answer (under 1 ms) up to an AI stream of minutes.
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const COMMIT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const TOKEN_TYPES = ['input', 'cached_input', 'cache_write', 'output'] as const;
// OpenTelemetry's advice for gen_ai.client.token.usage.
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

/** Own endpoints (/_tollgate/…) and requests no route matched, in the route label. */
export const OWN_ROUTE = '/_tollgate/';
export const NO_ROUTE = '(none)';

/** A histogram's counts in plain numbers (one per bucket, not cumulative). */
class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    if (i < b.length) this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

/** A prom-client Histogram whose series are Buckets, read at scrape time. */
class BucketsHistogram extends Histogram<string> {
  constructor(
    private readonly metric: { name: string; help: string; labelNames: string[]; buckets: number[]; registers: Registry[] },
    private readonly series: () => Iterable<[LabelValues<string>, Buckets]>,
  ) {
    super(metric);
  }

  override async get() {
    const { name } = this.metric;
    const values: { labels: LabelValues<string>; value: number; metricName: string }[] = [];
    for (const [labels, b] of this.series()) {
      let acc = 0;
      b.bounds.forEach((le, i) => values.push({ labels: { ...labels, le }, value: (acc += b.counts[i]), metricName: `${name}_bucket` }));
      values.push({ labels: { ...labels, le: '+Inf' }, value: b.count, metricName: `${name}_bucket` });
      values.push({ labels, value: b.sum, metricName: `${name}_sum` });
      values.push({ labels, value: b.count, metricName: `${name}_count` });
    }
    // prom-client's types declare `type` a numeric enum; its registry writes the string it holds.
    return { name, help: this.metric.help, type: 'histogram' as unknown as MetricType, values, aggregator: 'sum' as const, collect: () => undefined };
  }

  /** The Registry prefers this one when a metric has it (Histogram's own reads its own series). */
  getForPromString() {
    return this.get();
  }
}

/** What one configured route (or OWN_ROUTE, NO_ROUTE) counted. */
class RouteSeries {
  /** Responses by status class: index 1 is 1xx … 5 is 5xx. */
  readonly byClass = [0, 0, 0, 0, 0, 0];
  readonly duration = new Buckets(DURATION_BUCKETS);
  readonly upstream = new Buckets(DURATION_BUCKETS);
  chargedMicros = 0;
}

/** Read at scrape time from the gateway's memory. */
export interface MetricSources {
  queuedRows(): number;
  openLeases(): number;
  /** Each upstream origin of a route with several, and whether it is taking requests. */
  upstreams(): Iterable<[origin: string, healthy: boolean]>;
}

// Process metrics (CPU, memory, event loop lag, GC) belong to the process, not to one gateway:
// one registry for all, started with the first gateway (tests start many in one process).
let processRegistry: Registry | undefined;

export class Metrics {
  readonly registry = new Registry();
  private readonly routes = new Map<string, RouteSeries>();
  private readonly refusals = new Map<string, [status: number, n: number]>();
  private readonly commits = new Buckets(COMMIT_BUCKETS);
  private readonly priced: ReadonlySet<string>;
  private readonly sources: Partial<MetricSources> = {};
  /** gen_ai_client_token_usage by provider, model and token type (the key joins the three). */
  private readonly tokenUsage = new Map<string, [LabelValues<string>, Buckets]>();
  /** The same Buckets by provider and model, in TOKEN_TYPES order. */
  private readonly tokenSeries = new Map<string, (Buckets | undefined)[]>();
  private readonly webhooks: Counter<string>;
  private readonly rowsWritten: Counter<string>;
  private readonly busy: Counter<string>;
  private readonly leaseCalls: Counter<string>;
  private readonly ejections: Counter<string>;

  /** `routes`: the configured paths (their series start at zero); `models`: the priced ones. */
  constructor(routes: Iterable<string>, models: Iterable<string>) {
    for (const path of [...routes, OWN_ROUTE, NO_ROUTE]) this.routes.set(path, new RouteSeries());
    this.priced = new Set(models);
    const registers = [this.registry];
    const perRoute = this.routes;
    new Counter({
      name: 'tollgate_requests_total', help: 'Requests answered, by route (the configured path) and status class.',
      labelNames: ['route', 'status_class'], registers,
      collect() {
        this.reset();
        for (const [route, s] of perRoute) {
          for (let c = 1; c <= 5; c++) if (s.byClass[c] > 0) this.inc({ route, status_class: `${c}xx` }, s.byClass[c]);
        }
      },
    });
    const routeSeries = (pick: (s: RouteSeries) => Buckets) => function* () {
      for (const [route, s] of perRoute) if (pick(s).count > 0) yield [{ route }, pick(s)] as [LabelValues<string>, Buckets];
    };
    new BucketsHistogram({
      name: 'tollgate_request_duration_seconds', help: 'From the request\'s arrival to the end of its answer.',
      labelNames: ['route'], buckets: DURATION_BUCKETS, registers,
    }, routeSeries((s) => s.duration));
    new BucketsHistogram({
      name: 'tollgate_upstream_duration_seconds', help: 'From sending a request upstream to its response headers.',
      labelNames: ['route'], buckets: DURATION_BUCKETS, registers,
    }, routeSeries((s) => s.upstream));
    const refusals = this.refusals;
    new Counter({
      name: 'tollgate_refusals_total', help: 'Answers the gateway wrote itself (refusals, upstream failures), by error code and status.',
      labelNames: ['reason', 'status'], registers,
      collect() {
        this.reset();
        for (const [code, [status, n]] of refusals) this.inc({ reason: code.toLowerCase(), status }, n);
      },
    });
    new Counter({
      name: 'tollgate_credits_charged_micros_total', help: 'Micro-dollars charged to prepaid balances, by route.',
      labelNames: ['route'], registers,
      collect() {
        this.reset();
        for (const [route, s] of perRoute) if (s.chargedMicros > 0) this.inc({ route }, s.chargedMicros);
      },
    });
    const tokenUsage = this.tokenUsage;
    new BucketsHistogram({
      name: 'gen_ai_client_token_usage',
      help: 'Tokens per AI request, by provider, model and type (OpenTelemetry GenAI conventions; input counts cached_input and cache_write too).',
      labelNames: ['gen_ai_system', 'gen_ai_request_model', 'gen_ai_token_type'], buckets: TOKEN_BUCKETS, registers,
    }, () => tokenUsage.values());
    this.webhooks = new Counter({
      name: 'tollgate_webhook_events_total', help: 'Stripe events received, by type and outcome (applied, ignored, duplicate, failed).',
      labelNames: ['type', 'outcome'], registers,
    });
    const commits = this.commits;
    new BucketsHistogram({
      name: 'tollgate_usage_commit_duration_seconds', help: 'How long one group commit of usage rows and counters took.',
      labelNames: [], buckets: COMMIT_BUCKETS, registers,
    }, () => (commits.count > 0 ? [[{}, commits]] : []));
    this.rowsWritten = new Counter({ name: 'tollgate_usage_rows_written_total', help: 'Usage rows committed.', registers });
    const sources = this.sources;
    new Gauge({
      name: 'tollgate_usage_queued_rows', help: 'Usage rows waiting for their commit.', registers,
      collect() {
        this.set(sources.queuedRows?.() ?? 0);
      },
    });
    this.busy = new Counter({
      name: 'tollgate_storage_busy_total', help: 'Writes the database refused because another process held its lock (each is retried), by operation.',
      labelNames: ['op'], registers,
    });
    new Gauge({
      name: 'tollgate_leases_open', help: 'Accounts whose balance this gateway holds a lease of.', registers,
      collect() {
        this.set(sources.openLeases?.() ?? 0);
      },
    });
    this.leaseCalls = new Counter({
      name: 'tollgate_lease_calls_total', help: 'Lease calls on the database (take: open or top up; return), by outcome.',
      labelNames: ['call', 'outcome'], registers,
    });
    new Gauge({
      name: 'tollgate_upstream_healthy', help: '1 while an upstream of a route with several takes requests, 0 while it is left out.',
      labelNames: ['upstream'], registers,
      collect() {
        this.reset();
        for (const [upstream, healthy] of sources.upstreams?.() ?? []) this.set({ upstream }, healthy ? 1 : 0);
      },
    });
    this.ejections = new Counter({
      name: 'tollgate_upstream_ejections_total', help: 'Times an upstream was left out after failing in a row.',
      labelNames: ['upstream'], registers,
    });
    if (!processRegistry) {
      processRegistry = new Registry();
      collectDefaultMetrics({ register: processRegistry });
    }
  }

  /** Where the gauges read from, once the parts of the gateway that know exist. */
  watch(sources: Partial<MetricSources>): void {
    Object.assign(this.sources, sources);
  }

  private series(route: string): RouteSeries {
    return this.routes.get(route) ?? this.routes.get(NO_ROUTE)!;
  }

  /** A request answered: `route` is the configured path (or OWN_ROUTE, NO_ROUTE). */
  requestDone(route: string, status: number, seconds: number): void {
    const s = this.series(route);
    const c = (status / 100) | 0;
    if (c >= 1 && c <= 5) s.byClass[c]++;
    s.duration.observe(seconds);
  }

  /** The gateway answered with an error of its own. */
  refused(code: string, status: number): void {
    const r = this.refusals.get(code);
    if (r) r[1]++;
    else this.refusals.set(code, [status, 1]);
  }

  upstreamResponded(route: string, seconds: number): void {
    this.series(route).upstream.observe(seconds);
  }

  charged(route: string, micros: number): void {
    if (micros > 0) this.series(route).chargedMicros += micros;
  }

  /** An AI request's tokens (models without a price, as a BYOK plan may call, count as "other"). */
  tokens(provider: string, model: string, u: TokenUsage): void {
    const m = this.priced.has(model) ? model : 'other';
    // One lookup a request: the model's four series, made the first time each counts something.
    const key = `${provider}\0${m}`;
    let series = this.tokenSeries.get(key);
    if (!series) this.tokenSeries.set(key, (series = [undefined, undefined, undefined, undefined]));
    const cacheWrite = u.cacheWrite5m + u.cacheWrite1h;
    const counts = [u.input + u.cachedInput + cacheWrite, u.cachedInput, cacheWrite, u.output];
    for (let i = 0; i < TOKEN_TYPES.length; i++) {
      if (counts[i] <= 0) continue;
      let b = series[i];
      if (!b) {
        b = series[i] = new Buckets(TOKEN_BUCKETS);
        this.tokenUsage.set(`${key}\0${TOKEN_TYPES[i]}`, [{ gen_ai_system: provider, gen_ai_request_model: m, gen_ai_token_type: TOKEN_TYPES[i] }, b]);
      }
      b.observe(counts[i]);
    }
  }

  webhookEvent(type: string, outcome: string): void {
    this.webhooks.inc({ type, outcome });
  }

  /** A usage commit: how long it took and the rows it wrote; `busy` when the database refused it. */
  committed(ms: number, rows: number, busy: boolean): void {
    if (busy) return void this.busy.inc({ op: 'commit' });
    this.commits.observe(ms / 1000);
    if (rows > 0) this.rowsWritten.inc(rows);
  }

  leaseCall(call: 'take' | 'return', outcome: 'ok' | 'busy' | 'error'): void {
    this.leaseCalls.inc({ call, outcome });
    if (outcome === 'busy') this.busy.inc({ op: 'lease' });
  }

  upstreamEjected(origin: string): void {
    this.ejections.inc({ upstream: origin });
  }

  /** The Prometheus text, this gateway's metrics then the process's. */
  async text(): Promise<string> {
    const [own, proc] = await Promise.all([this.registry.metrics(), processRegistry!.metrics()]);
    return own + proc;
  }

  /** The exposition format's content type (what GET /metrics answers with). */
  get contentType(): string {
    return this.registry.contentType;
  }
}
