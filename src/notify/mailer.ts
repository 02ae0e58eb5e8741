// Email through nodemailer over SMTP: plain text (email-text.ts), one message per recipient, its
// Message-ID made from the event's id so a mail client shows a resend as the same message.
import type { createTransport } from 'nodemailer';
import type { Config, EmailSettings } from '../config.ts';
import type { OutboxEvent } from '../storage/ports.ts';
import { emailFor } from './email-text.ts';
import type { Attempt } from './webhook-sender.ts';

const CONNECT_TIMEOUT_MS = 5_000;
const ANSWER_TIMEOUT_MS = 10_000;

export class Mailer {
  /** Made on the first message: nodemailer (3 MB of heap) is loaded only when there is mail to send. */
  private transport: Promise<ReturnType<typeof createTransport>> | undefined;
  private readonly domain: string;

  constructor(private readonly settings: EmailSettings, private readonly config: Pick<Config, 'stripe' | 'notifications'>) {
    this.domain = /@([^\s>]+)>?$/.exec(settings.from)?.[1] ?? 'tollgate.invalid';
  }

  async send(to: string, event: OutboxEvent): Promise<Attempt> {
    // The operator's addresses get the operator's text; any other is the account's own.
    const { subject, text } = emailFor(event, this.settings.to.includes(to) ? 'operator' : 'customer', this.config);
    try {
      const info = await (await this.transporter()).sendMail({
        to, subject, text, messageId: `<${event.id}@${this.domain}>`, headers: { 'X-Tollgate-Event': `${event.type} ${event.id}` },
      });
      return info.accepted.length > 0 ? { ok: true, status: 250 } : { ok: false, status: null, error: `rejected: ${info.response}` };
    } catch (err) {
      const e = err as Error & { responseCode?: number };
      return { ok: false, status: e.responseCode ?? null, error: e.message };
    }
  }

  close(): void {
    this.transport?.then((t) => t.close(), () => undefined);
  }

  private transporter(): Promise<ReturnType<typeof createTransport>> {
    return (this.transport ??= import('nodemailer').then(({ createTransport }) => createTransport({
      url: this.settings.smtp.href, connectionTimeout: CONNECT_TIMEOUT_MS, greetingTimeout: ANSWER_TIMEOUT_MS, socketTimeout: ANSWER_TIMEOUT_MS,
    }, { from: this.settings.from })));
  }
}
