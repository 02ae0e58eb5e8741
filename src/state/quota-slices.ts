// Monthly quotas shared by several nodes (PostgreSQL). A period's units are handed out to the
// nodes in slices (a hundredth of the quota, at least one unit) from one counter per account and
// period, which never hands out more than the plan's quota in all; a node spends its slice in
// memory. So all nodes together never admit more than the quota. A unit a request did not use
// (it was not billable) comes back to the node's slice; what a node holds unspent goes back at
// shutdown, and a node that dies loses at most a slice of each account's period.
import type { AccountState } from './accounts.ts';

export interface QuotaStore {
  /** Hands out up to `want` units of the account's quota for `period`, never past `limit` in all; returns how many. */
  take(accountId: string, period: string, limit: number, want: number): Promise<number>;
  /** Gives back units handed out and not spent. */
  giveBack(slices: readonly { accountId: string; period: string; units: number }[]): Promise<void>;
}

const SLICE = 0.01;
const QUOTA_OUT_MS = 60_000;

export class QuotaSlices {
  constructor(private readonly store: QuotaStore) {}

  /** True: a unit of the account's quota is this request's. False: the quota is used up, all nodes counted. */
  take(s: AccountState, limit: number): boolean | Promise<boolean> {
    if (s.quotaHeldPeriod !== s.period) {
      s.quotaHeldPeriod = s.period;
      s.quotaHeld = 0; // a past period's units are worth nothing now
      s.quotaOutUntil = 0;
    }
    if (s.quotaHeld > 0) {
      s.quotaHeld--;
      return true;
    }
    if (performance.now() < s.quotaOutUntil) return false;
    s.quotaPending ??= this.store.take(s.accountId, s.period, limit, Math.max(1, Math.ceil(limit * SLICE))).then((units) => {
      if (s.quotaHeldPeriod === s.period) {
        s.quotaHeld += units;
        // Asked again a while later: units another node gave back (at its shutdown) may be there.
        if (units === 0) s.quotaOutUntil = performance.now() + QUOTA_OUT_MS;
      }
    }).finally(() => (s.quotaPending = undefined));
    return s.quotaPending.then(() => this.take(s, limit));
  }

  /** Gives back what every account holds (shutdown). */
  async giveBack(states: Iterable<AccountState>): Promise<void> {
    const slices = [];
    for (const s of states) {
      if (s.quotaHeld > 0) slices.push({ accountId: s.accountId, period: s.quotaHeldPeriod, units: s.quotaHeld });
      s.quotaHeld = 0;
    }
    if (slices.length > 0) await this.store.giveBack(slices);
  }
}
