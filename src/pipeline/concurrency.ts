// How many upstream requests one client holds at once: an account on authenticated routes, a
// client address on auth-free ones. Without a cap one client's slow uploads or long streams take
// every connection of an upstream's pool and everyone else's requests queue behind them.
import type { ServerResponse } from 'node:http';
import { GatewayError } from '../errors.ts';

const HOLDER = Symbol('tollgate.concurrency');
type Holding = ServerResponse & { [HOLDER]?: [Concurrency, string] };

function release(this: Holding): void {
  const [limit, client] = this[HOLDER]!;
  limit.release(client);
}

export class Concurrency {
  private readonly held = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Takes one of `client`'s slots until `res` closes; TOO_MANY_CONCURRENT when it holds them all. */
  take(client: string, res: ServerResponse): void {
    const n = this.held.get(client) ?? 0;
    if (n >= this.max) throw new GatewayError('TOO_MANY_CONCURRENT', { retryAfterS: 1 });
    this.held.set(client, n + 1);
    (res as Holding)[HOLDER] = [this, client];
    res.on('close', release);
  }

  release(client: string): void {
    const n = this.held.get(client)! - 1;
    if (n === 0) this.held.delete(client);
    else this.held.set(client, n);
  }
}
