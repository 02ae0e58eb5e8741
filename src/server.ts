// The node:http server. A request is either the gateway's own (/_tollgate/…) or goes down the
// pipeline: route → authenticate → rate limit → quota/credits → forward → meter.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Config } from './config.ts';
import type { Store } from './db/store.ts';
import { GatewayError, toGatewayError, writeError } from './errors.ts';
import { RateLimiter } from './limiter/token-bucket.ts';
import type { Logger } from './log.ts';
import { formatMicros } from './money.ts';
import type { Billing } from './billing/billing.ts';
import { MAX_WEBHOOK_BYTES } from './billing/webhooks.ts';
import { admit, MonthlyPeriods, quotaPeriod } from './pipeline/admit.ts';
import { admitTokens, chooseProviderKey } from './pipeline/admit-tokens.ts';
import { readBody } from './pipeline/read-body.ts';
import { authenticate, KeyCache } from './pipeline/authenticate.ts';
import { RequestContext } from './pipeline/context.ts';
import { forward, upstreamFailure, Upstreams, type ForwardEvents } from './pipeline/forward.ts';
import { commitPrevious, meter } from './pipeline/meter.ts';
import { rateLimit } from './pipeline/rate-limit.ts';
import { Router } from './pipeline/route.ts';

export interface GatewayDeps {
  config: Config;
  store: Store;
  log: Logger;
  /** Stripe billing; without it the billing endpoints answer 503. */
  billing?: Billing;
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now?: () => number;
}

export interface Gateway {
  server: Server;
  /** Resolves with the port actually bound (PORT=0 picks a free one). */
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting, lets in-flight requests finish (up to shutdownTimeoutMs), flushes. */
  close(): Promise<void>;
}

const OWN_PREFIX = '/_tollgate/';
const REQUEST_ID = /^[\w.:-]{1,128}$/;
// Dot segments, encoded slashes and backslashes: an upstream that normalises them would serve a
// path outside the route that matched (say /public/../admin past an auth-free /public/ route).
// Only the path is checked (before any "?"): a query may carry an encoded URL.
const UNSAFE_PATH = /^[^?]*(?:\/(?:\.|%2e){1,2}(?:[/?]|$)|%2f|%5c|\\)/i;
const JSON_HEADERS = ['content-type', 'application/json'];
const PROBLEM_HEADERS = ['content-type', 'application/problem+json'];

