// Stage 1: who is calling. Shape and checksum are checked before any lookup in storage; the key
// and its account then come from the gateway's memory (state/accounts.ts), read from storage only
// the first time a key is seen or after a change names it.
import type { Socket } from 'node:net';
import type { Config } from '../config.ts';
import { GatewayError } from '../errors.ts';
import { hashKey, isWellFormedKey, KEY_LENGTH } from '../keys.ts';
import type { Accounts, KeyEntry } from '../state/accounts.ts';
import type { RequestContext } from './context.ts';

const BEARER = /^Bearer +(\S+) *$/i;

// A keep-alive connection mostly sends one key again and again: its hash is kept on the socket,
// and SHA-256 runs only when the key differs from the last one the connection sent.
const LAST_KEY = Symbol('tollgate.lastKey');
type KeyedSocket = Socket & { [LAST_KEY]?: { key: string; hash: string } };

const SUSPENDED: Record<string, string> = {
  payment_failed: 'The last payment failed, so the account is suspended until an invoice is paid; update the payment method (GET /_tollgate/billing/portal returns a link).',
  dispute: 'A payment of this account is disputed; the account is suspended until the dispute is settled.',
};

/**
 * Who is calling. `checkStanding: false` lets a suspended or past-due account through: the
 * billing endpoints are how it gets back in good standing.
 */
export function authenticate(ctx: RequestContext, accounts: Accounts, config: Config, now: number, checkStanding = true): void | Promise<void> {
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
  if (presented.length !== KEY_LENGTH) throw new GatewayError('MALFORMED_KEY');
  const hash = hashOf(presented, ctx.socket as KeyedSocket);
  // A key in memory was issued, so well formed: its checksum is checked only before a lookup in storage.
  if (!accounts.has(hash) && !isWellFormedKey(presented)) throw new GatewayError('MALFORMED_KEY');

  const found = accounts.lookup(hash);
  if (found instanceof Promise) return found.then((f) => admitKey(ctx, f, config, now, checkStanding));
  admitKey(ctx, found, config, now, checkStanding);
}

function hashOf(presented: string, socket: KeyedSocket): string {
  const last = socket[LAST_KEY];
  if (last !== undefined && sameKey(last.key, presented)) return last.hash;
  const hash = hashKey(presented);
  socket[LAST_KEY] = { key: presented, hash };
  return hash;
}

/**
 * Constant time over two keys of KEY_LENGTH: behind a reverse proxy one connection carries many
 * clients, so the last key may be someone else's, and `===` would stop at the first difference.
 */
function sameKey(a: string, b: string): boolean {
  let diff = 0;
  for (let i = 0; i < KEY_LENGTH; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function admitKey(ctx: RequestContext, found: KeyEntry | null, config: Config, now: number, checkStanding: boolean): void {
  if (!found) throw new GatewayError('INVALID_KEY');
  const { key, state } = found;
  const account = state.record;
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
  found.lastUsed = now;
  ctx.key = key;
  state.lastUsed = now;
  ctx.state = state;
  ctx.account = account;
  ctx.plan = state.plan;
}
