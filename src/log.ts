// One JSON object per line on stdout, written by pino (its own serializer, and an asynchronous
// writer flushed at exit). Never pass a key or a secret in `fields`.
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
}

const noop = () => {};

// pino.stdTimeFunctions.isoTime formats a Date for every line; lines of one millisecond share it.
let lastMs = -1;
let lastTime = '';
function isoTime(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastTime = `,"time":"${new Date(ms).toISOString()}"`;
  }
  return lastTime;
}

/** `write` receives each line (tests); without it lines go to stdout. */
export function createLogger(level: LogLevel, write?: (line: string) => void): Logger {
  const destination: DestinationStream = write ? { write } : level === 'silent' ? { write: noop } : pino.destination({ dest: 1, sync: false });
  const root = pino({
    level,
    base: null, // no pid and hostname on every line: the process manager knows them
    timestamp: isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
  const at = (name: Level): LogFn => {
    if (!root.isLevelEnabled(name)) return noop;
    const fn = root[name].bind(root);
    return (msg, fields) => (fields === undefined ? fn(msg) : fn(fields, msg));
  };
  const access = root.child({}, { level: level === 'silent' ? 'silent' : 'info' });
  return {
    debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'),
    isLevelEnabled: (name) => root.isLevelEnabled(name),
    access: level === 'silent' ? noop : (line) => access.info(line, 'request'),
  };
}
