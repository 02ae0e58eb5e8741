// An account's money in this gateway's memory. The gateway takes a lease out of the account's
// balance (one transaction, with its ledger row) and admits, reserves and settles requests
// against it here, in integers, never below zero: N requests at once against a lease that pays
// for K get K yeses. What a request spent reaches the file with its usage row; what the lease
// did not spend goes back to the balance when it ends.
//
// Several nodes (PostgreSQL) share a balance through their leases. A node whose lease call finds
// the balance empty while other nodes' leases hold enough asks them for it (a 'reclaim' change):
// they give back what they hold unreserved, and for a while every node leases only what each
// request needs, so a small balance is spent by whichever node its requests reach.
import { GatewayError } from '../errors.ts';
import { StorageBusy, type LeaseGrant, type Leases, type MaybePromise } from '../storage/ports.ts';

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
  /** What the last request that needed a refill needed: top-ups are sized by it (WalletOptions.leaseRequests). */
  perRequest = 0;
  /** Grows while leases are spent fast, so a busy account costs about one lease call a second. */
  leaseScale = 1;
  lastTakeAt = -Infinity;
  /** Until then (performance.now()) other nodes want this balance too: lease only what is needed. */
  contendedUntil = 0;
  /**
   * Lease calls that move money between the balance and this wallet: in flight, and ended. A
   * reading of the balance taken across one may count that money twice or not at all (notify/alerts.ts).
   */
  moving = 0;
  moved = 0;

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
  /**
   * With several nodes: a lease call takes at most this many times what the request needs, so one
   * node does not hold a balance the others' requests need too (Infinity: no such cap).
   */
  leaseRequests: number;
  /** How long a request waits for a refill the database keeps refusing (then 503). */
  refillWaitMs: number;
  /** After each lease call on the ledger ('take': open or top up a lease; 'return': end it). */
  onLeaseCall?: (call: 'take' | 'return', outcome: 'ok' | 'busy' | 'error', accountId: string) => void;
  /** Asks the other nodes to give back their leases of the account (several nodes only). */
  reclaim?: (accountId: string) => void;
  /** False while this node may have been taken for dead: its leases may be gone (pg/node-life.ts). */
  spendable?: () => boolean;
}

const FIRST_RETRY_MS = 10;
const MAX_RETRY_MS = 250;
/** How long a request waits for other nodes to give back what it needs before it is refused. */
const RECLAIM_WAIT_MS = 1_000;
/** How long a balance asked for stays contended: lease calls take only what each request needs. */
const CONTENDED_MS = 10_000;
/** A lease spent faster than this makes the next one larger, up to MAX_LEASE_SCALE times. */
const BUSY_LEASE_MS = 1_000;
const MAX_LEASE_SCALE = 16;

/** Lease calls for every wallet: refills, top-ups ahead of need, give-backs and returns. */
export class Wallets {
  constructor(private readonly ledger: Leases, private readonly options: WalletOptions, private readonly log: (msg: string, err: Error) => void) {}

