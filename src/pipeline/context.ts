// What one request carries through the stages. One object per request, fields set as stages run.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Plan, Route } from '../config.ts';
import type { AccountState } from '../state/accounts.ts';
import type { Wallet } from '../state/wallet.ts';
import type { AccountRecord, KeyRecord } from '../storage/records.ts';
import type { EndpointKind } from '../meters/provider.ts';
import type { AiExchange } from '../meters/token-meter.ts';

export class RequestContext {
  route: Route | undefined = undefined;
  key: KeyRecord | undefined = undefined;
  account: AccountRecord | undefined = undefined;
  plan: Plan | undefined = undefined;
  /** The account in memory: its buckets, quota counter and money. */
  state: AccountState | undefined = undefined;
  /** Which request header carried the key, so forward() removes exactly that one. */
  keyHeader: 'authorization' | 'x-api-key' | undefined = undefined;
  /** Flat [name, value, …] headers the gateway adds to its response (RateLimit, …). */
  readonly responseHeaders: string[];
  /** What admit() took: the quota unit of this period, and money set aside in the account's wallet. */
  quotaPeriod: string | undefined = undefined;
  reservedMicros = 0;
  /** The wallet it was set aside in (a node fenced off its leases gives the account a new one). */
  wallet: Wallet | undefined = undefined;
  /** The code of the error the gateway answered with, if it did (for the access log). */
  error: string | undefined = undefined;
  /** What meter() settled: the money spent. */
  chargedMicros = 0;
  /** Overage counted for Stripe, in the interval starting here. */
  overageInterval: number | undefined = undefined;
  status = 0;
  requestBytes = 0;
  /** A small request body, read whole before it is forwarded (see readSmallBody). */
  body: Buffer | undefined = undefined;
  responseBytes = 0;
  /** Billable: the upstream answered below 500 (see meter()). */
  billable = false;
  /** The client closed its connection before the response was complete. */
  clientGone = false;
  /** AI routes: what the endpoint is (priced or free) and whose provider key pays. */
  aiKind: { kind: EndpointKind; byok: boolean } | undefined = undefined;
  /** AI routes: the key sent to the provider in place of the client's Tollgate key. */
  providerKey: string | undefined = undefined;
  /** AI routes priced by tokens: the request, its reservation and the usage seen. */
  ai: AiExchange | undefined = undefined;
  /** AI model lists: what the customer sees of the provider's list (the models it can call). */
  modelFilter: ((list: unknown) => unknown) | undefined = undefined;
  /** The client's own X-Request-Id, when it is a sane token: logged, echoed and passed on. */
  clientRequestId: string | undefined = undefined;
  /** The peer is a trusted proxy (TRUST_PROXY): its X-Forwarded-* are believed. */
  viaProxy = false;
  /** The client's address: the peer's, or behind a trusted proxy the one X-Forwarded-For names. */
  client: string | undefined = undefined;

  /** Kept here: node:http detaches req.socket once the request body has been read. */
  readonly socket: Socket;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly requestId: string,
    readonly startedAt: number,
  ) {
    this.responseHeaders = ['x-request-id', requestId];
    this.socket = req.socket;
  }
}
