// Money is an integer number of micro-dollars everywhere; this is the edge where it meets a dollar
// string. Both directions work on digits (and BigInt), never on a float: "0.1" is exactly 100000
// micros and 0.1 + 0.2 never becomes 0.30000000000000004.
const MICROS_PER_DOLLAR = 1_000_000n;
const DECIMALS = 6;
const MAX_MICROS = BigInt(Number.MAX_SAFE_INTEGER);
const AMOUNT = /^(\d+)(?:\.(\d+))?$/;

/**
 * "12.50" → 12_500_000. Plain digits with an optional point and at most 6 decimals (one
 * micro-dollar); no sign, exponent, separator or currency symbol. Zero is allowed here: whether it
 * makes sense is the caller's call. Throws a RangeError that says what is wrong.
 */
export function parseDollars(text: string): number {
  const m = AMOUNT.exec(text);
  if (!m) {
    const hint = text.trim().startsWith('-') ? ': amounts cannot be negative' : ' (expected e.g. 12.50)';
    throw new RangeError(`not a dollar amount: "${text}"${hint}`);
  }
  const [, whole, fraction = ''] = m;
  if (fraction.length > DECIMALS) {
    throw new RangeError(`"${text}" has more than ${DECIMALS} decimals: the smallest amount is 0.000001 (one micro-dollar)`);
  }
  const micros = BigInt(whole) * MICROS_PER_DOLLAR + BigInt(fraction.padEnd(DECIMALS, '0'));
  if (micros > MAX_MICROS) {
    throw new RangeError(`"${text}" is too large: at most ${formatMicros(Number.MAX_SAFE_INTEGER)} dollars`);
  }
  return Number(micros);
}

/** 12_500_000 → "12.50", 1 → "0.000001", -1000 → "-0.001": at least 2 decimals, no trailing zeros past them. */
export function formatMicros(micros: number): string {
  if (!Number.isSafeInteger(micros)) throw new RangeError(`not a whole number of micro-dollars: ${micros}`);
  const digits = String(Math.abs(micros)).padStart(DECIMALS + 1, '0');
  const whole = digits.slice(0, -DECIMALS);
  const fraction = digits.slice(-DECIMALS).replace(/0+$/, '').padEnd(2, '0');
  return `${micros < 0 ? '-' : ''}${whole}.${fraction}`;
}
