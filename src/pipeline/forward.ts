// Stage 4: forward to the upstream and stream the answer back, both bodies unbuffered. The
// upstream is picked by upstreams.ts (one undici Pool per origin); the dispatch handler writes
// each chunk to the client as it arrives and pauses the upstream while the client's socket is full.
import { Transform, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Route } from '../config.ts';
import { GatewayError } from '../errors.ts';
import { PROVIDERS } from '../meters/providers.ts';
import type { RequestContext } from './context.ts';
import type { Queued, Upstream, Upstreams } from './upstreams.ts';

// RFC 9110 §7.6.1 hop-by-hop fields, plus Host (it belongs to the upstream's URL) and Expect
// (node:http already answered 100-continue; undici refuses the field). Fields named in
// Connection are dropped too, per request.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'host', 'expect',
]);
// Written by the gateway itself: X-Forwarded-* (see requestHeaders), X-Request-Id (its own) and
// X-Client-Request-Id (the client's, once checked). A client's Forwarded and X-Real-IP would
// reach the upstream as if the gateway vouched for them.
const OWN_REQUEST_HEADERS = new Set([
  'x-request-id', 'x-client-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-real-ip',
]);
// On AI routes: the provider key replaces the client's; a read (maybe rewritten) body has a new
// length; usage is read from the response, so it must come uncompressed. A client must not pick
// the operator's organization or project, nor see them, nor get the provider's cookies.
const AI_REPLACED = new Set(['authorization', 'x-api-key', 'x-provider-key', 'content-length', 'accept-encoding', 'openai-organization', 'openai-project', 'cookie']);
const AI_PRIVATE_RESPONSE = new Set(['openai-organization', 'openai-project', 'anthropic-organization-id', 'set-cookie']);
// The operator's rate limits and what is left of them: its tier and every customer's live usage
// together. Retry-After stays (a client needs it), as do the provider's request id and timings.
const AI_PRIVATE_PREFIXES = ['x-ratelimit-', 'anthropic-ratelimit-', 'anthropic-priority-'];
/** A model list larger than this is not the provider's: refused rather than held. */
const MAX_MODEL_LIST = 4 * 1024 * 1024;
const CLIENT_GONE = new Error('client disconnected');
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

const UPSTREAM_TIMEOUT = new GatewayError('UPSTREAM_TIMEOUT');
const BODY_STALLED = new GatewayError('REQUEST_TIMEOUT');

/** The path to request upstream: the upstream's own base path, then the client's path. */
export function upstreamPath(route: Route, basePath: string, url: string): string {
  if (!route.stripPrefix) return basePath + url;
  const rest = url.slice(route.path.length);
  // Nothing left but maybe a query: the route's own trailing slash decides ("/v1/models" on
  // https://api.openai.com/v1/models stays without one, "/docs/" on http://h/v1 gives /v1/).
  if (rest === '' || rest.charCodeAt(0) === 63 /* ? */) {
    return (route.path.endsWith('/') || basePath === '' ? `${basePath}/` : basePath) + rest;
  }
  return `${basePath}/${rest.charCodeAt(0) === 47 ? rest.slice(1) : rest}`;
}

/** What the server is told as a forwarded request goes (one object for all requests). */
export interface ForwardEvents {
  /** The response is about to start (its status line goes out next). */
  responding(ctx: RequestContext): void;
  /** Called once: with null when the response was streamed whole, or with the error that stopped it. */
  done(ctx: RequestContext, err: Error | null): void;
}

