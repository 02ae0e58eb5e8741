// Request bodies the gateway reads whole (AI requests, billing calls, webhooks), and the rest of
// one it answered before reading it all.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { GatewayError } from '../errors.ts';

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