export function createGateway({ config, store, log, billing, now = Date.now }: GatewayDeps): Gateway {
  const router = new Router(config.routes);
  const upstreams = new Upstreams(config.routes);
  const keys = new KeyCache(store);
  const limiter = new RateLimiter();
  const periods = new MonthlyPeriods();
  const meterIntervalMs = billing?.meterIntervalMs ?? 60_000;
  let draining = false;

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const clientId = req.headers['x-request-id'];
    const requestId = typeof clientId === 'string' && REQUEST_ID.test(clientId) ? clientId : randomUUID();
    const ctx = new RequestContext(req, res, requestId, performance.now());
    if (draining) ctx.responseHeaders.push('connection', 'close');
    const url = req.url!;
    let byok = false;
    try {
      if (url.startsWith(OWN_PREFIX)) {
        ownEndpoint(ctx, url)?.catch((err: unknown) => refuse(ctx, err));
        return;
      }
      if (UNSAFE_PATH.test(url)) {
        throw new GatewayError('BAD_REQUEST', { detail: 'Paths with dot segments, encoded slashes or backslashes are refused.' });
      }
      const route = router.match(url);
      if (!route) throw new GatewayError('NOT_FOUND');
      ctx.route = route;
      // Cheap checks first, money last.
      const length = req.headers['content-length'];
      if (length !== undefined && Number(length) > config.maxBodyBytes) throw new GatewayError('PAYLOAD_TOO_LARGE');
      if (route.auth) {
        const t = now();
        authenticate(ctx, keys, config, t);
        rateLimit(ctx, limiter, t);
        if (route.meter) byok = chooseProviderKey(ctx, config);
        else if (route.metered) admit(ctx, store, t, periods, meterIntervalMs);
      }
    } catch (err) {
      return refuse(ctx, err);
    }
    if (ctx.route.meter && ctx.route.metered) {
      // Priced by tokens: the body names the model and the output limit, so it is read first.
      readBody(req, config.maxBodyBytes).then((body) => {
        admitTokens(ctx, body, byok, config, store);
        send(ctx);
      }).catch((err: unknown) => refuse(ctx, err));
      return;
    }
    send(ctx);
  }

  function send(ctx: RequestContext): void {
    try {
      forward(ctx, upstreams.get(ctx.route!), config.maxBodyBytes, forwardEvents);
    } catch (err) {
      settle(ctx, err as Error); // undici refuses some requests synchronously (invalid header values)
    }
  }

  const forwardEvents: ForwardEvents = {
    responding: (ctx) => commitPrevious(ctx.socket, store),
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
          if (ctx.status === 0) ctx.status = failure.status;
          if (failure.code !== 'PAYLOAD_TOO_LARGE') log.warn('upstream failed', { requestId: ctx.requestId, route: ctx.route!.path, error: err.message });
          commitPrevious(ctx.socket, store);
          writeError(ctx.res, failure, ctx.requestId, ctx.responseHeaders, ctx.route!.meter);
        }
      }
      meter(ctx, store, now());
    } catch (e) {
      log.error('settling a request failed', { requestId: ctx.requestId, error: (e as Error).message, stack: (e as Error).stack });
      // Whatever went wrong, the client must not wait for an answer that will never come.
      if (!ctx.res.writableEnded) ctx.res.destroy();
    }
  }

  function refuse(ctx: RequestContext, err: unknown): void {
    const e = toGatewayError(err);
    if (e.code === 'INTERNAL') log.error('request failed', { requestId: ctx.requestId, error: (err as Error).message, stack: (err as Error).stack });
    // A refused request body is not read: close the connection rather than drain an upload.
    if (e.code === 'PAYLOAD_TOO_LARGE') ctx.responseHeaders.push('connection', 'close');
    commitPrevious(ctx.socket, store);
    writeError(ctx.res, e, ctx.requestId, ctx.responseHeaders, ctx.route?.meter);
  }

  /** The gateway's own endpoints; the billing ones are async (they read a body, call Stripe). */
  function ownEndpoint(ctx: RequestContext, url: string): Promise<void> | void {
    const path = url.split('?', 1)[0];
    const method = ctx.req.method;
    const allow = (...methods: string[]) => {
      if (methods.includes(method!)) return;
      ctx.responseHeaders.push('allow', methods.join(', '));
      throw new GatewayError('METHOD_NOT_ALLOWED');
    };
    switch (path) {
      case '/_tollgate/health':
        allow('GET', 'HEAD');
        return json(ctx, 200, { status: 'ok' });
      case '/_tollgate/ready': {
        allow('GET', 'HEAD');
        const ready = !draining && store.isReady();
        return json(ctx, ready ? 200 : 503, { status: ready ? 'ready' : draining ? 'draining' : 'not ready' });
      }
      case '/_tollgate/usage':
        allow('GET', 'HEAD');
        return usage(ctx);
      case '/_tollgate/webhooks/stripe':
        allow('POST');
        return stripeWebhook(ctx);
      case '/_tollgate/billing/checkout':
        allow('POST');
        return checkout(ctx);
      case '/_tollgate/billing/portal':
        allow('GET', 'POST');
        return portal(ctx);
      default:
        throw new GatewayError('NOT_FOUND', { detail: `No gateway endpoint at ${path}.` });
    }
  }

  /** Authenticates a customer on a billing endpoint: a suspended account may still fix its billing. */
  function billingCustomer(ctx: RequestContext): { billing: Billing; accountId: string } {
    const t = now();
    authenticate(ctx, keys, config, t, false);
    rateLimit(ctx, limiter, t);
    if (!billing) throw new GatewayError('BILLING_NOT_CONFIGURED');
    return { billing, accountId: ctx.account!.id };
  }

  async function checkout(ctx: RequestContext): Promise<void> {
    const { billing, accountId } = billingCustomer(ctx);
    const raw = await readBody(ctx.req, 64 * 1024);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new GatewayError('BAD_REQUEST', { detail: 'The body is not valid JSON.' });
    }
    json(ctx, 200, await billing.checkout(accountId, body));
  }

  async function portal(ctx: RequestContext): Promise<void> {
    const { billing, accountId } = billingCustomer(ctx);
    json(ctx, 200, await billing.portal(accountId));
  }

  async function stripeWebhook(ctx: RequestContext): Promise<void> {
    if (!billing) throw new GatewayError('BILLING_NOT_CONFIGURED');
    let raw: Buffer;
    try {
      raw = await readBody(ctx.req, MAX_WEBHOOK_BYTES);
    } catch {
      throw new GatewayError('BAD_REQUEST', { detail: `A webhook body is at most ${MAX_WEBHOOK_BYTES} bytes.` });
    }
    const signature = ctx.req.headers['stripe-signature'];
    const reply = billing.webhook(raw, typeof signature === 'string' ? signature : undefined);
    json(ctx, reply.status, reply.body, reply.status >= 400 ? PROBLEM_HEADERS : JSON_HEADERS);
  }

  /** The customer's own view, with its own key: balance, plan, quota and its latest requests. */
  function usage(ctx: RequestContext): void {
    const t = now();
    authenticate(ctx, keys, config, t, false);
    rateLimit(ctx, limiter, t);
    const account = ctx.account!;
    const plan = ctx.plan!;
    const period = quotaPeriod(account, t, periods);
    const balanceMicros = store.balance(account.id);
    json(ctx, 200, {
      accountId: account.id,
      plan: plan.name,
      balanceMicros,
      balance: formatMicros(balanceMicros),
      quota: { period, used: store.quotaUsed(account.id, period), limit: plan.monthlyQuota },
      recent: store.recentUsage(account.id, 20).map(({ ts, ...r }) => ({
        time: new Date(ts).toISOString(), ...r, cost: formatMicros(r.priceMicros),
      })),
    });
  }

  function json(ctx: RequestContext, status: number, body: unknown, type = JSON_HEADERS): void {
    const text = JSON.stringify(body);
    commitPrevious(ctx.socket, store);
    ctx.res.writeHead(status, [...ctx.responseHeaders, ...type, 'content-length', String(Buffer.byteLength(text))]);
    ctx.res.end(text);
  }

  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, handle);
  // A client that closes its connection has seen its last response: write that row now.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      commitPrevious(socket, store);
    });
  });
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy(err);
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
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections close as soon as their last response is written; whatever is
      // still open after shutdownTimeoutMs is cut.
      const sweep = setInterval(() => {
        server.closeIdleConnections();
        // A connection that never sent a byte (a client's spare) holds no request to finish.
        for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy();
      }, 50);
      const deadline = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(deadline);
      await upstreams.close();
      store.flush();
    },
  };
}
