// Stage 2: token buckets per account, before anything that costs money.
import { GatewayError } from '../errors.ts';
import type { RateLimiter } from '../limiter/token-bucket.ts';
import type { RequestContext } from './context.ts';

export function rateLimit(ctx: RequestContext, limiter: RateLimiter, now: number): void {
  const buckets = limiter.take(ctx.state!, ctx.plan!, now);
  if (!buckets) return;
  ctx.responseHeaders.push('ratelimit-policy', buckets.shape.policy, 'ratelimit', buckets.header());
  if (buckets.waitMs > 0) {
    throw new GatewayError('RATE_LIMITED', { retryAfterS: Math.max(1, Math.ceil(buckets.waitMs / 1000)) });
  }
}
