// Attempts per client address in a sliding window (sign-in, signup): pure, takes the time.
export class Throttle {
  private readonly seen = new Map<string, number[]>();

  constructor(readonly limit: number, readonly windowMs: number) {}

  /** 0 when the attempt is allowed (and counted), else how many ms until one is. */
  take(client: string, now: number): number {
    const times = (this.seen.get(client) ?? []).filter((t) => t > now - this.windowMs);
    if (times.length >= this.limit) {
      this.seen.set(client, times);
      return times[0] + this.windowMs - now;
    }
    times.push(now);
    this.seen.set(client, times);
    // Bounded: addresses that stopped trying are forgotten once the map grows.
    if (this.seen.size > 10_000) for (const [k, v] of this.seen) if (v.every((t) => t <= now - this.windowMs)) this.seen.delete(k);
    return 0;
  }
}
