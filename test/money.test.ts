import { describe, expect, it } from 'vitest';
import { formatMicros, parseDollars } from '../src/money.ts';

describe('parseDollars reads dollars into integer micro-dollars exactly', () => {
  it.each([
    ['12.50', 12_500_000],
    ['12.5', 12_500_000],
    ['12', 12_000_000],
    ['0.000001', 1],
    ['0.1', 100_000],
    ['0.2', 200_000],
    ['0.3', 300_000],
    ['1.10', 1_100_000],
    ['2.01', 2_010_000], // as a float, 2.01 * 1e6 is 2009999.9999999998
    ['4.03', 4_030_000], // as a float, 4.03 * 1e6 is 4030000.0000000005
    ['1.005', 1_005_000], // as a float, 1.005 * 1e6 is 1004999.9999999999
    ['007.50', 7_500_000],
    ['0', 0],
    ['9007199254.740991', Number.MAX_SAFE_INTEGER],
  ])('"%s" → %i', (text, micros) => {
    expect(parseDollars(text)).toBe(micros);
  });

  it('adds like decimal money: 0.1 + 0.2 is exactly 0.3', () => {
    expect(parseDollars('0.1') + parseDollars('0.2')).toBe(parseDollars('0.3'));
    expect(formatMicros(parseDollars('0.1') + parseDollars('0.2'))).toBe('0.30');
  });

  it.each([
    ['1e3', /not a dollar amount/],
    ['1E-6', /not a dollar amount/],
    ['-5', /cannot be negative/],
    ['-0.01', /cannot be negative/],
    ['+5', /not a dollar amount/],
    ['0.0000001', /more than 6 decimals/],
    ['1.1234567', /more than 6 decimals/],
    ['', /not a dollar amount/],
    ['abc', /not a dollar amount/],
    ['12.', /not a dollar amount/],
    ['.5', /not a dollar amount/],
    ['1,000', /not a dollar amount/],
    ['$12', /not a dollar amount/],
    [' 12', /not a dollar amount/],
    ['0x10', /not a dollar amount/],
    ['Infinity', /not a dollar amount/],
    ['NaN', /not a dollar amount/],
    ['9007199254.740992', /too large/],
    ['99999999999999999999999', /too large/],
  ])('refuses "%s"', (text, message) => {
    expect(() => parseDollars(text)).toThrow(RangeError);
    expect(() => parseDollars(text)).toThrow(message);
  });
});

describe('formatMicros writes micro-dollars as a dollar string', () => {
  it.each([
    [0, '0.00'],
    [1, '0.000001'],
    [10, '0.00001'],
    [100_000, '0.10'],
    [12_500_000, '12.50'],
    [12_345_678, '12.345678'],
    [1_000_000_000_000, '1000000.00'],
    [-1_000, '-0.001'],
    [-12_500_000, '-12.50'],
    [Number.MAX_SAFE_INTEGER, '9007199254.740991'],
    [Number.MAX_SAFE_INTEGER - 1, '9007199254.74099'],
  ])('%i → "%s"', (micros, text) => {
    expect(formatMicros(micros)).toBe(text);
  });

  it('round-trips with parseDollars', () => {
    for (const micros of [1, 99, 100_000, 12_500_000, 123_456_789_012, Number.MAX_SAFE_INTEGER]) {
      expect(parseDollars(formatMicros(micros))).toBe(micros);
    }
  });

  it('refuses what is not a whole number of micros', () => {
    expect(() => formatMicros(0.5)).toThrow(RangeError);
    expect(() => formatMicros(Number.MAX_SAFE_INTEGER + 1)).toThrow(RangeError);
    expect(() => formatMicros(Number.NaN)).toThrow(RangeError);
  });
});
