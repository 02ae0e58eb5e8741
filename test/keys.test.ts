import { describe, expect, it } from 'vitest';
import { displayPrefix, generateKey, hashKey, isWellFormedKey, KEY_LENGTH, newId } from '../src/keys.ts';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

describe('API keys', () => {
  it('are tg_ + 38 base62 characters (41 in all) and pass their own checksum', () => {
    expect(KEY_LENGTH).toBe(41);
    for (let i = 0; i < 200; i++) {
      const key = generateKey();
      expect(key).toMatch(/^tg_[0-9A-Za-z]{38}$/);
      expect(key).toHaveLength(41);
      expect(isWellFormedKey(key)).toBe(true);
    }
  });

  it('are unique', () => {
    const keys = new Set(Array.from({ length: 5000 }, generateKey));
    expect(keys.size).toBe(5000);
  });

  it('fail the check after any single-character change, anywhere in the key', () => {
    const key = generateKey();
    let tried = 0;
    for (let i = 0; i < key.length; i++) {
      for (const c of ALPHABET + '_-') {
        if (c === key[i]) continue;
        const typo = key.slice(0, i) + c + key.slice(i + 1);
        expect(isWellFormedKey(typo), `${typo} (position ${i})`).toBe(false);
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(41 * 60);
  });

  it('fail the check when swapped, truncated, extended or wrapped', () => {
    const key = generateKey();
    const swapped = key.slice(0, 10) + key[11] + key[10] + key.slice(12);
    if (swapped !== key) expect(isWellFormedKey(swapped)).toBe(false);
    expect(isWellFormedKey(key.slice(0, -1))).toBe(false);
    expect(isWellFormedKey(`${key}0`)).toBe(false);
    expect(isWellFormedKey(` ${key}`)).toBe(false);
    expect(isWellFormedKey(`${key}\n`)).toBe(false);
    expect(isWellFormedKey(`sk_${key.slice(3)}`)).toBe(false);
    expect(isWellFormedKey('')).toBe(false);
  });

  it('hash stably with SHA-256, differently for different keys', () => {
    const key = generateKey();
    expect(hashKey(key)).toBe(hashKey(key));
    expect(hashKey(key)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(hashKey(key)).not.toBe(hashKey(generateKey()));
    // A known vector: SHA-256("abc"), base64url.
    expect(hashKey('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
  });

  it('show a display prefix that tells keys apart but is not the key', () => {
    const key = generateKey();
    const prefix = displayPrefix(key);
    expect(key.startsWith(prefix)).toBe(true);
    expect(prefix.startsWith('tg_')).toBe(true);
    expect(prefix.length).toBeGreaterThan(3);
    // At most a quarter of the key's secret part is shown.
    expect(prefix.length - 3).toBeLessThanOrEqual(38 / 4);
    expect(isWellFormedKey(prefix)).toBe(false);
  });

  it('ids are prefixed by kind and unique', () => {
    expect(newId('acct')).toMatch(/^acct_[0-9a-f]{20}$/);
    expect(newId('key')).toMatch(/^key_[0-9a-f]{20}$/);
    expect(newId('key')).not.toBe(newId('key'));
  });
});
