// API key format: "tg_" + 32 random base62 characters + a 6-character base62 CRC-32 of what
// precedes it. The checksum lets the gateway refuse a mistyped key without a lookup and lets
// secret scanners recognise a real one (the scheme GitHub uses for its tokens).
import { hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const PREFIX = 'tg_';
const BODY_LEN = 32;
const CHECK_LEN = 6;
export const KEY_LENGTH = PREFIX.length + BODY_LEN + CHECK_LEN;
const SHAPE = /^tg_[0-9A-Za-z]{38}$/;

function base62(n: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

function checksum(head: string): string {
  return base62(crc32(head), CHECK_LEN);
}

export function generateKey(): string {
  let body = '';
  while (body.length < BODY_LEN) {
    for (const b of randomBytes(48)) {
      // 248 = 4 × 62: rejecting larger bytes keeps every character equally likely.
      if (b < 248 && body.length < BODY_LEN) body += ALPHABET[b % 62];
    }
  }
  const head = PREFIX + body;
  return head + checksum(head);
}

/** Shape and checksum only: no lookup. */
export function isWellFormedKey(key: string): boolean {
  if (key.length !== KEY_LENGTH || !SHAPE.test(key)) return false;
  const head = key.slice(0, PREFIX.length + BODY_LEN);
  return key.endsWith(checksum(head));
}

/** What the database stores instead of the key. */
export function hashKey(key: string): string {
  return hash('sha256', key, 'base64url');
}

/** Enough of the key to tell it apart in a listing, never enough to use it. */
export function displayPrefix(key: string): string {
  return key.slice(0, PREFIX.length + 6);
}

export function newId(kind: 'acct' | 'key'): string {
  return `${kind}_${randomBytes(10).toString('hex')}`;
}
