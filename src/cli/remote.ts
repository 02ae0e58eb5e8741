// The operator's operations through a running gateway's admin API (tollgate --url URL, or
// TOLLGATE_ADMIN_URL, with TOLLGATE_ADMIN_TOKEN): each one request, answering the documents the
// same operation answers on the file. Every POST carries an Idempotency-Key, so the one retry
// after a lost connection is never done twice. A refusal is the API's detail, with the exit code
// the same refusal has on the file: 2 for bad input, 1 for the rest.
import { randomUUID } from 'node:crypto';
import type {
  AccountListQuery, AuditQuery, CreditsInput, DeliveryListQuery, EventListQuery, KeyListQuery, Operations, RecentRequestsDoc, UsageDaysDoc,
} from '../admin/operations.ts';
import type { ConfigDoc } from '../admin/config.ts';
import type {
  AccountDoc, AlertsDoc, AuditDoc, DeductDoc, DeliveryDoc, EventDoc, GrantDoc, KeyDoc, LedgerDoc, NewKeyDoc, Page, RequestDoc, UsageDoc,
} from '../admin/shapes.ts';
import type { AdminClientConfig } from '../config.ts';
import type { AccountChange, Replay } from '../db/admin.ts';
import { FailedError, UsageError } from './errors.ts';

type Query = Record<string, string | number | boolean | undefined>;

const e = encodeURIComponent;

export class RemoteOperations implements Operations {
  constructor(private readonly client: AdminClientConfig) {}

  private async call<T>(method: 'GET' | 'POST' | 'PATCH', path: string, { query = {}, body }: { query?: Query; body?: unknown } = {}): Promise<T> {
    const url = new URL(this.client.url.href.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { authorization: `Bearer ${this.client.token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST') headers['idempotency-key'] = randomUUID();
    const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    let res: Response;
    try {
      res = await fetch(url, init).catch(() => fetch(url, init));
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new FailedError(`cannot reach the admin API at ${url.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    if (res.ok) return JSON.parse(text) as T;
    if (res.status === 401) throw new FailedError(`the admin API at ${url.origin} refused the token (TOLLGATE_ADMIN_TOKEN is not one of its ADMIN_TOKEN)`);
    let detail = `the admin API answered ${res.status}`;
    try {
      detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
    } catch {
      // not a problem document: keep the status
    }
    throw res.status === 400 || res.status === 422 ? new UsageError(detail) : new FailedError(detail);
  }

  createAccount = (input: { email: string; name?: string | null; plan?: string }) => this.call<AccountDoc>('POST', '/admin/v1/accounts', { body: input });
  listAccounts = (q: AccountListQuery) => this.call<Page<AccountDoc>>('GET', '/admin/v1/accounts', { query: { ...q } });
  account = (id: string) => this.call<AccountDoc>('GET', `/admin/v1/accounts/${e(id)}`);
  updateAccount = (id: string, change: AccountChange) => this.call<AccountDoc>('PATCH', `/admin/v1/accounts/${e(id)}`, { body: change });
  createKey = (input: { accountId: string; name?: string | null; expiresAt?: string | null }) => this.call<NewKeyDoc>('POST', '/admin/v1/keys', { body: input });
  listKeys = (q: KeyListQuery) => this.call<Page<KeyDoc>>('GET', '/admin/v1/keys', { query: { ...q } });
  key = (id: string) => this.call<KeyDoc>('GET', `/admin/v1/keys/${e(id)}`);
  revokeKey = (id: string) => this.call<KeyDoc>('POST', `/admin/v1/keys/${e(id)}/revoke`);
  rotateKey = (id: string, graceSeconds: number) =>
    this.call<{ old: KeyDoc; new: NewKeyDoc }>('POST', `/admin/v1/keys/${e(id)}/rotate`, { body: { graceSeconds } });
  grantCredits = (id: string, body: CreditsInput) => this.call<GrantDoc>('POST', `/admin/v1/accounts/${e(id)}/credits/grant`, { body });
  deductCredits = (id: string, body: CreditsInput) => this.call<DeductDoc>('POST', `/admin/v1/accounts/${e(id)}/credits/deduct`, { body });
  ledger = (id: string, q: { limit: number; before?: number }) => this.call<LedgerDoc>('GET', `/admin/v1/accounts/${e(id)}/ledger`, { query: q });
  usage = (id: string, q: { month?: string }) => this.call<UsageDoc>('GET', `/admin/v1/accounts/${e(id)}/usage`, { query: q });
  usageByDay = (id: string, q: { from?: string; to?: string }) => this.call<UsageDaysDoc>('GET', `/admin/v1/accounts/${e(id)}/usage/daily`, { query: q });
  recentRequests = (id: string, limit: number) => this.call<RecentRequestsDoc>('GET', `/admin/v1/accounts/${e(id)}/requests`, { query: { limit } });
  findRequest = (requestId: string, around?: string) => this.call<RequestDoc>('GET', `/admin/v1/requests/${e(requestId)}`, { query: { around } });
  webhookEvents = ({ failed, ...q }: EventListQuery) =>
    this.call<Page<EventDoc>>('GET', '/admin/v1/webhooks', { query: { ...q, failed: failed ? 'true' : undefined } });
  replayWebhook = (id: string) => this.call<Replay>('POST', `/admin/v1/webhooks/${e(id)}/replay`);
  audit = (q: AuditQuery) => this.call<Page<AuditDoc>>('GET', '/admin/v1/audit', { query: { ...q } });
  deliveries = ({ failed, ...q }: DeliveryListQuery) =>
    this.call<Page<DeliveryDoc>>('GET', '/admin/v1/notifications', { query: { ...q, failed: failed ? 'true' : undefined } });
  resendDelivery = (id: number) => this.call<DeliveryDoc>('POST', `/admin/v1/notifications/${id}/resend`);
  alerts = (id: string) => this.call<AlertsDoc>('GET', `/admin/v1/accounts/${e(id)}/alerts`);
  setAlerts = (id: string, change: { lowBalanceMicros: number | null }) => this.call<AlertsDoc>('PATCH', `/admin/v1/accounts/${e(id)}/alerts`, { body: change });
  config = () => this.call<ConfigDoc>('GET', '/admin/v1/config');
}