/** Sends the request upstream; the caller decides what the client sees when it fails. */
export function forward(ctx: RequestContext, upstream: Upstream, events: ForwardEvents): void {
  const { req, res } = ctx;
  const route = ctx.route!;
  const { options } = upstream.owner;
  const handler = new ForwardHandler(ctx, events, upstream);
  res.on('close', () => {
    if (!res.writableEnded) {
      ctx.clientGone = true;
      if (!handler.finishesWithoutClient()) handler.controller?.abort(CLIENT_GONE);
    }
  });

  let body: Dispatcher.DispatchOptions['body'] = null;
  const length = req.headers['content-length'];
  if (ctx.ai) {
    body = ctx.ai.body; // already read, possibly rewritten
    ctx.requestBytes = body.length;
  } else if (ctx.body) {
    body = ctx.body; // small: read whole (readSmallBody)
    ctx.requestBytes = body.length;
  } else if (length !== undefined && length !== '0') {
    ctx.requestBytes = Number(length);
    body = req;
  } else if (req.headers['transfer-encoding'] !== undefined) {
    body = req.pipe(new BodyLimit(ctx, options.maxBodyBytes));
    req.on('error', (err) => (body as Transform).destroy(err));
  }
  // A body that stops arriving must not hold an upstream connection: the socket's idle timeout
  // runs while it streams (any byte read resets it).
  if (body === req || body instanceof BodyLimit) {
    ctx.socket.setTimeout(options.bodyTimeoutMs);
    req.once('timeout', () => handler.fail(BODY_STALLED));
    req.once('end', () => ctx.socket.setTimeout(0));
  }

  upstream.owner.queued(handler, route.timeoutMs);
  upstream.origin.pool.dispatch({
    path: upstreamPath(route, upstream.basePath, req.url!),
    method: req.method as Dispatcher.HttpMethod,
    headers: requestHeaders(ctx, route),
    body,
    headersTimeout: route.timeoutMs,
    bodyTimeout: route.timeoutMs,
  }, handler);
}

function requestHeaders(ctx: RequestContext, route: Route): string[] {
  const { req } = ctx;
  const headers = req.headers;
  const dropNamed = namedInConnection(headers.connection);
  const out: string[] = [];
  const ai = route.meter !== undefined;
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || OWN_REQUEST_HEADERS.has(name) || name.startsWith('x-tollgate-')) continue;
    if (dropNamed?.has(name) || name in route.headers) continue;
    if (ai && AI_REPLACED.has(name)) continue;
    // CGI and WSGI fold "_" into "-": X-Tollgate_Account would be read as X-Tollgate-Account.
    if (name.includes('_') && ownedOnceFolded(name.replaceAll('_', '-'), route)) continue;
    const v = headers[name]!;
    // The key goes no further, on any route: not the copy that authenticated, nor any other.
    if (name === ctx.keyHeader || ((name === 'authorization' || name === 'x-api-key') && KEY_INSIDE.test(v as string))) continue;
    if (typeof v === 'string') out.push(name, v);
    else for (const one of v) out.push(name, one);
  }
  for (const name in route.headers) out.push(name, route.headers[name]);
  if (ai) {
    // The provider gets its own key and nothing that names the customer or its address.
    out.push(...PROVIDERS[route.meter!].auth(ctx.providerKey!), 'x-request-id', ctx.requestId);
    if (ctx.ai) out.push('content-length', String(ctx.ai.body.length), 'accept-encoding', 'identity');
    else {
      // Free endpoints (model lists, token counts) stream as sent.
      if (headers['content-length'] !== undefined) out.push('content-length', headers['content-length']);
      if (ctx.modelFilter) out.push('accept-encoding', 'identity'); // read to be filtered
      else if (headers['accept-encoding'] !== undefined) out.push('accept-encoding', headers['accept-encoding']);
    }
    return out;
  }
  if (ctx.account) {
    out.push('x-tollgate-account', ctx.account.id, 'x-tollgate-plan', ctx.plan!.name, 'x-tollgate-key-id', ctx.key!.id);
  }
  out.push('x-request-id', ctx.requestId);
  if (ctx.clientRequestId !== undefined) out.push('x-client-request-id', ctx.clientRequestId);
  const peer = ctx.socket.remoteAddress ?? 'unknown';
  if (ctx.viaProxy) {
    // A trusted proxy in front (TRUST_PROXY): its headers stand, the gateway adds its own hop.
    const forwardedFor = headers['x-forwarded-for'];
    const host = headers['x-forwarded-host'] ?? headers.host;
    out.push(
      'x-forwarded-for', forwardedFor ? `${forwardedFor}, ${peer}` : peer,
      'x-forwarded-proto', first(headers['x-forwarded-proto']) ?? 'http',
    );
    if (host) out.push('x-forwarded-host', first(host)!);
  } else {
    // Anyone else's X-Forwarded-* is its own word: the upstream gets what the gateway saw.
    out.push('x-forwarded-for', peer, 'x-forwarded-proto', 'http');
    if (headers.host) out.push('x-forwarded-host', headers.host);
  }
  return out;
}

/** node:http joins repeats of most fields with ", "; a repeated X-Forwarded-Proto or -Host keeps the first. */
function first(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = typeof v === 'string' ? v : v[0];
  const comma = s.indexOf(',');
  return comma === -1 ? s : s.slice(0, comma).trim();
}

