// Splits a server-sent event stream into events where its bytes arrive, without decoding it
// (WHATWG HTML §9.2.6: an event ends at a blank line; a line ends in LF, CRLF or CR). The bytes go
// to the client as the upstream sent them; a tracker sees each event's name and decodes the data
// only of the few events it reads. CR and LF are ASCII, never part of a multi-byte UTF-8
// character, so cutting at them never splits a character.

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const COLON = 0x3a;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const DATA = Buffer.from('data');
const EVENT = Buffer.from('event');
const EMPTY = Buffer.alloc(0);

/** One event: a view of its bytes, its name, and its data decoded on demand. */
export class SseEvent {
  /** The `event:` field, or "message". */
  readonly event: string = 'message';
  // The byte ranges of the data lines' values in `raw`: [start, end, start, end, …].
  private readonly values: number[] = [];
  private decoded: string | undefined;

  constructor(
    /** The event's bytes as they came, including the blank line that ended it (as far as it arrived). */
    readonly raw: Buffer,
    from: number,
  ) {
    const n = raw.length;
    const crs = raw.includes(CR);
    let name: [number, number] | undefined;
    for (let p = from; p < n;) {
      let end = raw.indexOf(LF, p);
      if (end === -1) end = n;
      if (crs) {
        const cr = raw.indexOf(CR, p);
        if (cr !== -1 && cr < end) end = cr;
      }
      if (end === p) break; // the blank line
      const c = raw[p];
      if (c === 0x64 && isField(raw, p, end, DATA)) this.values.push(valueOf(raw, p, end), end);
      else if (c === 0x65 && isField(raw, p, end, EVENT)) name = [valueOf(raw, p, end), end];
      p = end + (raw[end] === CR && raw[end + 1] === LF ? 2 : 1);
    }
    if (name && name[1] > name[0]) this.event = raw.toString('utf8', name[0], name[1]);
  }

  /** Whether it has a data field: an event without one is not dispatched (§9.2.6). */
  get dispatched(): boolean {
    return this.values.length > 0;
  }

  /** The `data:` lines joined with "\n" (decoded once, when asked). */
  get data(): string {
    if (this.decoded !== undefined) return this.decoded;
    const v = this.values;
    let text = v.length === 0 ? '' : this.raw.toString('utf8', v[0], v[1]);
    for (let i = 2; i < v.length; i += 2) text += '\n' + this.raw.toString('utf8', v[i], v[i + 1]);
    return (this.decoded = text);
  }

  /** Whether the data is exactly these bytes, without decoding it. */
  dataIs(bytes: Buffer): boolean {
    const v = this.values;
    if (v.length !== 2) return v.length > 2 && this.data === bytes.toString();
    return v[1] - v[0] === bytes.length && this.raw.compare(bytes, 0, bytes.length, v[0], v[1]) === 0;
  }

  /** Whether the event's bytes contain `marker`: a cheap test before reading the data. */
  includes(marker: Buffer): boolean {
    return this.raw.includes(marker);
  }
}

/** Where the value of a field's line [p, end) starts: after its colon and one space (none: empty). */
function valueOf(raw: Buffer, p: number, end: number): number {
  const colon = raw.indexOf(COLON, p);
  if (colon === -1 || colon >= end) return end;
  return colon + 1 < end && raw[colon + 1] === SPACE ? colon + 2 : colon + 1;
}

/** Whether the line [p, end) is this field: its name, then a colon or the line's end. */
function isField(raw: Buffer, p: number, end: number, field: Buffer): boolean {
  const after = p + field.length;
  if (after > end || (after < end && raw[after] !== COLON)) return false;
  return raw.compare(field, 0, field.length, p, after) === 0;
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
  private first = true;
  /** Where the next CR in the current chunk is (-1: none). */
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
    const out: Buffer[] = [];
    this.cr = chunk.indexOf(CR, start);
    for (let end = this.scan(chunk, start); end !== -1; end = this.scan(chunk, start)) {
      if (chunk[end - 1] === CR && chunk[end] === LF) {
        end++;
        this.afterCr = false;
      }
      const own = chunk.subarray(start, end);
      const raw = this.held.length === 0 ? own : Buffer.concat([...this.held, own]);
      this.held = [];
      const ev = new SseEvent(raw, this.bomAt(raw));
      const keep = !ev.dispatched || this.visit(ev) || !this.cuts;
      if (this.cuts && raw !== own) {
        // Its first bytes were held back: it goes out whole from the copy, or not at all.
        if (keep) out.push(raw);
        sent = end;
      } else if (!keep) {
        if (start > sent) out.push(chunk.subarray(sent, start));
        sent = end;
      }
      if (end === chunk.length && chunk[end - 1] === CR) this.lfOf = keep ? 'kept' : 'cut';
      start = end;
    }
    if (start < chunk.length) this.held.push(chunk.subarray(start));
    if (!this.cuts) return chunk;
    if (start > sent) out.push(chunk.subarray(sent, start));
    return out.length === 0 ? EMPTY : out.length === 1 ? out[0] : Buffer.concat(out);
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

  /** The next CR or LF at or after p, or the chunk's length. */
  private lineEnd(chunk: Buffer, p: number): number {
    const lf = chunk.indexOf(LF, p);
    if (this.cr !== -1 && this.cr < p) this.cr = chunk.indexOf(CR, p);
    if (this.cr === -1) return lf === -1 ? chunk.length : lf;
    return lf === -1 || this.cr < lf ? this.cr : lf;
  }

  /** A byte order mark at the start of the stream is not part of its first field (§9.2.6). */
  private bomAt(raw: Buffer): number {
    if (!this.first) return 0;
    this.first = false;
    return raw.length >= 3 && raw.compare(BOM, 0, 3, 0, 3) === 0 ? 3 : 0;
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
    const ev = new SseEvent(raw, this.bomAt(raw));
    const keep = !ev.dispatched || this.visit(ev);
    return this.cuts && keep ? raw : EMPTY;
  }
}
