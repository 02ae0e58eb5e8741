// Splits a server-sent event stream into events where its bytes arrive, without decoding it
// (WHATWG HTML §9.2.6: an event ends at a blank line; a line ends in LF, CRLF or CR). The bytes go
// to the client as the upstream sent them; a tracker sees each event's name and decodes the data
// only of the few events it reads. CR and LF are ASCII, never part of a multi-byte UTF-8
// character, so cutting at them never splits a character.

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const COLON = 0x3a;
const DATA = Buffer.from('data');
const EVENT = Buffer.from('event');
const EMPTY = Buffer.alloc(0);

/**
 * A byte string to look for in events. Events are short (a few hundred bytes): Horspool's search
 * in JS costs less there than the setup of a native Buffer.indexOf.
 */
export class Marker {
  readonly bytes: Buffer;
  private readonly skip = new Uint8Array(256);

  constructor(text: string) {
    this.bytes = Buffer.from(text);
    const m = this.bytes.length;
    if (m === 0 || m > 255) throw new RangeError('a marker is 1 to 255 bytes');
    this.skip.fill(m);
    for (let i = 0; i < m - 1; i++) this.skip[this.bytes[i]] = m - 1 - i;
  }

  /** The first index in [from, end) where the marker starts, or -1. */
  in(buf: Buffer, from: number, end: number): number {
    const { bytes, skip } = this;
    const m = bytes.length;
    const last = bytes[m - 1];
    for (let i = from + m - 1; i < end; i += skip[buf[i]]) {
      if (buf[i] !== last) continue;
      let j = m - 2;
      while (j >= 0 && buf[i - m + 1 + j] === bytes[j]) j--;
      if (j < 0) return i - m + 1;
    }
    return -1;
  }
}

/**
 * One event: where its bytes are, its name, and its data decoded on demand. A splitter reads
 * every event of its stream into the same SseEvent: valid while the visit lasts, and one object a
 * stream rather than two an event for the collector.
 */
export class SseEvent {
  /** The `event:` field, or "message". */
  event = 'message';
  // The byte ranges of the data lines' values in `bytes`: [start, end, start, end, …] in the
  // first `used` numbers (the array is kept from event to event, never shrunk).
  private readonly values: number[] = [];
  private used = 0;
  private decoded: string | undefined = undefined;
  private bytes: Buffer = EMPTY;
  private start = 0;
  private end = 0;

  /**
   * Reads the event at bytes[start, end), from its first line to the blank line that ended it
   * (as far as it arrived); `crs`: some of its lines end in CR.
   */
  read(bytes: Buffer, start: number, end: number, bom: boolean, crs: boolean): this {
    this.bytes = bytes;
    this.start = start;
    this.end = end;
    this.used = 0;
    this.decoded = undefined;
    this.event = 'message';
    let name = -1;
    let nameEnd = -1;
    for (let p = start + (bom ? 3 : 0); p < end;) {
      let eol = p;
      if (crs) while (eol < end && bytes[eol] !== LF && bytes[eol] !== CR) eol++;
      else if ((eol = bytes.indexOf(LF, p)) === -1 || eol > end) eol = end; // memchr: the line's LF is in the event
      if (eol === p) break; // the blank line
      const c = bytes[p];
      if (c === 0x64 && isField(bytes, p, eol, DATA)) {
        this.values[this.used++] = valueAt(bytes, p + 4, eol);
        this.values[this.used++] = eol;
      } else if (c === 0x65 && isField(bytes, p, eol, EVENT)) {
        name = valueAt(bytes, p + 5, eol);
        nameEnd = eol;
      }
      p = eol + (bytes[eol] === CR && bytes[eol + 1] === LF ? 2 : 1);
    }
    if (nameEnd > name) this.event = bytes.toString('utf8', name, nameEnd);
    return this;
  }

  /** The event's bytes as they came (a view of the upstream's chunk when it came in one). */
  get raw(): Buffer {
    return this.bytes.subarray(this.start, this.end);
  }

  /** Whether it has a data field: an event without one is not dispatched (§9.2.6). */
  get dispatched(): boolean {
    return this.used > 0;
  }

