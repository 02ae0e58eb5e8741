// One JSON object per line on stdout, written by pino (its own serializer, and an asynchronous
// writer flushed at exit). Never pass a key or a secret in `fields`. The access log, one line per
// request, is serialized here rather than by pino: its fields are known, and pino's generic
// walk over them was a tenth of the gateway's own CPU per request.
import pino, { type DestinationStream } from 'pino';
import type { LogLevel } from './config.ts';

type Level = Exclude<LogLevel, 'silent'>;
type LogFn = (msg: string, fields?: Record<string, unknown>) => void;

/** One request, as the access log has it (src/server.ts writes it). Undefined fields are left out. */
export interface AccessLine {
  requestId: string;
  /** The client's own X-Request-Id, when it sent a sane one. */
  clientRequestId: string | undefined;
  /** The client's address (behind a trusted proxy, from X-Forwarded-For). */
  client: string | undefined;
  accountId: string | undefined;
  keyId: string | undefined;
  route: string | undefined;
  method: string | undefined;
  path: string | undefined;
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  costMicros: number;
  /** A refusal's or failure's code (RATE_LIMITED, UPSTREAM_UNREACHABLE, …). */
  error: string | undefined;
}

/** The gateway's logger: our calls take (msg, fields); pino's take (fields, msg). */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** Whether a level is written: check it before building fields on a hot path. */
  isLevelEnabled(level: Level): boolean;
  /** One access-log line. Written at any LOG_LEVEL but silent: ACCESS_LOG decides which requests. */
  access(line: AccessLine): void;
  /**
   * Sends the lines bound for stdout, pino's and the access log's, to `write` instead (a writer
   * thread's), or back (undefined): one writer at a time, so that a partial write to a full pipe
   * is never followed by another writer's line. Returns what writes to stdout itself. Lines that
   * go elsewhere (LOG_LEVEL=silent, a test's writer) stay there.
   */
  moveStdout(write: ((json: string) => void) | undefined): (json: string) => void;
}

const noop = () => {};

// pino.stdTimeFunctions.isoTime formats a Date for every line (2.6 µs); here a second's lines
// share its "2026-12-01T15:08:13." and add their milliseconds.
const MILLIS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
let lastSecond = -1;
let secondPrefix = '';
function isoTime(): string {
  const ms = Date.now();
  const second = ms - (ms % 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    secondPrefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
  }
  return `${secondPrefix}${MILLIS[ms - second]}Z"`;
}

// Most values need no escaping: only those with a quote, a backslash, a control or a non-ASCII
// character go through JSON.stringify.
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const str = (s: string): string => (PLAIN.test(s) ? `"${s}"` : JSON.stringify(s));

/** The line pino would write for `access.info(line, 'request')`, fields in the same order. */
export function accessJson(l: AccessLine): string {
  // Ids the gateway made (and a client's X-Request-Id, checked against CLIENT_REQUEST_ID in
  // server.ts) and the method node:http parsed are plain by construction.
  let out = `{"level":"info"${isoTime()},"requestId":"${l.requestId}"`;
  if (l.clientRequestId !== undefined) out += `,"clientRequestId":"${l.clientRequestId}"`;
  if (l.client !== undefined) out += `,"client":${str(l.client)}`;
  if (l.accountId !== undefined) out += `,"accountId":"${l.accountId}"`;
  if (l.keyId !== undefined) out += `,"keyId":"${l.keyId}"`;
  if (l.route !== undefined) out += `,"route":${str(l.route)}`;
  if (l.method !== undefined) out += `,"method":"${l.method}"`;
  if (l.path !== undefined) out += `,"path":${str(l.path)}`;
  out += `,"status":${l.status},"durationMs":${l.durationMs},"bytesIn":${l.bytesIn},"bytesOut":${l.bytesOut},"costMicros":${l.costMicros}`;
  if (l.error !== undefined) out += `,"error":${str(l.error)}`;
  return `${out},"msg":"request"}\n`;
}

/** Lines wait until this many bytes of them are buffered, or FLUSH_MS passed, and go in one write. */
const WRITE_BYTES = 16 * 1024;
const FLUSH_MS = 250;

/**
 * Lines to stdout, written asynchronously (flushed at exit by pino). Each line goes to pino's
 * writer as a Buffer: given strings, it appends them to one string and measures that string's
 * UTF-8 length at every line, which flattens it — under load, while a write is in flight, about
 * 8 KB copied per line. Writing whatever had piled up whenever the last write was done meant a
 * write (a round trip through libuv's thread pool) per dozen lines under load: 2–5 µs of CPU a
 * request. A kill -9 loses the lines of the last FLUSH_MS at most.
 */
function stdout(): DestinationStream {
  const sonic = pino.destination({ dest: 1, sync: false, contentMode: 'buffer', minLength: WRITE_BYTES, maxWrite: 4 * WRITE_BYTES });
  // sonic-boom's types know only its string mode.
  const write = sonic.write.bind(sonic) as unknown as (bytes: Buffer) => boolean;
  // Bytes handed over and not written yet. Not sonic-boom's periodicFlush: that makes an empty
  // write every time while idle. A flush while a write is in flight does nothing: the next one does.
  let buffered = 0;
  sonic.on('write', (n: number) => (buffered -= n));
  setInterval(() => {
    if (buffered > 0) sonic.flush();
  }, FLUSH_MS).unref();
  return {
    write: (line: string) => {
      const bytes = Buffer.from(line);
      buffered += bytes.length;
      return write(bytes);
    },
  };
}

/** `write` receives each line (tests); without it lines go to stdout. */
export function createLogger(level: LogLevel, write?: (line: string) => void): Logger {
  const destination: DestinationStream = write ? { write } : level === 'silent' ? { write: noop } : stdout();
  const toDestination = (json: string) => destination.write(json);
  // Where pino's lines and the access lines go: the destination, or a writer thread (moveStdout).
  let out = toDestination;
  const root = pino({
    level,
    base: null, // no pid and hostname on every line: the process manager knows them
    timestamp: isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, { write: (json: string) => out(json) });
  const at = (name: Level): LogFn => {
    if (!root.isLevelEnabled(name)) return noop;
    const fn = root[name].bind(root);
    return (msg, fields) => (fields === undefined ? fn(msg) : fn(fields, msg));
  };
  return {
    debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'),
    isLevelEnabled: (name) => root.isLevelEnabled(name),
    // The same way out as pino's: lines of both stay in order.
    access: level === 'silent' ? noop : (line) => out(accessJson(line)),
    moveStdout(to) {
      if (!write && level !== 'silent') out = to ?? toDestination;
      return toDestination;
    },
  };
}
