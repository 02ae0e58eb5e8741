// Stage 2: token buckets per account, before anything that costs money. Shared by several nodes
// (PostgreSQL), a take may wait for a slice of the shared buckets.
import { GatewayError } from '../errors.ts';
import type { Limiter, Limits } from '../limiter/token-bucket.ts';
import type { RequestContext } from './context.ts';

export function rateLimit(ctx: RequestContext, limiter: Limiter, now: number): void | Promise<void> {
  const buckets = limiter.take(ctx.state!, ctx.plan!, now);
  if (buckets instanceof Promise) return buckets.then((b) => limited(ctx, b));
  limited(ctx, buckets);
}

function limited(ctx: RequestContext, buckets: Limits | undefined): void {
  if (!buckets) return;
  ctx.responseHeaders.push('ratelimit-policy', buckets.shape.policy, 'ratelimit', buckets.header());
  if (buckets.waitMs > 0) {
    throw new GatewayError('RATE_LIMITED', { retryAfterS: Math.max(1, Math.ceil(buckets.waitMs / 1000)) });
  }
}
