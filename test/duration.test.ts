import { describe, expect, it } from 'vitest';
import { parseDuration } from '../src/duration.ts';

describe('parseDuration reads "30d", "24h", "15m", "90s" as milliseconds', () => {
  it.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['30d', 2_592_000_000],
    ['1s', 1_000],
    ['0s', 0],
    ['36500d', 3_153_600_000_000],
  ])('"%s" → %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '30', 'd', '1.5h', '1h30m', '-1h', '+1h', '1w', '10 m', '1H', '1e3s', 'forever'])('refuses "%s"', (text) => {
    expect(() => parseDuration(text)).toThrow(/not a duration/);
  });

  it('refuses a duration too long to count exactly in milliseconds', () => {
    expect(() => parseDuration('9007199254740991d')).toThrow(/too long/);
    expect(() => parseDuration('99999999999999999999s')).toThrow(/too long/);
  });
});
