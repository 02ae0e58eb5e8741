// TRUST_PROXY: the peers whose X-Forwarded-* the gateway believes (a proxy in front, Caddy). From
// anyone else those headers are the client's own word, so they are replaced by what the gateway
// saw. The client's address is then the first address from the right of X-Forwarded-For (which
// ends with the peer) that is not a trusted proxy, as Express's proxy-addr and nginx's realip
// (real_ip_recursive) read it. net.BlockList would do the matching, at about 4 µs a check.

/** An address as bytes: 4 for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6. */
type Bytes = number[];

interface Range { bytes: Bytes; prefix: number }

const LOOPBACK = ['127.0.0.0/8', '::1/128'];

/** Validates TRUST_PROXY ("loopback", addresses and CIDRs, comma-separated); problems are pushed. */
export function parseTrustProxy(raw: string | undefined, problems: string[]): string[] {
  if (raw === undefined || raw.trim() === '' || raw.trim() === 'off') return [];
  const out: string[] = [];
  for (const entry of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (entry === 'loopback') out.push(...LOOPBACK);
    else if (range(entry)) out.push(entry);
    else problems.push(`TRUST_PROXY: expected "loopback", IP addresses or CIDRs (10.0.0.0/8, fd00::/8), comma-separated; got "${entry}"`);
  }
  return out;
}

export class TrustedProxies {
  private readonly ranges: Range[];
  /** No proxy is trusted: every peer is the client (the default). */
  readonly none: boolean;

  constructor(entries: readonly string[]) {
    this.ranges = entries.map((e) => range(e)!);
    this.none = this.ranges.length === 0;
  }

  trusts(address: string): boolean {
    if (this.none) return false;
    const b = bytesOf(address);
    if (!b) return false;
    for (const r of this.ranges) if (r.bytes.length === b.length && within(b, r)) return true;
    return false;
  }

  /** The client behind a trusted `peer`: X-Forwarded-For read from the right, trusted hops skipped. */
  client(peer: string, forwardedFor: string | undefined): string {
    if (!forwardedFor) return peer;
    const hops = forwardedFor.split(',');
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i].trim();
      if (hop === '') break;
      client = hop;
      if (!this.trusts(hop)) break;
    }
    return client;
  }
}

function range(entry: string): Range | undefined {
  const slash = entry.indexOf('/');
  const bytes = bytesOf(slash === -1 ? entry : entry.slice(0, slash));
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  if (slash === -1) return { bytes, prefix: max };
  const p = entry.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p) || Number(p) > max) return undefined;
  return { bytes, prefix: Number(p) };
}

function within(b: Bytes, r: Range): boolean {
  let bits = r.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((b[i] & mask) !== (r.bytes[i] & mask)) return false;
  }
  return true;
}

/** The bytes of an IPv4 or IPv6 address; undefined for anything else. */
export function bytesOf(address: string): Bytes | undefined {
  if (!address.includes(':')) return v4(address);
  let s = address;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two hextets.
  let tail: Bytes = [];
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    const four = v4(s.slice(lastColon + 1));
    if (!four) return undefined;
    tail = four;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0].split(':');
  const rest = halves.length === 2 && halves[1] !== '' ? halves[1].split(':') : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const groups = [...head, ...new Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...rest];
  const out: Bytes = [];
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    const n = parseInt(g, 16);
    out.push(n >> 8, n & 0xff);
  }
  if (tail.length === 4) out.splice(12, 4, ...tail);
  // IPv4-mapped (::ffff:a.b.c.d): a dual-stack listener's name for an IPv4 peer.
  if (out.slice(0, 10).every((x) => x === 0) && out[10] === 0xff && out[11] === 0xff) return out.slice(12);
  return out;
}

function v4(s: string): Bytes | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: Bytes = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    out.push(Number(p));
  }
  return out;
}
