// Splits a server-sent event stream into whole events as bytes arrive (WHATWG HTML §9.2: events
// end at a blank line; lines end in LF, CRLF or CR). Each event keeps its raw text, so the
// gateway forwards it byte for byte or drops it whole.

export interface SseEvent {
  /** The event's text including its terminating blank line. */
  raw: string;
  /** The `event:` field, or "message". */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
}

const BOUNDARY = /\r\n\r\n|\n\n|\r\r/g;

export class SseSplitter {
  private readonly decoder = new TextDecoder();
  private pending = '';

  /** The events completed by this chunk. */
  push(chunk: Uint8Array): SseEvent[] {
    this.pending += this.decoder.decode(chunk, { stream: true });
    const events: SseEvent[] = [];
    let start = 0;
    BOUNDARY.lastIndex = 0;
    for (let m = BOUNDARY.exec(this.pending); m !== null; m = BOUNDARY.exec(this.pending)) {
      const end = m.index + m[0].length;
      events.push(parseEvent(this.pending.slice(start, end)));
      start = end;
    }
    this.pending = this.pending.slice(start);
    return events;
  }

  /** Whatever arrived after the last complete event (a stream cut mid-event). */
  rest(): string {
    return this.pending + this.decoder.decode();
  }
}

function parseEvent(raw: string): SseEvent {
  let event = 'message';
  let data: string | undefined;
  for (const line of raw.split(/\r\n|\n|\r/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data = data === undefined ? value : `${data}\n${value}`;
  }
  return { raw, event, data: data ?? '' };
}
