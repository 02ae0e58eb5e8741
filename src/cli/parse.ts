// Argument parsers for commander: a value that does not parse is a usage error (exit 2) before any
// database is opened or any request sent. Plans are checked where the config is (operations.ts).
import { InvalidArgumentError } from 'commander';
import { isEmail, MAX_LIMIT } from '../admin/input.ts';
import { parseDuration } from '../duration.ts';
import { parseDollars } from '../money.ts';
import type { AccountStatus } from '../storage/records.ts';

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
  if (!isEmail(text)) throw new RangeError(`not an email address: "${text}"`);
  return text;
});

/** A whole number from 1 (a row count, a row id). */
export const countArg = parser((text) => {
  if (!COUNT.test(text)) throw new RangeError(`not a whole number from 1: "${text}"`);
  return Number(text);
});

/** A page size: 1 to the admin API's largest. */
export const limitArg = parser((text) => {
  if (!COUNT.test(text) || Number(text) > MAX_LIMIT) throw new RangeError(`not a whole number from 1 to ${MAX_LIMIT}: "${text}"`);
  return Number(text);
});

export const statusArg = parser((text): AccountStatus => {
  if (text !== 'active' && text !== 'suspended') throw new RangeError(`not a status: "${text}" (active or suspended)`);
  return text;
});
