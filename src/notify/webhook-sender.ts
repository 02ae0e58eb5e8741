// Webhooks signed per Standard Webhooks: webhook-id (the event's id, the same on every attempt,
// so receivers drop a repeat), webhook-timestamp (this attempt, in seconds) and
// webhook-signature ("v1," and the HMAC-SHA256 of "id.timestamp.body" with the secret), made by
// the standardwebhooks package. Only a 2xx answer counts; redirects are not followed.
import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import type { WebhookTarget } from '../config.ts';
import type { OutboxEvent } from '../storage/ports.ts';
import { eventBody } from './events.ts';

/** Connecting, then the receiver's headers and each body chunk: a receiver slower than this has failed the attempt. */
const CONNECT_TIMEOUT_MS = 5_000;
const ANSWER_TIMEOUT_MS = 10_000;
const USER_AGENT = 'Tollgate-Webhooks/1';

/** What an attempt came to: `status` is the receiver's answer (null: none). */
export interface Attempt {
  ok: boolean;
  status: number | null;
  error?: string;
  /** Trying again cannot help (the destination is no longer configured). */
  final?: boolean;
}

export class WebhookSender {
  private readonly signers = new Map<string, Webhook>();
  // A small pool per receiver: a slow one holds a few sockets, never the gateway's upstream pools.
  private readonly agent = new Agent({ connections: 4, connect: { timeout: CONNECT_TIMEOUT_MS }, headersTimeout: ANSWER_TIMEOUT_MS, bodyTimeout: ANSWER_TIMEOUT_MS });

  constructor(targets: readonly WebhookTarget[], private readonly now: () => number) {
    for (const t of targets) this.signers.set(t.url.href, new Webhook(t.secret));
  }

  async send(url: string, event: OutboxEvent, signal: AbortSignal): Promise<Attempt> {
    const signer = this.signers.get(url);
    if (!signer) return { ok: false, status: null, error: 'this URL is no longer in notifications.webhooks', final: true };
    const body = eventBody(event);
    const at = new Date(this.now());
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'webhook-id': event.id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': signer.sign(event.id, at, body),
    };
    try {
      const res = await request(url, { method: 'POST', headers, body, dispatcher: this.agent, signal });
      // The answer is the status: the outcome is recorded now, the body read and dropped after.
      res.body.dump().catch(() => {});
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      return ok ? { ok, status: res.statusCode } : { ok, status: res.statusCode, error: `HTTP ${res.statusCode}` };
    } catch (err) {
      const e = err as Error & { code?: string };
      return { ok: false, status: null, error: e.code ? `${e.code}: ${e.message}` : e.message };
    }
  }

  close(): Promise<void> {
    return this.agent.destroy();
  }
}
