// In-process token buckets, one per window of the plan (second, minute, day), shared by all of an
// account's keys. All-or-nothing: a refused request takes from no bucket. Pure: the caller
// passes the time, so tests drive it with a fake clock.
import type { Plan } from '../config.ts';

export interface WindowSpec {
  name: 'second' | 'minute' | 'day';
  limit: number;
  windowMs: number;
  capacity: number;
  perMs: number;
}

export interface BucketShape {
  windows: WindowSpec[];
  /** The constant RateLimit-Policy header value of the plan (IETF draft-ietf-httpapi-ratelimit-headers). */
  policy: string;
}

const WINDOWS = [
  ['second', 'perSecond', 1_000],
  ['minute', 'perMinute', 60_000],
  ['day', 'perDay', 86_400_000],
] as const;

export function bucketShape(plan: Plan): BucketShape {
  const windows: WindowSpec[] = [];
  for (const [name, field, windowMs] of WINDOWS) {
    const limit = plan.limits[field];
    if (limit === undefined) continue;
    const capacity = name === 'second' && plan.burst !== undefined ? plan.burst : limit;
    windows.push({ name, limit, windowMs, capacity, perMs: limit / windowMs });
  }
  const policy = windows.map((w) => `"${w.name}";q=${w.limit};w=${w.windowMs / 1000}`).join(', ');
  return { windows, policy };
}

/** An account's rate limits after a take: `waitMs` is 0 when the request may pass. */
export interface Limits {
  readonly shape: BucketShape;
  readonly waitMs: number;
  /** The RateLimit header value. */
  header(): string;
}

/** Takes one request's tokens from an account's limits: in memory here, shared by nodes in shared-buckets.ts. */
export interface Limiter {
  take(holder: BucketHolder, plan: Plan, now: number): Limits | undefined | Promise<Limits>;
}

export class Buckets implements Limits {
  // A plain array: per account it is half the memory of a Float64Array and its buffer.
  readonly tokens: number[];
  private last: number;
  /**
   * After take(): the window the RateLimit header reports. On a refusal, the one that refused
   * longest (its wait is Retry-After); else the one with the fewest requests left.
   */
  tightest = 0;
  /** After take(): 0, or how many ms until every window has a token again. */
  waitMs = 0;

  constructor(readonly shape: BucketShape, now: number) {
    this.tokens = shape.windows.map((w) => w.capacity);
    this.last = now;
  }

  /** Takes one token from every window; returns 0, or how many ms until all of them have one. */
  take(now: number): number {
    const { windows } = this.shape;
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    let waitMs = 0;
    let gating = 0;
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i];
      const t = Math.min(w.capacity, this.tokens[i] + elapsed * w.perMs);
      this.tokens[i] = t;
      if (t < 1 && (1 - t) / w.perMs > waitMs) {
        waitMs = (1 - t) / w.perMs;
        gating = i;
      }
    }
    if (waitMs === 0) {
      for (let i = 0; i < windows.length; i++) this.tokens[i] -= 1;
      for (let i = 1; i < windows.length; i++) if (this.left(i) < this.left(gating)) gating = i;
    }
    this.tightest = gating;
    return (this.waitMs = Math.ceil(waitMs));
  }

  /**
   * What a client may still send in window `i` as RateLimit counts it: never more than the
   * policy's quota (a burst bucket may hold more), so the two headers agree.
   */
  private left(i: number): number {
    return Math.min(Math.floor(this.tokens[i]), this.shape.windows[i].limit);
  }

  /**
   * The RateLimit header value (draft-ietf-httpapi-ratelimit-headers): the reported window's
   * requests left and, when it is not full, the seconds until it gains one more. On a refusal
   * that is when the request may be retried: the same figure as Retry-After.
   */
  header(): string {
    const i = this.tightest;
    const w = this.shape.windows[i];
    const r = this.left(i);
    const name = `"${w.name}";r=${r}`;
    if (this.waitMs > 0) return `${name};t=${Math.ceil(this.waitMs / 1000)}`;
    if (r >= w.limit) return name;
    return `${name};t=${Math.ceil((Math.floor(this.tokens[i]) + 1 - this.tokens[i]) / w.perMs / 1000)}`;
  }
}

/** Whoever keeps an account's buckets: the account's state in memory. */
export interface BucketHolder { buckets: Limits | undefined; readonly accountId: string }

/** The buckets of a plan's shape, rebuilt when the account changes plan. */
export class RateLimiter implements Limiter {
  private readonly shapes = new WeakMap<Plan, BucketShape>();

  /** The account's buckets after a take(): their `waitMs` is 0 when the request may pass. */
  take(holder: BucketHolder, plan: Plan, now: number): Buckets | undefined {
    let shape = this.shapes.get(plan);
    if (!shape) this.shapes.set(plan, (shape = bucketShape(plan)));
    if (shape.windows.length === 0) return undefined;
    const had = holder.buckets;
    const b = had instanceof Buckets && had.shape === shape ? had : (holder.buckets = new Buckets(shape, now));
    b.take(now);
    return b;
  }
}
