// The node:http server. A request is either the gateway's own (/_tollgate/…) or goes down the
// pipeline: route → authenticate → rate limit → quota/credits → forward → meter.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net';
import { DEMO_PATH, type Config, type Route } from './config.ts';
import { GatewayError, toGatewayError, writeError } from './errors.ts';
import type { Logger } from './log.ts';
import { NO_ROUTE, OWN_ROUTE, type Metrics } from './metrics.ts';
import type { Billing } from './billing/billing.ts';
import { ownEndpoint, type EndpointDeps } from './endpoints.ts';
import { admit } from './pipeline/admit.ts';
import { admitProvider, admitTokens } from './pipeline/admit-tokens.ts';
import { Concurrency } from './pipeline/concurrency.ts';
import { cors } from './pipeline/cors.ts';
import { discardRest, readBody, readSmallBody } from './pipeline/read-body.ts';
import { authenticate } from './pipeline/authenticate.ts';
import { RequestContext } from './pipeline/context.ts';
import { forward, upstreamFailure, type ForwardEvents } from './pipeline/forward.ts';
import { meter } from './pipeline/meter.ts';
import { rateLimit } from './pipeline/rate-limit.ts';
import { Router } from './pipeline/route.ts';
import { TrustedProxies } from './pipeline/trusted-proxies.ts';
import { Upstreams } from './pipeline/upstreams.ts';
import type { GatewayState } from './state/state.ts';
import type { Later } from './storage/ports.ts';

export interface GatewayDeps {
  config: Config;
  /** The gateway's memory of accounts, money and usage, over its storage. */
  state: GatewayState;
  log: Logger;
  metrics: Metrics;
  /** Stripe billing; without it the billing endpoints answer 503. */
  billing?: Billing;
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now?: () => number;
}

export interface Gateway {
  server: Server;
  /** Resolves with the port actually bound (PORT=0 picks a free one). */
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting and lets in-flight requests finish (up to shutdownTimeoutMs). */
  close(): Promise<void>;
}

/** One step of a request's way; something to wait for when it must (a key read, a lease refill, a body, a commit). */
type Stage = (ctx: RequestContext) => void | Later;

const OWN_PREFIX = '/_tollgate/';
// Responses a connection has not finished writing to the kernel: a draining gateway ends only
// connections with none, so a slow client still gets the whole of a large response. (Node's
// closeIdleConnections destroys a connection once res.end() is called, written or not.)
const UNFINISHED = Symbol('tollgate.unfinishedResponses');
const OWNER = Symbol('tollgate.socket');
type TrackedSocket = Socket & { [UNFINISHED]?: number };
type TrackedResponse = ServerResponse & { [OWNER]?: TrackedSocket };
function responseClosed(this: TrackedResponse): void {
  this[OWNER]![UNFINISHED]! -= 1;
}
// Own endpoints log their line when their answer is over (they write it in endpoints.ts).
const CTX = Symbol('tollgate.context');
type OwnResponse = ServerResponse & { [CTX]?: RequestContext };
// A client's X-Request-Id worth keeping: a token that cannot break a header, a log line or a query.
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
// A key a client put in its URL by mistake (?api_key=tg_…) stays out of the access log.
const KEY_IN_URL = /tg_[0-9A-Za-z]{38}/g;
const DEMO_HINT = `No route matches this path. This gateway runs in demo mode (no configuration): try ${DEMO_PATH}, or see the README to put it in front of your API.`;

// What node:http's parser reports before a request exists, as statuses (RFC 9110, RFC 6585).
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
  default: [400, 'Bad Request'],
};

