// The token buckets are pure: every call gets the time, so a fake clock is a plain number.
import { describe, expect, it } from 'vitest';
import type { Plan } from '../src/config.ts';
import { bucketShape, Buckets, RateLimiter, type BucketHolder } from '../src/limiter/token-bucket.ts';

const T0 = 1_700_000_000_000;

function plan(p: Partial<Plan> & Pick<Plan, 'limits'>): Plan {
  return { name: 'test', monthlyQuota: null, overage: 'block', byok: false, ...p };
}

/** Takes until refused; returns how many passed. */
function drain(b: Buckets, now: number): number {
  let n = 0;
  while (b.take(now) === 0) n++;
  return n;
}

describe('bucketShape', () => {
  it('makes one window per declared limit, burst sizing only the second window', () => {
    const shape = bucketShape(plan({ limits: { perSecond: 5, perMinute: 60, perDay: 1000 }, burst: 10 }));
    expect(shape.windows.map((w) => [w.name, w.limit, w.capacity, w.windowMs])).toEqual([
      ['second', 5, 10, 1_000],
      ['minute', 60, 60, 60_000],
      ['day', 1000, 1000, 86_400_000],
    ]);
    expect(shape.policy).toBe('"second";q=5;w=1, "minute";q=60;w=60, "day";q=1000;w=86400');
  });

  it('uses the limit as capacity when no burst is given', () => {
    const shape = bucketShape(plan({ limits: { perSecond: 7 } }));
    expect(shape.windows).toHaveLength(1);
    expect(shape.windows[0].capacity).toBe(7);
  });

  it('a plan without limits has no windows', () => {
    expect(bucketShape(plan({ limits: {} })).windows).toEqual([]);
  });
});

