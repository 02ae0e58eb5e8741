// Request bodies the gateway reads whole (AI requests, small proxied bodies, billing calls,
// webhooks), and the rest of one it answered before reading it all.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { GatewayError } from '../errors.ts';
import type { RequestContext } from './context.ts';

/** Reads a whole request body, refusing it past `limit` bytes (413) or after a pause of `timeoutMs` (408). */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err: GatewayError) => {
      req.removeAllListeners('data');
      req.socket?.setTimeout(0);
      reject(err);
    };
    req.socket?.setTimeout(timeoutMs);
    req.once('timeout', () => stop(new GatewayError('REQUEST_TIMEOUT')));
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) stop(new GatewayError('PAYLOAD_TOO_LARGE'));
      else chunks.push(chunk);
    });
    req.on('end', () => {
      req.socket?.setTimeout(0);
      resolve(Buffer.concat(chunks, size));
    });
    req.on('error', reject);
  });
}

/** Request bodies of up to this many bytes are read whole before they are forwarded. */
const SMALL_BODY_BYTES = 16 * 1024;

/**
 * A body with a Content-Length of at most SMALL_BODY_BYTES, read into ctx.body (the forward
 * sends it as a Buffer); nothing for a larger one or none (GET: no promise). Streamed into
 * undici, a body kept every POST's objects alive into the old generation (figures in README,
 * Performance). Read first, a slow client's body also holds no upstream connection.
 */
export function readSmallBody(ctx: RequestContext, timeoutMs: number): Promise<void> | undefined {
  const length = ctx.req.headers['content-length'];
  if (length === undefined) return undefined;
  const n = Number(length);
  if (!(n > 0 && n <= SMALL_BODY_BYTES)) return undefined;
  return readBody(ctx.req, n, timeoutMs).then((body) => {
    ctx.body = body;
  });
}

/** Past these, the rest of a body answered early is not worth waiting for. */
const LINGER_MS = 5_000;
const LINGER_BYTES = 64 * 1024 * 1024;

/**
 * After an early answer (413, 408, 401…) the rest of the body is still on its way. Closing at
 * once would make the client's TCP stack see a reset before it reads the answer (nginx's
 * lingering close): the rest is read and discarded, for a bounded time and size, past which the
 * connection is cut. Read to its end, the connection serves the next request: the answer said
 * keep-alive, and a client (a reverse proxy above all) sends its next request on it.
 */
export function discardRest(req: IncomingMessage, socket: Socket): void {
  if (req.complete) return;
  let read = 0;
  const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read <= LINGER_BYTES) return;
    clearTimeout(timer);
    socket.destroy();
  });
  req.once('end', () => clearTimeout(timer));
  req.resume();
}
