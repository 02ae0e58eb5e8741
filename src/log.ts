// One JSON object per line on stdout. Never pass a key or a secret in `fields`.
import type { LogLevel } from './config.ts';

export type Logger = Record<'debug' | 'info' | 'warn' | 'error', (msg: string, fields?: Record<string, unknown>) => void>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const noop = () => {};

export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const at = (name: Exclude<LogLevel, 'silent'>) =>
    RANK[name] < RANK[level] ? noop : (msg: string, fields?: Record<string, unknown>) =>
      write(`${JSON.stringify({ time: new Date().toISOString(), level: name, msg, ...fields })}\n`);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
