// How many upstream requests one client holds at once: an account on authenticated routes, a
// client address on auth-free ones. Without a cap one client's slow uploads or long streams take
// every connection of an upstream's pool and everyone else's requests queue behind them. An
// account's count lives in its state (it also keeps an account with requests in flight in memory).
import type { ServerResponse } from 'node:http';
import { GatewayError } from '../errors.ts';
import type { AccountState } from '../state/accounts.ts';

const HOLDER = Symbol('tollgate.concurrency');
type Holding = ServerResponse & { [HOLDER]?: AccountState | string };

export class Concurrency {
  private readonly byAddress = new Map<string, number>();
  private readonly release: (this: Holding) => void;

  constructor(private readonly max: number) {
    const byAddress = this.byAddress;
    this.release = function release(this: Holding) {
      const holder = this[HOLDER]!;
      if (typeof holder !== 'string') holder.inFlight--;
      else {
        const n = byAddress.get(holder)! - 1;
        if (n === 0) byAddress.delete(holder);
        else byAddress.set(holder, n);
      }
    };
  }

  /** Takes one of the account's slots until `res` closes; TOO_MANY_CONCURRENT when it holds them all. */
  takeAccount(state: AccountState, res: ServerResponse): void {
    if (state.inFlight >= this.max) throw new GatewayError('TOO_MANY_CONCURRENT', { retryAfterS: 1 });
    state.inFlight++;
    this.hold(res, state);
  }

  /** The same for a client address on an auth-free route. */
  takeAddress(address: string, res: ServerResponse): void {
    const n = this.byAddress.get(address) ?? 0;
    if (n >= this.max) throw new GatewayError('TOO_MANY_CONCURRENT', { retryAfterS: 1 });
    this.byAddress.set(address, n + 1);
    this.hold(res, address);
  }

  private hold(res: ServerResponse, holder: AccountState | string): void {
    (res as Holding)[HOLDER] = holder;
    res.on('close', this.release);
  }
}
