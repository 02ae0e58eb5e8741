// An account's money in this gateway's memory. The gateway takes a lease out of the account's
// balance (one transaction, with its ledger row) and admits, reserves and settles requests
// against it here, in integers, never below zero: N requests at once against a lease that pays
// for K get K yeses. What a request spent reaches the file with its usage row; what the lease
// did not spend goes back to the balance when it ends.
import { GatewayError } from '../errors.ts';
import { StorageBusy, type Ledger } from '../storage/ports.ts';

export class Wallet {
  leaseId: number | undefined = undefined;
  /** Held by the lease, neither reserved nor spent. */
  available = 0;
  /** Set aside for requests in flight. */
  reserved = 0;
  /** The balance may hold more than the lease took (credits were added since, or a cap). */
  topUpDue = true;
  /** What the last lease call added: below a quarter of it, a top-up starts ahead of need. */
  lastGrant = 0;
  lastUsed = 0;
  /** A lease call in flight: requests that need it wait for it together. */
  pending: Promise<boolean> | undefined = undefined;

  constructor(readonly accountId: string) {}

  /** Sets `micros` aside for a request; false when the lease holds less (Wallets.refill). */
  reserve(micros: number): boolean {
    if (micros > this.available) return false;
    this.available -= micros;
    this.reserved += micros;
    return true;
  }

  /**
   * Ends a reservation of `reservedMicros`: `cost` is spent, as far as the reservation and the
   * rest of the lease go, and the remainder is available again. Returns what was spent.
   */
  settle(reservedMicros: number, cost: number): number {
    this.reserved -= reservedMicros;
    const spent = cost <= reservedMicros ? cost : reservedMicros + Math.min(cost - reservedMicros, this.available);
    this.available += reservedMicros - spent;
    return spent;
  }
}

export interface WalletOptions {
  /** The most one lease call takes out of a balance (Infinity: all of it). */
  leaseMaxMicros: number;
  /** How long a request waits for a refill the database keeps refusing (then 503). */
  refillWaitMs: number;
  /** After each lease call on the ledger ('take': open or top up a lease; 'return': end it). */
  onLeaseCall?: (call: 'take' | 'return', outcome: 'ok' | 'busy' | 'error', accountId: string) => void;
}

const FIRST_RETRY_MS = 10;
const MAX_RETRY_MS = 250;

/** Lease calls for every wallet: refills, top-ups ahead of need, give-backs and returns. */
export class Wallets {
  constructor(private readonly ledger: Ledger, private readonly options: WalletOptions, private readonly log: (msg: string, err: Error) => void) {}

  /**
   * Makes the wallet hold at least `micros` available: true at once when it does, else a lease
   * call (or the one in flight) decides — false when the balance cannot give enough.
   */
  refill(w: Wallet, micros: number): boolean | Promise<boolean> {
    if (w.available >= micros) return true;
    if (w.pending) return w.pending.then(() => this.refill(w, micros));
    const deadline = performance.now() + this.options.refillWaitMs;
    const attempt = (): boolean | Promise<boolean> => {
      const need = micros - w.available;
      if (need <= 0) return true;
      try {
        const grant = this.ledger.lease(w.accountId, w.leaseId, need, Math.max(need, this.options.leaseMaxMicros));
        if (grant instanceof Promise) return grant.then((g) => this.granted(w, g.leaseId, g.micros, need), retry);
        return this.granted(w, grant.leaseId, grant.micros, need);
      } catch (err) {
        return retry(err);
      }
    };
    let wait = FIRST_RETRY_MS;
    const retry = (err: unknown): Promise<boolean> => {
      this.options.onLeaseCall?.('take', err instanceof StorageBusy ? 'busy' : 'error', w.accountId);
      if (!(err instanceof StorageBusy)) throw err;
      if (performance.now() + wait > deadline) throw new GatewayError('STORAGE_BUSY', { retryAfterS: 1 });
      return new Promise<void>((r) => setTimeout(r, wait)).then(() => {
        wait = Math.min(wait * 2, MAX_RETRY_MS);
        return attempt();
      });
    };
    const result = attempt();
    if (result instanceof Promise) {
      w.pending = result.finally(() => (w.pending = undefined));
      return w.pending;
    }
    return result;
  }

  private granted(w: Wallet, leaseId: number, micros: number, need: number): boolean {
    this.options.onLeaseCall?.('take', 'ok', w.accountId);
    if (micros === 0) {
      w.topUpDue = false; // the balance had less than `need`: nothing more until credits arrive
      return false;
    }
    w.leaseId = leaseId;
    w.available += micros;
    w.lastGrant = micros;
    w.topUpDue = micros >= this.options.leaseMaxMicros;
    return micros >= need;
  }

  /** After a request took from the wallet: when it runs low, a top-up starts in the background. */
  maybeTopUp(w: Wallet): void {
    if (!w.topUpDue || w.pending || w.available * 4 >= w.lastGrant) return;
    const r = this.refill(w, w.available + 1);
    if (r instanceof Promise) r.catch((err: Error) => this.log('topping up a lease failed', err));
  }

  /** Credits were added to the account's balance: the lease takes them in the background. */
  balanceChanged(w: Wallet): void {
    w.topUpDue = true;
    if (w.leaseId === undefined || w.pending) return;
    const r = this.refill(w, w.available + 1);
    if (r instanceof Promise) r.catch((err: Error) => this.log('topping up a lease failed', err));
  }

  /** Gives back up to `micros` of what the wallet holds unreserved (a debit found the balance short). */
  giveBack(w: Wallet, micros: number): void {
    const give = Math.min(w.available, micros);
    if (give <= 0 || w.leaseId === undefined) return;
    this.ledger.giveBack(w.leaseId, give);
    w.available -= give;
  }

  /**
   * Ends the wallet's lease: what its rows did not spend returns to the balance. The rows and
   * the account's counters must be written first. False when the database is busy: try later.
   */
  close(w: Wallet): boolean | Promise<boolean> {
    if (w.leaseId === undefined) return true;
    const leaseId = w.leaseId;
    const done = () => {
      this.options.onLeaseCall?.('return', 'ok', w.accountId);
      if (w.leaseId === leaseId) {
        w.leaseId = undefined;
        w.available = 0;
        w.topUpDue = true;
      }
      return true;
    };
    try {
      const r = this.ledger.close(leaseId);
      return r instanceof Promise ? r.then(done, () => false) : done();
    } catch (err) {
      this.options.onLeaseCall?.('return', err instanceof StorageBusy ? 'busy' : 'error', w.accountId);
      if (err instanceof StorageBusy) return false;
      throw err;
    }
  }
}
