// Argument parsers for commander: a value that does not parse is a usage error (exit 2) before any
// database is opened. Plans are checked against the config in the commands that take them.
import { InvalidArgumentError } from 'commander';
import type { Config } from '../config.ts';
import { parseDuration } from '../duration.ts';
import { parseDollars } from '../money.ts';
import { UsageError } from './errors.ts';

// Deliberately loose (RFC 5322 is not a regex): one @, something on each side, a dot in the domain.
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;
const COUNT = /^[1-9]\d{0,14}$/;

function parser<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** A positive dollar amount as micro-dollars. */
export const amountArg = parser((text) => {
  const micros = parseDollars(text);
  if (micros === 0) throw new RangeError('the amount must be more than zero');
  return micros;
});

export const durationArg = parser(parseDuration);

export const positiveDurationArg = parser((text) => {
  const ms = parseDuration(text);
  if (ms === 0) throw new RangeError('the duration must be more than zero');
  return ms;
});

/** A calendar month, "2026-11". */
export const monthArg = parser((text) => {
  if (!MONTH.test(text)) throw new RangeError(`not a month: "${text}" (expected YYYY-MM)`);
  return text;
});

export const emailArg = parser((text) => {
  if (!EMAIL.test(text)) throw new RangeError(`not an email address: "${text}"`);
  return text;
});

/** A whole number from 1 (a row count, a row id). */
export const countArg = parser((text) => {
  if (!COUNT.test(text)) throw new RangeError(`not a whole number from 1: "${text}"`);
  return Number(text);
});

/** The plan name if the config declares it; otherwise a usage error naming the plans there are. */
export function knownPlan({ plans }: Config, name: string): string {
  if (!Object.hasOwn(plans, name)) {
    throw new UsageError(`unknown plan "${name}" (plans: ${Object.keys(plans).join(', ')})`);
  }
  return name;
}