  /** The `data:` lines joined with "\n" (decoded once, when asked). */
  get data(): string {
    if (this.decoded !== undefined) return this.decoded;
    const v = this.values;
    let text = this.used === 0 ? '' : this.bytes.toString('utf8', v[0], v[1]);
    for (let i = 2; i < this.used; i += 2) text += '\n' + this.bytes.toString('utf8', v[i], v[i + 1]);
    return (this.decoded = text);
  }

  /** Whether the data is exactly these bytes, without decoding it. */
  dataIs(bytes: Buffer): boolean {
    const v = this.values;
    if (this.used !== 2) return this.used > 2 && this.data === bytes.toString();
    return v[1] - v[0] === bytes.length && this.bytes.compare(bytes, 0, bytes.length, v[0], v[1]) === 0;
  }

  /** Where `marker` first occurs in the event's bytes at or after `from` (offsets in raw), or -1. */
  find(marker: Marker, from = 0): number {
    const at = marker.in(this.bytes, this.start + from, this.end);
    return at === -1 ? -1 : at - this.start;
  }

  /** Whether the event's bytes contain `marker`: a cheap test before reading the data. */
  includes(marker: Marker): boolean {
    return marker.in(this.bytes, this.start, this.end) !== -1;
  }

  /** The byte at offset i of raw (undefined past its end). */
  byteAt(i: number): number | undefined {
    return i < this.end - this.start ? this.bytes[this.start + i] : undefined;
  }
}

/** An event as an estimate reads it again: its name and its data, decoded. */
export interface DecodedEvent {
  event: string;
  data: string;
}

/**
 * Every dispatched event of a stream, decoded, from the chunks it came in: what an estimate reads
 * once the stream is over. While the stream runs nothing of its events is kept but the chunks
 * themselves: what a stream holds is copied by every young-generation collection until it ends.
 */
export function eventsOf(chunks: readonly Buffer[]): DecodedEvent[] {
  const out: DecodedEvent[] = [];
  const splitter = new SseSplitter((ev) => {
    out.push({ event: ev.event, data: ev.data });
    return true;
  }, false);
  for (const c of chunks) splitter.push(c);
  splitter.end();
  return out;
}

/** Where a field's value starts, `p` just past its name: after the colon and one space (no colon: empty). */
function valueAt(bytes: Buffer, p: number, eol: number): number {
  if (p === eol) return eol;
  return bytes[p + 1] === SPACE && p + 1 < eol ? p + 2 : p + 1;
}

/** Whether the line [p, eol) is this field: its name (first byte checked by the caller), then a colon or the line's end. */
function isField(bytes: Buffer, p: number, eol: number, field: Buffer): boolean {
  const after = p + field.length;
  if (after > eol || (after < eol && bytes[after] !== COLON)) return false;
  for (let i = 1; i < field.length; i++) if (bytes[p + i] !== field[i]) return false;
  return true;
}

/**
 * Reads a stream chunk by chunk and shows `visit` each dispatched event once it is complete.
 * Without `cuts`, every chunk goes out at once as it came and visit's answer is ignored; with
 * `cuts`, an event goes out once complete, unless visit answered false: then its bytes are cut out.
 */
export class SseSplitter {
  /** The current event's bytes from earlier chunks (views, copied only when the event completes). */
  private held: Buffer[] = [];
  /** Nothing since the last line end: a line end now is a blank line. */
  private lineEmpty = true;
  /** The last byte was a CR: an LF now is the rest of its CRLF. */
  private afterCr = false;
  /** The last chunk ended with the CR that completed an event: an LF next is that event's, and cut with it. */
  private lfOf: 'none' | 'kept' | 'cut' = 'none';
  /** A CR ended a line of the current event (most streams have none: their lines are found by LF alone). */
  private crs = false;
  /** Each event in turn (see SseEvent). */
  private readonly current = new SseEvent();
  /** No event seen yet: a byte order mark may start the stream. */
  private first = true;
  // The next LF and CR in the current chunk at or after where the scan is (-1: none left).
  private lf = -1;
  private cr = -1;

  constructor(private readonly visit: (ev: SseEvent) => boolean, private readonly cuts: boolean) {}