export function createGateway({ config, state, log, metrics, billing, now = Date.now }: GatewayDeps): Gateway {
  const router = new Router(config.routes);
  const upstreams = new Upstreams(config.routes, {
    connections: config.upstreamConnections,
    bodyTimeoutMs: config.clients.bodyTimeoutMs,
    writeTimeoutMs: config.clients.writeTimeoutMs,
    maxBodyBytes: config.maxBodyBytes,
    now,
  }, metrics, log);
  const proxies = new TrustedProxies(config.trustProxy);
  const accessLog = config.accessLog;
  const debug = log.isLevelEnabled('debug');
  const concurrency = new Concurrency(config.clients.maxConcurrent);
  const { accounts, wallets, recorder, limiter } = state;
  // Overage plans need Stripe (config.ts refuses them without it); the fallback is never used.
  const meterIntervalMs = config.stripe?.meterIntervalMs ?? 60_000;
  let draining = false;
  const endpointDeps: EndpointDeps = { config, state, billing, now, draining: () => draining };

  // Cheap checks first, money last: each route kind's stages, built once. A usage log that answers
  // later (over the network, or SQLite's writer thread): a connection's previous row is written
  // before its next request runs (written on the gateway's connection, it is committed before the
  // next response, at once).
  const durable: Stage[] = recorder.remote ? [(ctx) => {
    const d = recorder.durable(ctx.socket);
    return d === true ? undefined : d;
  }] : [];
  const identify: Stage[] = [
    ...durable,
    (ctx) => authenticate(ctx, accounts, config, now()),
    (ctx) => rateLimit(ctx, limiter, now()),
    (ctx) => concurrency.takeAccount(ctx.state!, ctx.res),
  ];
  // Before the money: a body that never arrives costs nothing.
  const smallBody: Stage = (ctx) => readSmallBody(ctx, config.clients.bodyTimeoutMs);
  const counted: Stage[] = [...identify, smallBody, (ctx) => admit(ctx, accounts, wallets, now(), meterIntervalMs)];
  const uncounted = [...identify, smallBody];
  const ai: Stage[] = [
    ...identify,
    (ctx) => {
      ctx.aiKind = admitProvider(ctx, config);
    },
    // Priced by tokens: the body names the model and the output limit, so it is read first (a
    // free endpoint's like any other's).
    (ctx) => {
      if (ctx.aiKind!.kind !== 'priced') return smallBody(ctx);
      return readBody(ctx.req, config.maxBodyBytes, config.clients.bodyTimeoutMs).then((body) => admitTokens(ctx, body, ctx.aiKind!.byok, config, wallets));
    },
  ];
  const open: Stage[] = [...durable, (ctx) => concurrency.takeAddress(ctx.client!, ctx.res), smallBody];
  const stagesOf = (route: Route): Stage[] => (!route.auth ? open : route.meter ? ai : route.metered ? counted : uncounted);

  function handle(req: IncomingMessage, res: ServerResponse): void {
    // The gateway's own id, never the client's: it names the request in its usage row.
    const ctx = new RequestContext(req, res, randomUUID(), performance.now());
    const socket = ctx.socket as TrackedSocket;
    socket[UNFINISHED] = (socket[UNFINISHED] ?? 0) + 1;
    (res as TrackedResponse)[OWNER] = socket;
    res.on('close', responseClosed); // 'close' comes once; on() spares once()'s wrapper
    if (draining) ctx.responseHeaders.push('connection', 'close');
    const peer = socket.remoteAddress ?? 'unknown';
    ctx.viaProxy = proxies.trusts(peer);
    ctx.client = ctx.viaProxy ? proxies.client(peer, req.headers['x-forwarded-for'] as string | undefined) : peer;
    const clientId = req.headers['x-request-id'];
    if (clientId !== undefined && CLIENT_REQUEST_ID.test(clientId as string)) {
      ctx.clientRequestId = clientId as string;
      ctx.responseHeaders.push('x-client-request-id', clientId as string);
    }
    const url = req.url!;
    try {
      if (url.startsWith(OWN_PREFIX)) {
        (res as OwnResponse)[CTX] = ctx;
        res.on('close', ownAnswered);
        ownEndpoint(ctx, url, endpointDeps)?.catch((err: unknown) => refuse(ctx, err));
        return;
      }
      const route = router.route(url, req.headers);
      if (!route) throw new GatewayError('NOT_FOUND', config.demo ? { detail: DEMO_HINT } : {});
      ctx.route = route;
      if (route.cors && cors(ctx, route)) return;
      const length = req.headers['content-length'];
      if (length !== undefined && Number(length) > config.maxBodyBytes) throw new GatewayError('PAYLOAD_TOO_LARGE');
      // Nowhere to record what it would cost: the database has been refusing writes too long.
      if (!recorder.accepting) throw new GatewayError('STORAGE_BUSY', { retryAfterS: 1 });
    } catch (err) {
      return refuse(ctx, err);
    }
    run(ctx, stagesOf(ctx.route), 0);
  }

  /** Runs the stages from `i`; a stage that waits resumes the rest when it is done. */
  function run(ctx: RequestContext, stages: Stage[], i: number): void {
    try {
      for (; i < stages.length; i++) {
        const waiting = stages[i](ctx);
        if (waiting !== undefined) {
          const next = i + 1;
          waiting.then(() => (ctx.res.closed ? abandoned(ctx) : run(ctx, stages, next)), (err: unknown) => refuse(ctx, err));
          return;
        }
      }
    } catch (err) {
      return refuse(ctx, err);
    }
    send(ctx);
  }

  /**
   * The client left while a stage waited (a lookup, a refill, the previous row's commit): nothing
   * is forwarded, and what admission took goes back, as for a refusal. Listeners on the response's
   * 'close' (the concurrency slot, forward()) would never hear it now.
   */
  function abandoned(ctx: RequestContext): void {
    ctx.clientGone = true;
    ctx.status = 499;
    if (ctx.reservedMicros > 0) {
      ctx.wallet!.settle(ctx.reservedMicros, 0);
      ctx.reservedMicros = 0;
    }
    const s = ctx.state;
    if (s && ctx.quotaPeriod !== undefined) s.unuse(ctx.quotaPeriod);
    finished(ctx);
  }

  function send(ctx: RequestContext): void {
    try {
      const upstream = upstreams.pick(ctx.route!);
      if (debug) log.debug('forwarding', { requestId: ctx.requestId, route: ctx.route!.path, upstream: upstream.origin.name, accountId: ctx.account?.id });
      forward(ctx, upstream, forwardEvents);
    } catch (err) {
      // Every upstream left out (503), or undici refused the request synchronously (invalid header values).
      settle(ctx, err as Error);
    }
  }

  /** Requests whose estimate is being counted: their rows are still to come. */
  const estimating = new Set<Promise<void>>();

  const forwardEvents: ForwardEvents = {
    responding: (ctx) => recorder.beforeResponse(ctx.socket),
    done: settle,
  };

  function settle(ctx: RequestContext, err: Error | null): void {
    try {
      if (err === null) ctx.billable = ctx.status < 500;
      else {
        // A client gone after the upstream answered still owes for the work; anything else failed.
        ctx.billable = ctx.clientGone && ctx.status > 0 && ctx.status < 500;
        if (ctx.clientGone) {
          if (ctx.status === 0) ctx.status = 499; // nginx's "client closed request"
        } else {
          const failure = ctx.requestBytes > config.maxBodyBytes ? new GatewayError('PAYLOAD_TOO_LARGE') : upstreamFailure(err);
          // Nothing of the upstream's answer reached the client (say a JSON body held for its usage
          // and cut): the row says what the client got, and there is nothing to pay for.
          if (!ctx.res.headersSent) {
            ctx.status = failure.status;
            if (ctx.ai) ctx.ai.succeeded = false;
          }
          if (failure.status >= 500 && failure.code !== 'UPSTREAM_UNAVAILABLE') log.warn('upstream failed', { requestId: ctx.requestId, route: ctx.route!.path, error: err.message });
          ctx.error = failure.code;
          respondError(ctx, failure);
        }
      }
      const metered = meter(ctx, recorder, metrics, now());
      if (metered === undefined) return finished(ctx);
      // An estimate counted off the event loop: its row comes when the count does, and shutdown waits for it.
      const done = metered.then(() => finished(ctx), (e: unknown) => settleFailed(ctx, e)).finally(() => estimating.delete(done));
      estimating.add(done);
    } catch (e) {
      settleFailed(ctx, e);
    }
  }

  function settleFailed(ctx: RequestContext, e: unknown): void {
    log.error('settling a request failed', { requestId: ctx.requestId, error: (e as Error).message, stack: (e as Error).stack });
    // Whatever went wrong, the client must not wait for an answer that will never come.
    if (!ctx.res.writableEnded) ctx.res.destroy();
  }

  function refuse(ctx: RequestContext, err: unknown): void {
    const e = toGatewayError(err);
    if (e.code === 'INTERNAL') log.error('request failed', { requestId: ctx.requestId, error: (err as Error).message, stack: (err as Error).stack });
    // Money set aside before the refusal (a stage after admission failed) goes back.
    if (ctx.reservedMicros > 0) {
      ctx.wallet!.settle(ctx.reservedMicros, 0);
      ctx.reservedMicros = 0;
    }
    if (!ctx.res.headersSent) ctx.status = e.status;
    ctx.error = e.code;
    respondError(ctx, e);
    if ((ctx.res as OwnResponse)[CTX] === undefined) finished(ctx);
  }

  /** An error answer: the connection's previous row is durable first, and an unread body is drained. */
  function respondError(ctx: RequestContext, e: GatewayError): void {
    metrics.refused(e.code, e.status);
    recorder.beforeResponse(ctx.socket);
    writeError(ctx.res, e, ctx.requestId, ctx.responseHeaders, ctx.route?.meter);
    discardRest(ctx.req, ctx.socket);
  }

  /** A request is over (its usage row made, or refused): its metrics and its access-log line. */
  function finished(ctx: RequestContext): void {
    const ms = performance.now() - ctx.startedAt;
    const route = ctx.route?.path;
    metrics.requestDone(route ?? ((ctx.res as OwnResponse)[CTX] ? OWN_ROUTE : NO_ROUTE), ctx.status, ms / 1000);
    if (accessLog === 'off' || (accessLog === 'errors' && ctx.status < 400)) return;
    const url = ctx.req.url;
    log.access({
      requestId: ctx.requestId,
      clientRequestId: ctx.clientRequestId,
      client: ctx.client,
      accountId: ctx.account?.id,
      keyId: ctx.key?.id,
      route,
      method: ctx.req.method,
      path: url?.includes('tg_') ? url.replaceAll(KEY_IN_URL, 'tg_…') : url,
      status: ctx.status,
      durationMs: Math.round(ms * 1000) / 1000,
      bytesIn: ctx.requestBytes,
      bytesOut: ctx.responseBytes,
      costMicros: ctx.chargedMicros,
      error: ctx.error,
    });
  }

  /** An own endpoint's answer is over: what it wrote is its status. */
  function ownAnswered(this: OwnResponse): void {
    const ctx = this[CTX]!;
    ctx.status = this.headersSent ? this.statusCode : 499;
    finished(ctx);
  }

  const server = createServer({
    keepAliveTimeout: 65_000,
    headersTimeout: config.clients.headersTimeoutMs,
    // A body's pauses are timed (CLIENT_BODY_TIMEOUT_MS), not its length: an upload may be long.
    requestTimeout: 0,
    // How often node:http looks for headers that are late (its default is 30 s).
    connectionsCheckingInterval: Math.min(1_000, config.clients.headersTimeoutMs),
  }, handle);
  // A client that closes its connection has seen its last response: write that row now.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      recorder.beforeResponse(socket);
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy(err);
    const [status, title] = CLIENT_ERRORS[err.code ?? ''] ?? CLIENT_ERRORS.default;
    const body = JSON.stringify({ type: `urn:tollgate:error:${title.toLowerCase().replaceAll(' ', '-')}`, title, status, detail: err.message });
    socket.end(`HTTP/1.1 ${status} ${title}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      });
    },
    async close() {
      draining = true;
      // net.Server's close, not http.Server's: the latter also runs closeIdleConnections.
      const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
      // A keep-alive connection is ended (gracefully: what is written still arrives) once it has
      // no response left to write; whatever is still open after shutdownTimeoutMs is cut.
      const endIdle = () => {
        for (const socket of sockets as Set<TrackedSocket>) if (!socket[UNFINISHED]) socket.end();
      };
      endIdle();
      const sweep = setInterval(endIdle, 50);
      const deadline = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(deadline);
      await Promise.all(estimating);
      await upstreams.close();
    },
  };
}