/** RFC 9110 §7.6.1: the fields a Connection header names are hop-by-hop too (none for the usual values). */
function namedInConnection(v: string | string[] | undefined): Set<string> | undefined {
  if (typeof v !== 'string' || v === 'keep-alive' || v === 'close') return undefined;
  return new Set(v.toLowerCase().split(',').map((s) => s.trim()));
}

// A Tollgate key anywhere in a value: "Bearer tg_…" in any case, a bare key, or one of several
// copies joined by node:http ("tg_…, tg_…").
const KEY_INSIDE = /tg_[0-9A-Za-z]{38}/;

/** Whether a folded header name is one the gateway sets itself on this route. */
function ownedOnceFolded(folded: string, route: Route): boolean {
  if (OWN_REQUEST_HEADERS.has(folded) || folded.startsWith('x-tollgate-') || folded === 'authorization' || folded === 'x-api-key') return true;
  for (const name in route.headers) if (name.replaceAll('_', '-') === folded) return true;
  return false;
}

/** The answer a client sees when forwarding fails before the response started. */
export function upstreamFailure(err: Error): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: string }).code;
  return new GatewayError(code !== undefined && TIMEOUT_CODES.has(code) ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNREACHABLE');
}

/** An upstream response header a customer must not see on an AI route. */
function privateToOperator(name: string): boolean {
  return AI_PRIVATE_RESPONSE.has(name) || AI_PRIVATE_PREFIXES.some((p) => name.startsWith(p));
}

class ForwardHandler implements Dispatcher.DispatchHandler, Queued {
  controller: Dispatcher.DispatchController | undefined = undefined;
  // Its place among the requests waiting for a connection (Upstreams.queued).
  waitDeadline = 0;
  waitPrev: Queued | undefined = undefined;
  waitNext: Queued | undefined = undefined;
  private finished = false;
  private stalled = false;
  /** Whether the upstream's health heard of this request yet (once: at its response, or its failure). */
  private told = false;
  /** A model list held to be filtered. */
  private list: Buffer[] | undefined = undefined;
  private listBytes = 0;
  private readonly upstreams: Upstreams;
  private readonly sentAt = performance.now();

  constructor(private readonly ctx: RequestContext, private readonly events: ForwardEvents, private readonly upstream: Upstream) {
    this.upstreams = upstream.owner;
  }

  /** Ends the exchange from the gateway's side: the upstream is aborted, or never started. */
  fail(err: Error): void {
    if (this.controller) this.controller.abort(err);
    else this.finish(err); // still queued: onRequestStart aborts it when its turn comes
  }

