// How the CLI fails: one line on stderr and an exit code a script can branch on.
import { CommanderError } from 'commander';
import { ConfigError } from '../config.ts';
import { InvalidInputError, NotFoundError } from '../db/admin.ts';

export const EXIT = {
  ok: 0,
  /** Not found, or the operation was refused (a revoked key cannot be rotated, an email is taken). */
  failed: 1,
  /** Bad arguments: unknown option, missing value, bad amount, duration, month, plan, email or cursor. */
  usage: 2,
  /** EX_CONFIG, as the server uses: the environment or config file is invalid. */
  config: 78,
} as const;

/** Bad arguments the parser cannot see (they need the config or depend on each other). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A refused operation that is not a missing record. */
export class FailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FailedError';
  }
}

const COMMANDER_PREFIX = /^error: /;

/** The exit code and the single line to print for anything a command threw. */
export function describeFailure(err: unknown): { code: number; line: string } {
  if (err instanceof CommanderError) return { code: EXIT.usage, line: err.message.replace(COMMANDER_PREFIX, '') };
  if (err instanceof UsageError || err instanceof InvalidInputError) return { code: EXIT.usage, line: err.message };
  if (err instanceof NotFoundError) return { code: EXIT.failed, line: err.message };
  if (err instanceof ConfigError) return { code: EXIT.config, line: `invalid configuration: ${err.problems.join('; ')}` };
  if (err instanceof Error) return { code: EXIT.failed, line: err.message };
  return { code: EXIT.failed, line: String(err) };
}

/** Commander's messages can carry a second line ("(Did you mean …?)"); a failure is one line. */
export function oneLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
}
