// Stage 1: who is calling. Shape and checksum are checked before any lookup; lookups go through
// an in-memory cache that is dropped whenever another process changes keys or accounts, so the
// hot path does not touch the database and a key revoked from the CLI stops within a second.
import type { Config } from '../config.ts';
import type { AccountRecord, KeyRecord, Store } from '../db/store.ts';
import { GatewayError } from '../errors.ts';
import { hashKey, isWellFormedKey } from '../keys.ts';
import type { RequestContext } from './context.ts';

type Found = { key: KeyRecord; account: AccountRecord } | null;

/** Past this many entries the cache starts over, so a flood of random keys cannot grow it. */
const MAX_ENTRIES = 50_000;

export class KeyCache {
  private readonly entries = new Map<string, Found>();

  constructor(private readonly store: Store) {
    store.onChange(() => this.clear());
  }

  get(hash: string): Found {
    let found = this.entries.get(hash);
    if (found === undefined) {
      found = this.store.findKey(hash) ?? null;
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
      this.entries.set(hash, found);
    }
    return found;
  }

  clear(): void {
    this.entries.clear();
  }
}

const BEARER = /^Bearer +(\S+) *$/i;

const SUSPENDED: Record<string, string> = {
  payment_failed: 'The last payment failed, so the account is suspended until an invoice is paid; update the payment method (GET /_tollgate/billing/portal returns a link).',
  dispute: 'A payment of this account is disputed; the account is suspended until the dispute is settled.',
};

/**
 * Who is calling. `checkStanding: false` lets a suspended or past-due account through: the
 * billing endpoints are how it gets back in good standing.
 */
export function authenticate(ctx: RequestContext, cache: KeyCache, config: Config, now: number, checkStanding = true): void {
  const { headers } = ctx.req;
  let presented: string | undefined;
  // X-API-Key first: with the key there, Authorization is the client's own, for the upstream.
  const x = headers['x-api-key'];
  if (x !== undefined) {
    presented = (x as string).trim(); // node:http joins repeated X-API-Key values with ", "
    ctx.keyHeader = 'x-api-key';
  } else if (headers.authorization !== undefined) {
    presented = BEARER.exec(headers.authorization)?.[1];
    if (presented === undefined) throw new GatewayError('MALFORMED_KEY', { detail: 'Authorization must be "Bearer <key>" (or send the key in X-API-Key).' });
    ctx.keyHeader = 'authorization';
  }
  if (!presented) throw new GatewayError('MISSING_KEY');
  if (!isWellFormedKey(presented)) throw new GatewayError('MALFORMED_KEY');

  const found = cache.get(hashKey(presented));
  if (!found) throw new GatewayError('INVALID_KEY');
  const { key, account } = found;
  if (key.revokedAt !== null && key.revokedAt <= now) throw new GatewayError('INVALID_KEY', { detail: 'This key was revoked.' });
  if (key.expiresAt !== null && key.expiresAt <= now) throw new GatewayError('INVALID_KEY', { detail: 'This key has expired.' });
  if (checkStanding) {
    if (account.status !== 'active') {
      throw new GatewayError('ACCOUNT_SUSPENDED', { detail: SUSPENDED[account.statusReason ?? ''] });
    }
    const grace = config.stripe?.pastDueGraceMs;
    if (account.pastDueSince !== null && grace !== undefined && now >= account.pastDueSince + grace) {
      throw new GatewayError('PAYMENT_PAST_DUE');
    }
  }
  ctx.key = key;
  ctx.account = account;
  // A plan removed from the config falls back to the default rather than locking the account out.
  ctx.plan = config.plans[account.plan] ?? config.plans[config.defaultPlan];
}