  /**
   * A priced request whose answer comes whole at the end (not a stream): the provider bills it
   * even if the client leaves, so it runs to its end (bounded by the route's timeout) and is
   * settled from its usage report.
   */
  finishesWithoutClient(): boolean {
    const ai = this.ctx.ai;
    return ai !== undefined && ai.price !== undefined && !ai.call.stream && (this.ctx.status === 0 || ai.mode === 'buffer');
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.upstreams.dequeue(this);
    if (this.ctx.clientGone) controller.abort(CLIENT_GONE);
    else if (this.finished) controller.abort(UPSTREAM_TIMEOUT);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: the final status follows
    const { ctx } = this;
    const ai = ctx.ai;
    ctx.status = statusCode;
    this.told = true;
    this.upstreams.responded(ctx.route!.path, this.upstream.origin, statusCode, performance.now() - this.sentAt);
    ai?.start(statusCode, headers['content-type'] as string | undefined);
    if (ctx.modelFilter && statusCode >= 200 && statusCode < 300) this.list = [];
    // A body the gateway parses may change length (a hidden usage chunk): Node re-frames it.
    const dropLength = (ai !== undefined && ai.mode !== 'raw') || this.list !== undefined;
    const dropNamed = namedInConnection(headers.connection);
    const out = ctx.responseHeaders;
    for (const name in headers) {
      if (HOP_BY_HOP.has(name) || name === 'x-request-id' || name === 'x-client-request-id' || dropNamed?.has(name)) continue;
      if (ctx.route!.cors && name.startsWith('access-control-')) continue; // the gateway answers for CORS
      if (dropLength && name === 'content-length') continue;
      if (ctx.route!.meter && privateToOperator(name)) continue;
      const v = headers[name]!;
      if (typeof v === 'string') out.push(name, v);
      else for (const one of v) out.push(name, one);
    }
    // A JSON body is held until its usage is read, so the cost can go out in a header.
    if (ai?.mode !== 'buffer' && !this.list && !ctx.clientGone) {
      this.events.responding(ctx);
      ctx.res.writeHead(statusCode, out);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const { ctx } = this;
    if (this.list) {
      this.list.push(chunk);
      if ((this.listBytes += chunk.length) > MAX_MODEL_LIST) controller.abort(new Error('model list too large'));
      return;
    }
    // AI responses are counted by their AiExchange (meter() takes its figure), the rest here.
    let out: Buffer | string = chunk;
    if (ctx.ai) out = ctx.ai.data(chunk);
    else ctx.responseBytes += chunk.length;
    if (out.length === 0) return;
    if (ctx.clientGone) {
      // Only a held body finishes without its client; anything streaming stops here.
      if (ctx.ai?.mode !== 'buffer') controller.abort(CLIENT_GONE);
      return;
    }
    const { res } = ctx;
    if (!res.headersSent) {
      // A held JSON body grew past what is parsed: it streams on, its headers first.
      this.events.responding(ctx);
      res.writeHead(ctx.status, ctx.responseHeaders);
    }
    if (!res.write(out)) this.stall(controller);
  }

  /**
   * The client is not reading: pause the upstream until it drains, but no longer than the write
   * timeout (undici's bodyTimeout does not run while paused). The socket's idle timeout counts
   * it: nothing is written while the client reads nothing.
   */
  private stall(controller: Dispatcher.DispatchController): void {
    controller.pause();
    const { res, socket } = this.ctx;
    if (!this.stalled) {
      this.stalled = true;
      res.on('timeout', () => res.destroy());
    }
    socket.setTimeout(this.upstreams.options.writeTimeoutMs);
    res.once('drain', () => {
      socket.setTimeout(0);
      controller.resume();
    });
  }

  onResponseEnd(): void {
    const { ctx } = this;
    const ai = ctx.ai;
    if (this.list) return this.endList();
    if (!ai) {
      ctx.res.end();
      return this.finish(null);
    }
    const rest = ai.end();
    if (ctx.clientGone) {
      ctx.status = 499; // nginx's "client closed request": the answer was billed, never delivered
      return this.finish(null);
    }
    if (!ctx.res.headersSent) {
      // Held until now: the whole body is `rest`.
      const out = ctx.responseHeaders;
      const cost = ai.knownCost();
      if (cost !== undefined) out.push('x-tollgate-cost-micros', String(cost));
      out.push('content-length', String(Buffer.byteLength(rest)));
      this.events.responding(ctx);
      ctx.res.writeHead(ctx.status, out);
    }
    ctx.res.end(rest);
    this.finish(null);
  }

  private endList(): void {
    const { ctx } = this;
    let body = Buffer.concat(this.list!);
    try {
      body = Buffer.from(JSON.stringify(ctx.modelFilter!(JSON.parse(body.toString('utf8')))));
    } catch {
      // Not JSON: passed on as it came (there is nothing in it to hide).
    }
    const out = ctx.responseHeaders;
    out.push('content-length', String(body.length));
    this.events.responding(ctx);
    ctx.res.writeHead(ctx.status, out);
    ctx.res.end(body);
    ctx.responseBytes = body.length;
    this.finish(null);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.finish(err);
  }

  private finish(err: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    this.upstreams.dequeue(this);
    // The upstream failed to answer: not the gateway's own doing (a stalled body, a full queue),
    // nor the client's (gone, or its body broke off).
    if (err !== null && !this.told && !(err instanceof GatewayError) && err !== CLIENT_GONE && !this.ctx.clientGone && !this.ctx.req.errored) {
      this.upstreams.failed(this.upstream.origin);
    }
    this.events.done(this.ctx, err);
  }
}

/** Counts a chunked request body and fails it past the limit (a sized one is checked up front). */
class BodyLimit extends Transform {
  constructor(private readonly ctx: RequestContext, private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.ctx.requestBytes += chunk.length;
    if (this.ctx.requestBytes > this.limit) cb(new GatewayError('PAYLOAD_TOO_LARGE'));
    else cb(null, chunk);
  }
}
