// Rate limits across several nodes (PostgreSQL): each window's tokens live in one bucket in the
// database (pg/pg-rate-buckets.ts). A node takes a slice of them, a hundredth of the window's
// capacity and at least one token, and spends it in memory. So what all nodes admit never exceeds
// what the shared bucket gave; what a node holds unspent is at most a slice per window, so steady
// traffic under the limit is refused only within a slice per node of it. A refusal is answered
// from memory until the shared bucket can have a token again: a client hammering past its limit
// costs no round trips.
import type { Plan } from '../config.ts';
import { bucketShape, type BucketHolder, type BucketShape, type Limiter, type Limits } from './token-bucket.ts';

export interface TokenStore {
  /** Takes up to `want` whole tokens from the account's bucket of `window`: what it took, and what the bucket has left. */
  take(accountId: string, window: string, capacity: number, perMs: number, want: number): Promise<{ taken: number; tokens: number }>;
}

const SLICE = 0.01;

export class SharedBuckets implements Limits {
  /** Tokens taken from the shared buckets and not spent yet, by window. */
  readonly held: number[];
  /** What each shared bucket had left after this node's last take (for the RateLimit header). */
  readonly left: number[];
  waitMs = 0;
  tightest = 0;
  /** Refused until then (performance.now()): the shared bucket had no token to give. */
  refusedUntil = 0;
  /** Takes in flight: requests that need them wait for them together. */
  pending: Promise<void> | undefined = undefined;

  constructor(readonly shape: BucketShape, readonly accountId: string) {
    this.held = shape.windows.map(() => 0);
    this.left = shape.windows.map((w) => w.capacity);
  }

  /** One token of every window, when all of them are held: true; else nothing is spent. */
  spend(): boolean {
    const { held } = this;
    for (let i = 0; i < held.length; i++) if (held[i] < 1) return false;
    let tightest = 0;
    for (let i = 0; i < held.length; i++) {
      held[i]--;
      if (this.remaining(i) < this.remaining(tightest)) tightest = i;
    }
    this.tightest = tightest;
    this.waitMs = 0;
    return true;
  }

  private remaining(i: number): number {
    return Math.min(Math.floor(this.held[i] + this.left[i]), this.shape.windows[i].limit);
  }

  /**
   * As Buckets.header() says it: on a refusal the seconds until a retry; else, when the window
   * is not full, the seconds until it gains one more (from what the shared bucket had at this
   * node's last take).
   */
  header(): string {
    const i = this.tightest;
    const w = this.shape.windows[i];
    const r = this.remaining(i);
    const name = `"${w.name}";r=${r}`;
    if (this.waitMs > 0) return `${name};t=${Math.ceil(this.waitMs / 1000)}`;
    if (r >= w.limit) return name;
    const tokens = this.held[i] + this.left[i];
    return `${name};t=${Math.ceil((Math.floor(tokens) + 1 - tokens) / w.perMs / 1000)}`;
  }
}

export class SharedRateLimiter implements Limiter {
  private readonly shapes = new WeakMap<Plan, BucketShape>();

  constructor(private readonly store: TokenStore) {}

  take(holder: BucketHolder, plan: Plan): Limits | undefined | Promise<Limits> {
    let shape = this.shapes.get(plan);
    if (!shape) this.shapes.set(plan, (shape = bucketShape(plan)));
    if (shape.windows.length === 0) return undefined;
    const had = holder.buckets;
    const b = had instanceof SharedBuckets && had.shape === shape ? had : (holder.buckets = new SharedBuckets(shape, holder.accountId));
    return this.spendFrom(b);
  }

  private spendFrom(b: SharedBuckets): Limits | Promise<Limits> {
    if (b.spend()) return b;
    const t = performance.now();
    if (t < b.refusedUntil) {
      b.waitMs = Math.ceil(b.refusedUntil - t);
      return b;
    }
    b.pending ??= this.refill(b).finally(() => (b.pending = undefined));
    return b.pending.then(() => this.spendFrom(b));
  }

  /** Takes a slice of every window this node holds no token of; a window that gets none refuses until it may have one. */
  private async refill(b: SharedBuckets): Promise<void> {
    const { windows } = b.shape;
    await Promise.all(windows.map(async (w, i) => {
      if (b.held[i] >= 1) return;
      const { taken, tokens } = await this.store.take(b.accountId, w.name, w.capacity, w.perMs, Math.max(1, Math.ceil(w.capacity * SLICE)));
      b.held[i] += taken;
      b.left[i] = tokens;
      if (taken === 0) {
        const waitMs = (1 - tokens) / w.perMs;
        if (performance.now() + waitMs > b.refusedUntil) {
          b.refusedUntil = performance.now() + waitMs;
          b.tightest = i;
        }
      }
    }));
  }
}
