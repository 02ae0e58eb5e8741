// Where a route's requests go. One undici Pool per upstream origin, shared by the routes naming
// it. A route with several upstreams spreads its requests over them, round-robin, with passive
// health as Caddy's and Kong's: an origin that fails MAX_FAILS times in a row (no connection, a
// timeout, a 5xx) is left out for COOL_DOWN_MS, then one request tries it again (half-open): a
// success brings it back, a failure leaves it out another cool-down. When every upstream of a
// route is out, its requests are answered 503 at once rather than each waiting for a connect
// timeout. A route with one upstream has nowhere else to send a request, so it always tries it
// (nginx ignores max_fails for a lone server, for the same reason).
import { Pool } from 'undici';
import type { Route } from '../config.ts';
import { GatewayError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

export const MAX_FAILS = 3;
export const COOL_DOWN_MS = 10_000;

const UPSTREAM_TIMEOUT = new GatewayError('UPSTREAM_TIMEOUT');

export interface UpstreamOptions {
  /** Connections per upstream origin. */
  connections: number;
  /** How long a request body may pause between chunks. */
  bodyTimeoutMs: number;
  /** How long a response may wait for a client that stopped reading. */
  writeTimeoutMs: number;
  maxBodyBytes: number;
  /** Milliseconds since the epoch (the cool-downs run on it; tests pass a fake clock). */
  now: () => number;
}

/** One upstream origin: its connections and its health, whichever routes name it. */
export class Origin {
  /** Failures in a row; MAX_FAILS or more: left out until `outUntil`. */
  failures = 0;
  outUntil = 0;
  /** Named by a route with several upstreams: its health is kept (see the top of the file). */
  watched = false;

  constructor(readonly name: string, readonly pool: Pool) {}

  /** Whether a request may go here now; past a cool-down it takes this one request (half-open). */
  available(now: number): boolean {
    if (this.failures < MAX_FAILS) return true;
    if (now < this.outUntil) return false;
    this.outUntil = now + COOL_DOWN_MS; // the next try after another cool-down, whatever this one gives
    return true;
  }
}

/** One upstream of one route: where its pool is and the base path requests go under. */
export interface Upstream { origin: Origin; basePath: string; owner: Upstreams }

interface RouteUpstreams { list: Upstream[]; next: number }

/**
 * A request waiting for a connection; failed when it waits too long. While it waits it is linked
 * into Upstreams' list through its own fields, and unlinked (its links cleared) when it starts.
 */
export interface Queued {
  fail(err: Error): void;
  /** When it is failed (performance.now()); 0 while it is not queued. */
  waitDeadline: number;
  waitPrev: Queued | undefined;
  waitNext: Queued | undefined;
}

export class Upstreams {
  private readonly byRoute = new Map<Route, RouteUpstreams>();
  private readonly origins = new Map<string, Origin>();
  /**
   * Requests queued for a connection, oldest first. undici's headersTimeout starts only once a
   * request is written to a connection (and an upload may rightly take long): one queued behind a
   * full pool would wait for ever. A sweep every 250 ms ends them (a timer per request would cost
   * more); once a connection takes a request, undici's timeouts run.
   *
   * A list through the requests' own fields, not a Map: every request is added and removed, and a
   * Map that churns leaves its old hash tables pointing to the new ones. Once one such table had
   * been promoted, each later request's objects were kept through two scavenges and promoted too:
   * 2.9 MB per scavenge instead of 90 KB, and a fifth fewer requests/s, in one run out of two.
   */
  private first: Queued | undefined = undefined;
  private last: Queued | undefined = undefined;
  private readonly sweep: NodeJS.Timeout;

  constructor(routes: readonly Route[], readonly options: UpstreamOptions, private readonly metrics?: Metrics, private readonly log?: Logger) {
    for (const r of routes) {
      const list = r.upstreams.map((url): Upstream => {
        let origin = this.origins.get(url.origin);
        if (!origin) {
          origin = new Origin(url.origin, new Pool(url.origin, { connections: options.connections, keepAliveTimeout: 30_000 }));
          this.origins.set(url.origin, origin);
        }
        const p = url.pathname;
        return { origin, basePath: p === '/' ? '' : p.replace(/\/$/, ''), owner: this };
      });
      if (list.length > 1) for (const u of list) u.origin.watched = true;
      this.byRoute.set(r, { list, next: 0 });
    }
    this.sweep = setInterval(() => {
      const now = performance.now();
      for (let h = this.first; h !== undefined;) {
        const next = h.waitNext;
        if (h.waitDeadline <= now) {
          this.dequeue(h);
          h.fail(UPSTREAM_TIMEOUT);
        }
        h = next;
      }
    }, 250).unref();
    metrics?.watch({ upstreams: () => this.health() });
  }

  /** The upstream for the route's next request; UPSTREAM_UNAVAILABLE (503) when all are left out. */
  pick(route: Route): Upstream {
    const set = this.byRoute.get(route)!;
    const { list } = set;
    if (list.length === 1) return list[0];
    const now = this.options.now();
    for (let i = 0; i < list.length; i++) {
      const at = (set.next + i) % list.length;
      if (list[at].origin.available(now)) {
        set.next = at + 1;
        return list[at];
      }
    }
    let back = Infinity;
    for (const u of list) back = Math.min(back, u.origin.outUntil);
    throw new GatewayError('UPSTREAM_UNAVAILABLE', { retryAfterS: Math.max(1, Math.ceil((back - now) / 1000)) });
  }

  /** An upstream's response headers arrived, `ms` after the request was sent. */
  responded(route: string, origin: Origin, status: number, ms: number): void {
    this.metrics?.upstreamResponded(route, ms / 1000);
    this.outcome(origin, status < 500);
  }

  /** A request sent to `origin` got no answer (no connection, reset, timeout). */
  failed(origin: Origin): void {
    this.outcome(origin, false);
  }

  private outcome(origin: Origin, ok: boolean): void {
    if (!origin.watched) return;
    if (ok) {
      if (origin.failures >= MAX_FAILS) this.log?.info('upstream back', { upstream: origin.name });
      origin.failures = 0;
      return;
    }
    if (++origin.failures < MAX_FAILS) return;
    origin.outUntil = this.options.now() + COOL_DOWN_MS;
    if (origin.failures > MAX_FAILS) return; // out already (a try after the cool-down failed)
    this.metrics?.upstreamEjected(origin.name);
    this.log?.warn('upstream left out after failing in a row', { upstream: origin.name, failures: MAX_FAILS, coolDownMs: COOL_DOWN_MS });
  }

  /** Every origin named by a route with several upstreams, and whether it takes requests. */
  private *health(): Iterable<[string, boolean]> {
    for (const origin of this.origins.values()) if (origin.watched) yield [origin.name, origin.failures < MAX_FAILS];
  }

  queued(handler: Queued, timeoutMs: number): void {
    handler.waitDeadline = performance.now() + timeoutMs;
    handler.waitPrev = this.last;
    if (this.last) this.last.waitNext = handler;
    else this.first = handler;
    this.last = handler;
  }

  /** Takes the request out of the queue (a connection took it, it ended, or it timed out); again, it does nothing. */
  dequeue(handler: Queued): void {
    if (handler.waitDeadline === 0) return;
    handler.waitDeadline = 0;
    const { waitPrev: prev, waitNext: next } = handler;
    if (prev) prev.waitNext = next;
    else this.first = next;
    if (next) next.waitPrev = prev;
    else this.last = prev;
    handler.waitPrev = handler.waitNext = undefined;
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    await Promise.all([...this.origins.values()].map((o) => o.pool.close()));
  }
}