describe('Buckets', () => {
  it('lets a burst-sized run through at one instant, then refuses the next one', () => {
    const b = new Buckets(bucketShape(plan({ limits: { perSecond: 5 }, burst: 10 })), T0);
    expect(drain(b, T0)).toBe(10);
    expect(b.waitMs).toBeGreaterThan(0);
  });

  it('refills at the limit rate over time, never above capacity', () => {
    const b = new Buckets(bucketShape(plan({ limits: { perSecond: 5 }, burst: 10 })), T0);
    expect(drain(b, T0)).toBe(10);
    // 5 per second: one token every 200 ms.
    expect(b.take(T0 + 199)).toBeGreaterThan(0);
    expect(b.take(T0 + 200)).toBe(0);
    expect(b.take(T0 + 200)).toBeGreaterThan(0);
    expect(drain(b, T0 + 200 + 1_000)).toBe(5);
    // A long pause fills the bucket to its capacity and no further.
    expect(drain(b, T0 + 3_600_000)).toBe(10);
  });

  it('all-or-nothing: when the minute window is empty, the second window is not consumed', () => {
    const b = new Buckets(bucketShape(plan({ limits: { perSecond: 10, perMinute: 3 } })), T0);
    expect(drain(b, T0)).toBe(3);
    const [second, minute] = b.tokens;
    expect(second).toBe(7);
    expect(minute).toBe(0);

    // Refused over and over at the same instant: neither window moves.
    for (let i = 0; i < 5; i++) expect(b.take(T0)).toBeGreaterThan(0);
    expect([...b.tokens]).toEqual([7, 0]);

    // Half a second later the second window has refilled by 5 (to its capacity of 10) and the
    // minute window by 0.025; the refused take still takes nothing from the second window.
    expect(b.take(T0 + 500)).toBeGreaterThan(0);
    expect(b.tokens[0]).toBe(10);
    expect(b.tokens[1]).toBeCloseTo(0.025, 10);
  });

  it('all-or-nothing: an empty second window leaves the minute and day windows untouched', () => {
    const b = new Buckets(bucketShape(plan({ limits: { perSecond: 2, perMinute: 60, perDay: 1000 } })), T0);
    expect(drain(b, T0)).toBe(2);
    expect([...b.tokens]).toEqual([0, 58, 998]);
    b.take(T0);
    b.take(T0);
    expect([...b.tokens]).toEqual([0, 58, 998]);
  });

  it('the wait is that of the most-lacking window, in whole milliseconds', () => {
    const b = new Buckets(bucketShape(plan({ limits: { perSecond: 10, perMinute: 3 } })), T0);
    drain(b, T0);
    // The second window has tokens; the minute window needs one token at 3/min: 20 s.
    expect(b.take(T0)).toBe(20_000);
    expect(b.waitMs).toBe(20_000);
    expect(b.take(T0 + 5_000)).toBe(15_000);
    expect(b.take(T0 + 20_000)).toBe(0);

    const s = new Buckets(bucketShape(plan({ limits: { perSecond: 3, perMinute: 600 } })), T0);
    drain(s, T0);
    // Now the second window lacks most: one token at 3/s is 333.3… ms, rounded up.
    expect(s.take(T0)).toBe(334);
  });

  it('header() never reports more left than the policy\'s quota, and t is the wait for one more', () => {
    const b = new Buckets(bucketShape(plan({ limits: { perSecond: 5, perMinute: 60 }, burst: 10 })), T0);
    b.take(T0);
    // second: 9 tokens in a bucket of 10, but the policy says q=5: r=5, nothing to wait for.
    expect(b.shape.policy).toBe('"second";q=5;w=1, "minute";q=60;w=60');
    expect(b.header()).toBe('"second";r=5');
    for (let i = 0; i < 9; i++) b.take(T0);
    // Empty: one more token at 5/s is 0.2 s away → t=1, as a refusal's Retry-After would say.
    expect(b.header()).toBe('"second";r=0;t=1');
    expect(b.take(T0)).toBe(200);
    expect(b.header()).toBe('"second";r=0;t=1');
  });

  it('header() switches to the minute window once it has fewer requests left', () => {
    const b = new Buckets(bucketShape(plan({ limits: { perSecond: 10, perMinute: 12 } })), T0);
    expect(drain(b, T0)).toBe(10);
    // A second later: the second window is full again (10 → 9 after this take); the minute window
    // has 2 + 0.2 − 1 = 1.2 left, 0.8 short of a second request at 0.2/s: 4 s.
    expect(b.take(T0 + 1_000)).toBe(0);
    expect(b.tightest).toBe(1);
    expect(b.header()).toBe('"minute";r=1;t=4');
  });

  it('header() after a refusal still names the window and never a negative count', () => {
    const b = new Buckets(bucketShape(plan({ limits: { perMinute: 2 } })), T0);
    b.take(T0);
    b.take(T0);
    expect(b.take(T0)).toBe(30_000);
    expect(b.header()).toBe('"minute";r=0;t=30');
  });

  it('ignores a clock that goes backwards instead of minting tokens', () => {
    const b = new Buckets(bucketShape(plan({ limits: { perSecond: 1 } })), T0);
    expect(b.take(T0)).toBe(0);
    expect(b.take(T0 - 10_000)).toBeGreaterThan(0);
  });
});

describe('RateLimiter', () => {
  const limited = plan({ limits: { perSecond: 2 } });

  const holder = (): BucketHolder => ({ buckets: undefined, accountId: 'acct_test' });

  it('keeps one set of buckets per account, shared by its requests', () => {
    const rl = new RateLimiter();
    const a = holder();
    expect(rl.take(a, limited, T0)!.waitMs).toBe(0);
    expect(rl.take(a, limited, T0)!.waitMs).toBe(0);
    expect(rl.take(a, limited, T0)!.waitMs).toBeGreaterThan(0);
    // Another account is not affected.
    expect(rl.take(holder(), limited, T0)!.waitMs).toBe(0);
  });

  it('rebuilds the buckets when the account changes plan', () => {
    const rl = new RateLimiter();
    const a = holder();
    rl.take(a, limited, T0);
    rl.take(a, limited, T0);
    expect(rl.take(a, limited, T0)!.waitMs).toBeGreaterThan(0);
    const bigger = plan({ name: 'pro', limits: { perSecond: 100 } });
    const b = rl.take(a, bigger, T0)!;
    expect(b.waitMs).toBe(0);
    expect(b.shape.policy).toBe('"second";q=100;w=1');
    expect(b.tokens[0]).toBe(99);
  });

  it('a plan with no limits gets no buckets at all', () => {
    const rl = new RateLimiter();
    const a = holder();
    for (let i = 0; i < 1000; i++) expect(rl.take(a, plan({ limits: {} }), T0)).toBeUndefined();
  });
});
