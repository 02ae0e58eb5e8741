// Delivers the outbox, off the request path: every POLL_MS it gives new events their deliveries
// (one per webhook and email address that wants them), looks for keys about to expire, and
// attempts what is due, at most MAX_IN_FLIGHT at once and PER_TARGET per receiver, each with
// its own timeouts. A receiver that is down or slow holds a few of these slots, never a request.
//
// Retries: after a failed attempt the next waits twice as long as the delivery has been failing
// (10 s, 30 s, 90 s, 4.5 min, … at most 6 h), for a day from its first failure; then it is given
// up ('failed', listed, and can be resent).
//
// At least once, never again after a 2xx: a delivery is recorded delivered as soon as its 2xx
// arrives, and this process never sends it again even when the database is busy at that moment
// (the record is retried). A kill -9 between the receiver's 2xx and that record sends it once
// more after the restart, with the same webhook-id, which receivers use to drop the repeat.
import type { Config, NotificationsConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { StorageBusy, type Delivery, type Destination, type Outbox, type OutboxEvent } from '../storage/ports.ts';
import type { MaybeAsync } from '../storage/steps.ts';
import { Mailer } from './mailer.ts';
import { WebhookSender, type Attempt } from './webhook-sender.ts';

const POLL_MS = 500;
const MAX_IN_FLIGHT = 16;
const PER_TARGET = 4;
const FAN_OUT_BATCH = 100;
const FIRST_RETRY_MS = 10_000;
const MAX_RETRY_MS = 6 * 3_600_000;
const RETRY_FOR_MS = 24 * 3_600_000;
/** key.expiring this long before a key expires; keys are looked for every KEY_SCAN_MS. */
export const KEY_NOTICE_MS = 7 * 86_400_000;
const KEY_SCAN_MS = 10 * 60_000;
const KEYS_PER_SCAN = 100;
/** An event this old when first handed out (notifications were configured later) goes nowhere. */
const MAX_EVENT_AGE_MS = 3 * 86_400_000;
/** How long a stop waits for attempts in flight. */
const STOP_WAIT_MS = 2_000;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface DelivererDeps {
  outbox: MaybeAsync<Outbox>;
  config: Pick<Config, 'stripe'> & { notifications: NotificationsConfig };
  log: Logger;
  /** Milliseconds since the epoch: what due times, retries and key expiry are measured by. */
  now: () => number;
  timers?: Timers;
  pollMs?: number;
}

/** The wait after a failed attempt, when the delivery has been failing since `failingSince`. */
export function retryDelay(failingSince: number, now: number): number {
  return Math.min(Math.max(FIRST_RETRY_MS, 2 * (now - failingSince)), MAX_RETRY_MS);
}

/** Where an event goes under `n`: each webhook and address that takes its type (`email`: its account's). */
export function destinations(n: NotificationsConfig, e: OutboxEvent, email: string | null): Destination[] {
  const wants = (events: readonly string[] | undefined) => events === undefined || events.includes(e.type);
  const out: Destination[] = n.webhooks.filter((w) => wants(w.events)).map((w) => ({ channel: 'webhook', target: w.url.href }));
  const m = n.email;
  if (m && wants(m.events)) {
    for (const to of m.to) out.push({ channel: 'email', target: to });
    if (m.customers && email !== null && !m.to.includes(email)) out.push({ channel: 'email', target: email });
  }
  return out;
}

export class Deliverer {
  private readonly webhooks: WebhookSender;
  private readonly mailer: Mailer | undefined;
  private readonly timers: Timers;
  private readonly pollMs: number;
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly perTarget = new Map<string, number>();
  /** Delivered, the record not written yet (the database was busy): never attempted again. */
  private readonly unrecorded = new Map<number, { at: number; status: number }>();
  private recording: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private lastKeyScan = -Infinity;
  private timer: unknown;
  private stopped = false;

  constructor(private readonly deps: DelivererDeps) {
    const n = deps.config.notifications;
    this.webhooks = new WebhookSender(n.webhooks, deps.now);
    this.mailer = n.email && new Mailer(n.email, { stripe: deps.config.stripe, notifications: n });
    this.timers = deps.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
    this.pollMs = deps.pollMs ?? POLL_MS;
  }

  start(): void {
    const loop = () => {
      this.look()
        .catch((err: Error) => this.deps.log.error('notifications: looking at the outbox failed', { error: err.message }))
        .finally(() => {
          if (!this.stopped) this.timer = this.timers.setTimeout(loop, this.pollMs);
        });
    };
    this.timer = this.timers.setTimeout(loop, 0);
  }

  /** One look at the outbox; resolves once the attempts it started are done (tests drive it so). */
  async tick(): Promise<void> {
    await Promise.all(await this.look());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.clearTimeout(this.timer);
    this.abort.abort();
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(this.inFlight.values()), new Promise((r) => (timeout = setTimeout(r, STOP_WAIT_MS)))]);
    clearTimeout(timeout);
    await this.recordDelivered().catch(() => {});
    this.mailer?.close();
    await this.webhooks.close();
  }

  /** New events get their deliveries, keys about to expire their event, and due deliveries an attempt. */
  private async look(): Promise<Promise<void>[]> {
    const started: Promise<void>[] = [];
    const { outbox, config } = this.deps;
    const now = this.deps.now();
    try {
      await this.recordDelivered();
      if (now - this.lastKeyScan >= KEY_SCAN_MS) {
        // A full batch: more may be waiting, look again at the next tick.
        if ((await outbox.keysExpiring(now, KEY_NOTICE_MS, KEYS_PER_SCAN)) < KEYS_PER_SCAN) this.lastKeyScan = now;
      }
      await outbox.fanOut((e, email) => (now - e.createdAt > MAX_EVENT_AGE_MS ? [] : destinations(config.notifications, e, email)), FAN_OUT_BATCH);
      const room = MAX_IN_FLIGHT - this.inFlight.size;
      if (room <= 0 || this.stopped) return started;
      for (const d of await outbox.due(now, room + this.inFlight.size + this.unrecorded.size)) {
        if (started.length >= room) break;
        if (this.inFlight.has(d.id) || this.unrecorded.has(d.id) || (this.perTarget.get(d.target) ?? 0) >= PER_TARGET) continue;
        started.push(this.attempt(d));
      }
    } catch (err) {
      // Busy: another process holds the write lock; the next tick tries again.
      if (!(err instanceof StorageBusy)) throw err;
    }
    return started;
  }

  private attempt(d: Delivery): Promise<void> {
    this.perTarget.set(d.target, (this.perTarget.get(d.target) ?? 0) + 1);
    const sent = d.channel === 'webhook'
      ? this.webhooks.send(d.target, d.event, this.abort.signal)
      : this.mailer?.send(d.target, d.event) ?? Promise.resolve<Attempt>({ ok: false, status: null, error: 'email is no longer configured', final: true });
    const done = sent
      .then((a) => this.record(d, a))
      .catch((err: Error) => this.deps.log.error('notifications: recording an attempt failed', { delivery: d.id, error: err.message }))
      .finally(() => {
        this.inFlight.delete(d.id);
        this.perTarget.set(d.target, this.perTarget.get(d.target)! - 1);
      });
    this.inFlight.set(d.id, done);
    return done;
  }

  private async record(d: Delivery, a: Attempt): Promise<void> {
    const now = this.deps.now();
    if (a.ok) {
      this.unrecorded.set(d.id, { at: now, status: a.status! });
      await this.recordDelivered();
      return;
    }
    // Cut short by a stop: not an attempt; it goes again at the next start.
    if (this.stopped) return;
    const since = d.failingSince ?? now;
    const retryAt = a.final || now - since >= RETRY_FOR_MS ? null : now + retryDelay(since, now);
    try {
      await this.deps.outbox.failed(d.id, now, a.status, a.error ?? 'failed', retryAt);
    } catch (err) {
      if (!(err instanceof StorageBusy)) throw err; // still due: attempted again, uncounted
    }
    if (retryAt === null) {
      this.deps.log.warn('notification given up', { delivery: d.id, eventId: d.event.id, type: d.event.type, channel: d.channel, error: a.error });
    }
  }

  /** One pass at a time: two would both record a delivery whose record is in flight (an attempt counted twice). */
  private recordDelivered(): Promise<void> {
    return (this.recording ??= this.recordAll().finally(() => (this.recording = undefined)));
  }

  private async recordAll(): Promise<void> {
    for (const [id, { at, status }] of this.unrecorded) {
      try {
        await this.deps.outbox.delivered(id, at, status);
        this.unrecorded.delete(id);
      } catch (err) {
        if (!(err instanceof StorageBusy)) throw err;
        return;
      }
    }
  }
}