  /** The bytes to send the client for this chunk: the chunk itself, views of it, or nothing. */
  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    let start = 0; // where the current event starts in this chunk
    let sent = 0; // the bytes before this were sent or cut
    if (this.lfOf !== 'none') {
      if (chunk[0] === LF) {
        start = 1;
        if (this.lfOf === 'cut') sent = 1;
        this.afterCr = false;
      }
      this.lfOf = 'none';
    }
    let out: Buffer[] | undefined;
    this.lf = chunk.indexOf(LF, start);
    this.cr = chunk.indexOf(CR, start);
    for (let end = this.scan(chunk, start); end !== -1; end = this.scan(chunk, start)) {
      if (chunk[end - 1] === CR && chunk[end] === LF) {
        end++;
        this.afterCr = false;
      }
      let copy: Buffer | undefined;
      let ev: SseEvent;
      if (this.held.length === 0) ev = this.event(chunk, start, end);
      else {
        this.held.push(chunk.subarray(start, end));
        copy = Buffer.concat(this.held);
        this.held = [];
        ev = this.event(copy, 0, copy.length);
      }
      const keep = !ev.dispatched || this.visit(ev) || !this.cuts;
      if (this.cuts && copy) {
        // Its first bytes were held back: it goes out whole from the copy, or not at all.
        if (keep) (out ??= []).push(copy);
        sent = end;
      } else if (!keep) {
        if (start > sent) (out ??= []).push(chunk.subarray(sent, start));
        sent = end;
      }
      if (end === chunk.length && chunk[end - 1] === CR) this.lfOf = keep ? 'kept' : 'cut';
      start = end;
    }
    if (start < chunk.length) this.held.push(chunk.subarray(start));
    if (!this.cuts) return chunk;
    if (out === undefined) return sent === 0 && start === chunk.length ? chunk : chunk.subarray(sent, start);
    if (start > sent) out.push(chunk.subarray(sent, start));
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  private event(bytes: Buffer, start: number, end: number): SseEvent {
    // A byte order mark at the start of the stream is not part of its first field (§9.2.6).
    const bom = this.first && end - start >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf;
    const ev = this.current.read(bytes, start, end, bom, this.crs);
    this.first = false;
    this.crs = false;
    return ev;
  }

  /**
   * Finds the end of the blank line that ends an event, from `p`: the index after its CR or LF,
   * or -1 when the chunk ends first. Keeps the line state across chunks.
   */
  private scan(chunk: Buffer, p: number): number {
    const n = chunk.length;
    while (p < n) {
      const c = chunk[p];
      if (c === LF) {
        if (this.afterCr) this.afterCr = false; // the LF of a CRLF
        else if (this.lineEmpty) return p + 1;
        else this.lineEmpty = true;
        p++;
      } else if (c === CR) {
        this.afterCr = true;
        this.crs = true;
        if (this.lineEmpty) return p + 1;
        this.lineEmpty = true;
        p++;
      } else {
        this.afterCr = false;
        this.lineEmpty = false;
        p = this.lineEnd(chunk, p + 1);
      }
    }
    return -1;
  }

  /** The next CR or LF at or after p, or the chunk's length (each found once per chunk by memchr). */
  private lineEnd(chunk: Buffer, p: number): number {
    if (this.lf !== -1 && this.lf < p) this.lf = chunk.indexOf(LF, p);
    if (this.cr !== -1 && this.cr < p) this.cr = chunk.indexOf(CR, p);
    const lf = this.lf === -1 ? chunk.length : this.lf;
    return this.cr === -1 || lf < this.cr ? lf : this.cr;
  }

  /**
   * The rest once the upstream finished: an event without its terminating blank line. The spec
   * discards it; it is shown to visit all the same, since a usage report in it is the provider's
   * own figure (a cut one does not parse), and sent unless cut.
   */
  end(): Buffer {
    if (this.held.length === 0) return EMPTY;
    const raw = Buffer.concat(this.held);
    this.held = [];
    const ev = this.event(raw, 0, raw.length);
    const keep = !ev.dispatched || this.visit(ev);
    return this.cuts && keep ? raw : EMPTY;
  }
}
