// The config file's "notifications" block and a plan's "alerts", validated field by field into
// the problems list (config-file.ts collects them all before the gateway refuses to start).
import { Webhook } from 'standardwebhooks';
import type { EmailSettings, NotificationsConfig, PlanAlerts, WebhookTarget } from '../config.ts';
import { isRecord } from '../json.ts';
import { NOTIFICATION_TYPES, type NotificationType } from '../storage/ports.ts';

const KEYS = ['webhooks', 'email', 'publicUrl'];
const WEBHOOK_KEYS = ['url', 'secret', 'events'];
const EMAIL_KEYS = ['smtp', 'from', 'to', 'customers', 'events'];
const ALERT_KEYS = ['lowBalanceMicros', 'quotaPercent'];
// An address, or "Name <address>"; the mail server has the last word.
const ADDRESS = /^[^\s@<>]+@[^\s@<>]+$|^[^\n<>]*<[^\s@<>]+@[^\s@<>]+>$/;
const SECRET = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

/** What a plan's alerts are when it says nothing: quota warnings at 80 and 100 %, no low-balance warning. */
export const PLAN_ALERTS: PlanAlerts = Object.freeze({ lowBalanceMicros: 0, quotaPercent: Object.freeze([80, 100]) });

export function parseNotifications(raw: unknown, problems: string[]): NotificationsConfig | undefined {
  const at = 'notifications';
  if (!isRecord(raw)) {
    problems.push(`${at}: expected an object with "webhooks" and/or "email"`);
    return undefined;
  }
  unknownKeys(raw, KEYS, at, problems);
  const webhooks: WebhookTarget[] = [];
  if (raw.webhooks !== undefined) {
    if (!Array.isArray(raw.webhooks)) problems.push(`${at}.webhooks: expected an array`);
    else raw.webhooks.forEach((w, i) => {
      const hook = parseWebhook(w, `${at}.webhooks[${i}]`, problems);
      if (hook && webhooks.some((h) => h.url.href === hook.url.href)) problems.push(`${at}.webhooks[${i}].url: ${hook.url.href} is listed twice`);
      else if (hook) webhooks.push(hook);
    });
  }
  const email = raw.email === undefined ? undefined : parseEmail(raw.email, `${at}.email`, problems);
  let publicUrl: URL | undefined;
  if (raw.publicUrl !== undefined) publicUrl = httpUrl(raw.publicUrl, `${at}.publicUrl`, problems);
  if (raw.webhooks === undefined && raw.email === undefined) problems.push(`${at}: declare "webhooks", "email" or both`);
  return { webhooks, email, publicUrl };
}

function parseWebhook(raw: unknown, at: string, problems: string[]): WebhookTarget | undefined {
  if (!isRecord(raw)) {
    problems.push(`${at}: expected an object with "url" and "secret"`);
    return undefined;
  }
  unknownKeys(raw, WEBHOOK_KEYS, at, problems);
  const before = problems.length;
  const url = httpUrl(raw.url, `${at}.url`, problems);
  const secret = raw.secret;
  if (typeof secret !== 'string' || !SECRET.test(secret) || !validSecret(secret)) {
    problems.push(`${at}.secret: expected a Standard Webhooks secret, "whsec_" and the base64 of 24 to 64 random bytes ` +
      '(tollgate notifications secret prints a new one)');
  }
  const events = parseEvents(raw.events, `${at}.events`, problems);
  return problems.length > before ? undefined : { url: url!, secret: secret as string, events };
}

function validSecret(secret: string): boolean {
  try {
    new Webhook(secret);
  } catch {
    return false;
  }
  const bytes = Buffer.from(secret.slice('whsec_'.length), 'base64').length;
  return bytes >= 24 && bytes <= 64;
}

function parseEmail(raw: unknown, at: string, problems: string[]): EmailSettings | undefined {
  if (!isRecord(raw)) {
    problems.push(`${at}: expected an object with "smtp", "from" and "to" and/or "customers"`);
    return undefined;
  }
  unknownKeys(raw, EMAIL_KEYS, at, problems);
  const before = problems.length;
  let smtp: URL | undefined;
  try {
    smtp = typeof raw.smtp === 'string' ? new URL(raw.smtp) : undefined;
  } catch {
    // said below
  }
  if (!smtp || (smtp.protocol !== 'smtp:' && smtp.protocol !== 'smtps:')) {
    problems.push(`${at}.smtp: expected smtp://user:pass@host:587 or smtps://user:pass@host:465`);
  }
  if (typeof raw.from !== 'string' || !ADDRESS.test(raw.from)) problems.push(`${at}.from: expected an email address`);
  const to: string[] = [];
  if (raw.to !== undefined) {
    const list = typeof raw.to === 'string' ? [raw.to] : raw.to;
    if (!Array.isArray(list) || !list.every((a) => typeof a === 'string' && ADDRESS.test(a))) problems.push(`${at}.to: expected an email address or an array of them`);
    else to.push(...(list as string[]));
  }
  if (raw.customers !== undefined && typeof raw.customers !== 'boolean') problems.push(`${at}.customers: expected true or false`);
  const customers = raw.customers === true;
  if (to.length === 0 && !customers) problems.push(`${at}: mails nobody: set "to" (the operator's addresses) or "customers": true`);
  const events = parseEvents(raw.events, `${at}.events`, problems);
  return problems.length > before ? undefined : { smtp: smtp!, from: raw.from as string, to, customers, events };
}

function parseEvents(raw: unknown, at: string, problems: string[]): NotificationType[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every((e) => (NOTIFICATION_TYPES as readonly unknown[]).includes(e))) {
    problems.push(`${at}: expected a non-empty array of ${NOTIFICATION_TYPES.join(', ')}`);
    return undefined;
  }
  return raw as NotificationType[];
}

/** A plan's "alerts": { "lowBalanceMicros": 1000000, "quotaPercent": [80, 100] }. */
export function parsePlanAlerts(raw: unknown, at: string, problems: string[]): PlanAlerts | undefined {
  if (!isRecord(raw)) {
    problems.push(`${at}: expected an object with "lowBalanceMicros" and/or "quotaPercent"`);
    return undefined;
  }
  unknownKeys(raw, ALERT_KEYS, at, problems);
  const before = problems.length;
  const low = raw.lowBalanceMicros ?? PLAN_ALERTS.lowBalanceMicros;
  if (typeof low !== 'number' || !Number.isSafeInteger(low) || low < 0) problems.push(`${at}.lowBalanceMicros: expected an integer ≥ 0, got ${JSON.stringify(low)}`);
  const percent = raw.quotaPercent ?? PLAN_ALERTS.quotaPercent;
  if (!Array.isArray(percent) || !percent.every((p: unknown, i) => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 100 && (i === 0 || (p as number) > percent[i - 1]))) {
    problems.push(`${at}.quotaPercent: expected ascending whole percentages from 1 to 100, such as [80, 100] ([]: none)`);
  }
  return problems.length > before ? undefined : { lowBalanceMicros: low as number, quotaPercent: percent as number[] };
}

function httpUrl(raw: unknown, at: string, problems: string[]): URL | undefined {
  try {
    const url = typeof raw === 'string' ? new URL(raw) : undefined;
    if (url && (url.protocol === 'http:' || url.protocol === 'https:')) return url;
  } catch {
    // said below
  }
  problems.push(`${at}: expected an http(s) URL, got ${JSON.stringify(raw)}`);
  return undefined;
}

function unknownKeys(obj: Record<string, unknown>, allowed: string[], at: string, problems: string[]): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) problems.push(`${at}.${k}: unknown field (allowed: ${allowed.join(', ')})`);
}
