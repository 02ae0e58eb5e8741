// Events as receivers see them. One JSON body per event, the same on every attempt and resend:
// {"type", "id", "timestamp", "data"} (the Standard Webhooks payload shape, with the id also in
// the body). In `data` money is integer micro-dollars with the dollar string beside it
// (balanceMicros 800000 → balance "0.80"), times are ISO 8601 UTC.
import { randomBytes } from 'node:crypto';
import { formatMicros } from '../money.ts';
import type { EventData, OutboxEvent } from '../storage/ports.ts';

const MICROS = /Micros$/;

/** A new event id: "evt_" and 32 hex digits (migration 0009's trigger makes the same). */
export function eventId(): string {
  return `evt_${randomBytes(16).toString('hex')}`;
}

/** `data` with each …Micros figure's dollar string added beside it. */
export function withDollars(data: EventData): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const [k, v] of Object.entries(data)) {
    out[k] = v;
    if (MICROS.test(k) && typeof v === 'number' && Number.isSafeInteger(v)) out[k.replace(MICROS, '')] = formatMicros(v);
  }
  return out;
}

/** The webhook body of an event. */
export function eventBody(e: OutboxEvent): string {
  return JSON.stringify({ type: e.type, id: e.id, timestamp: new Date(e.createdAt).toISOString(), data: withDollars(e.data) });
}