  /**
   * `refilled`, or STORAGE_BUSY once the database has not answered for refillWaitMs: a request
   * does not wait for a database that does not answer (paused, partitioned). The lease call goes
   * on, and what it takes is the wallet's when it answers.
   */
  bounded(refilled: Promise<boolean>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GatewayError('STORAGE_BUSY', { retryAfterS: 1 })), this.options.refillWaitMs);
    });
    return Promise.race([refilled, late]).finally(() => clearTimeout(timer));
  }

  /** Whether this node's leases may be spent now. */
  spendable(): boolean {
    return this.options.spendable === undefined || this.options.spendable();
  }

  /**
   * Makes the wallet hold at least `micros` available: true at once when it does, else a lease
   * call (or the one in flight) decides — false when the balance cannot give enough. A request
   * asks for what it needs; a top-up ahead of need passes what requests need (`perRequest`).
   */
  refill(w: Wallet, micros: number, perRequest?: number): boolean | Promise<boolean> {
    if (w.available >= micros) return true;
    if (w.pending) return w.pending.then(() => this.refill(w, micros, perRequest));
    if (perRequest === undefined) w.perRequest = micros;
    const started = performance.now();
    const deadline = started + this.options.refillWaitMs;
    const attempt = (): boolean | Promise<boolean> => {
      const need = micros - w.available;
      if (need <= 0) return true;
      const max = performance.now() < w.contendedUntil ? need
        : Math.max(need, Math.min(this.options.leaseMaxMicros, (perRequest || need) * this.options.leaseRequests * w.leaseScale));
      const ended = () => {
        w.moving--;
        w.moved++;
      };
      w.moving++;
      let grant: MaybePromise<LeaseGrant>;
      try {
        grant = this.ledger.lease(w.accountId, w.leaseId, need, max);
      } catch (err) {
        ended();
        return retry(err);
      }
      if (grant instanceof Promise) {
        return grant.then((g) => (ended(), this.granted(w, g, need, max) || elsewhere(g, need)), (err: unknown) => (ended(), retry(err)));
      }
      ended();
      return this.granted(w, grant, need, max);
    };
    // The balance is short here but other nodes' leases hold enough: ask them, and try again
    // (a poll with a deadline: the give-backs arrive as ledger moves, not as messages to us).
    let asked = false;
    const elsewhere = (g: LeaseGrant, need: number): boolean | Promise<boolean> => {
      if (!this.options.reclaim || (g.heldElsewhere ?? 0) < need || performance.now() - started > RECLAIM_WAIT_MS) return false;
      w.contendedUntil = performance.now() + CONTENDED_MS;
      if (!asked) this.options.reclaim(w.accountId);
      asked = true;
      return new Promise<void>((r) => setTimeout(r, FIRST_RETRY_MS)).then(attempt);
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

  private granted(w: Wallet, { leaseId, micros }: LeaseGrant, need: number, max: number): boolean {
    this.options.onLeaseCall?.('take', 'ok', w.accountId);
    if (micros === 0) {
      w.topUpDue = false; // the balance had less than `need`: nothing more until credits arrive
      return false;
    }
    // A lease spent within a second: the next takes twice as many requests' worth (up to 16×).
    const t = performance.now();
    if (t - w.lastTakeAt < BUSY_LEASE_MS) w.leaseScale = Math.min(w.leaseScale * 2, MAX_LEASE_SCALE);
    w.lastTakeAt = t;
    w.leaseId = leaseId;
    w.available += micros;
    w.lastGrant = micros;
    w.topUpDue = micros >= max; // capped: the balance may hold more
    return micros >= need;
  }

  /** After a request took from the wallet: when it runs low, a top-up starts in the background. */
  maybeTopUp(w: Wallet): void {
    if (!w.topUpDue || w.pending || w.available * 4 >= w.lastGrant || performance.now() < w.contendedUntil) return;
    const r = this.refill(w, w.available + 1, w.perRequest);
    if (r instanceof Promise) r.catch((err: Error) => this.log('topping up a lease failed', err));
  }

  /** Credits were added to the account's balance: the lease takes them in the background. */
  balanceChanged(w: Wallet): void {
    w.topUpDue = true;
    if (w.leaseId === undefined || w.pending || performance.now() < w.contendedUntil) return;
    const r = this.refill(w, w.available + 1, w.perRequest);
    if (r instanceof Promise) r.catch((err: Error) => this.log('topping up a lease failed', err));
  }

  /** Gives back up to `micros` of what the wallet holds unreserved (a debit found the balance short). */
  giveBack(w: Wallet, micros: number): void | Promise<void> {
    const give = Math.min(w.available, micros);
    if (give <= 0 || w.leaseId === undefined) return;
    const r = this.ledger.giveBack(w.leaseId, give);
    w.available -= give;
    if (!(r instanceof Promise)) return;
    w.moving++;
    // Not given back after all: the lease still holds it.
    return r.catch((err: Error) => {
      w.available += give;
      this.log('giving back part of a lease failed', err);
    }).finally(() => {
      w.moving--;
      w.moved++;
    });
  }

  /** Another node asked for the account's balance: give back what is unreserved, and lease only what is needed for a while. */
  yield(w: Wallet): void {
    w.contendedUntil = performance.now() + CONTENDED_MS;
    w.leaseScale = 1;
    w.topUpDue = false;
    if (!w.pending) this.giveBack(w, w.available);
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
