// The byte-level server-sent event splitter: where events end (WHATWG HTML §9.2), which fields the
// trackers get, and that what reaches the client is the upstream's bytes minus the events cut.
import { describe, expect, it } from 'vitest';
import { eventsOf, Marker, SseSplitter, type SseEvent } from '../src/meters/sse.ts';

const b = (s: string) => Buffer.from(s);
type Seen = [name: string, data: string];

/** A splitter that records what it visits and cuts the events `cut` picks. */
function splitter(cuts: boolean, cut: (ev: SseEvent) => boolean = () => false) {
  const seen: Seen[] = [];
  const raws: string[] = [];
  const s = new SseSplitter((ev) => {
    seen.push([ev.event, ev.data]);
    raws.push(ev.raw.toString('latin1'));
    return !cut(ev);
  }, cuts);
  return { s, seen, raws };
}

/** Feeds `input` in pieces ending at `splits`; returns what was forwarded and what was seen. */
function feed(input: Buffer, splits: number[], cuts: boolean, cut?: (ev: SseEvent) => boolean) {
  const { s, seen, raws } = splitter(cuts, cut);
  const out: Buffer[] = [];
  let from = 0;
  for (const at of [...splits, input.length]) {
    out.push(s.push(input.subarray(from, at)));
    from = at;
  }
  out.push(s.end());
  return { out: Buffer.concat(out), seen, raws };
}

describe('SseSplitter: event boundaries', () => {
  it('ends an event at a blank line of every form: LF LF, CR CR, CRLF CRLF and the mixed ones', () => {
    const forms = ['\n\n', '\r\r', '\r\n\r\n', '\n\r\n', '\r\n\n', '\n\r', '\r\r\n', '\r\n\r'];
    const input = forms.map((end, i) => `data: ${i}${end}`).join('') + 'data: last\n\n';
    const { out, seen, raws } = feed(b(input), [], true);
    expect(seen.map(([, data]) => data)).toEqual([...forms.map((_, i) => String(i)), 'last']);
    // Each event owns its terminator whole (a CR's LF too), so an event cut leaves no stray line end.
    expect(raws).toEqual([...forms.map((end, i) => `data: ${i}${end}`), 'data: last\n\n']);
    expect(out.toString()).toBe(input);
  });

  it('a CR ending one chunk and an LF starting the next are one line end: inside an event, and after a cut one', () => {
    const { s, seen } = splitter(true, (ev) => ev.data === 'hide');
    expect(s.push(b('data: a\r')).length).toBe(0);
    expect(seen).toEqual([]);
    // The blank line's CR completes the event; an LF after it, wherever it comes, is still its own.
    expect(s.push(b('\ndata: b\r\n\r')).toString()).toBe('data: a\r\ndata: b\r\n\r');
    expect(s.push(b('\n')).toString()).toBe('\n');
    expect(s.push(b('data: hide\r\n\r')).length).toBe(0); // complete, and cut, before its LF arrives
    expect(s.push(b('\ndata: c\r\n\r\n')).toString()).toBe('data: c\r\n\r\n');
    expect(seen).toEqual([['message', 'a\nb'], ['message', 'hide'], ['message', 'c']]);
    expect(s.end().length).toBe(0);
  });

  it('a CR that ended an event, with no LF after it, leaves the next chunk whole', () => {
    const { out, seen } = feed(b('data: 1\r\rdata: 2\r\r'), [9], true, (ev) => ev.data === '1');
    expect(out.toString()).toBe('data: 2\r\r');
    expect(seen.map(([, data]) => data)).toEqual(['1', '2']);
  });
});

describe('SseSplitter: fields', () => {
  it('reads event and data as the spec says: one leading space stripped, lines joined with LF, no colon means an empty value', () => {
    const { seen } = feed(b('event:e\ndata:x\ndata:  y\ndata\n\nevent\ndata: z\n\nevent: ping\ndata\n\n'), [], false);
    expect(seen).toEqual([['e', 'x\n y\n'], ['message', 'z'], ['ping', '']]);
  });

  it('skips comments, id:, retry: and unknown fields; an event without data is not dispatched, yet forwarded', () => {
    const input = ': keep-alive\n\nid: 7\nretry: 3000\nevent: delta\nfoo: bar\ndata: {"a":1}\n\nid: 8\n\n:only a comment\n\n';
    const { out, seen } = feed(b(input), [], true, () => true); // cut everything it is shown
    expect(seen).toEqual([['delta', '{"a":1}']]);
    expect(out.toString()).toBe(': keep-alive\n\nid: 8\n\n:only a comment\n\n');
  });

  it('ignores a byte order mark at the start of the stream and forwards it', () => {
    const input = '\uFEFFevent: first\ndata: 1\n\n';
    const { out, seen } = feed(b(input), [1, 2], false);
    expect(seen).toEqual([['first', '1']]);
    expect(out.equals(b(input))).toBe(true);
  });

  it('decodes a multi-byte UTF-8 character split between chunks, at any of its bytes', () => {
    const input = b('data: {"text":"héllo € 😀"}\n\n');
    const start = input.indexOf('é');
    for (let at = start; at < input.length - 2; at++) {
      const { out, seen } = feed(input, [at], true);
      expect(seen.map(([, data]) => data)).toEqual(['{"text":"héllo € 😀"}']);
      expect(out.equals(input)).toBe(true);
    }
  });

  it('includes() and dataIs() test an event\'s bytes without decoding them', () => {
    // Asked during the visit: the splitter reads the next event into the same SseEvent.
    const seen: [boolean, boolean][] = [];
    const s = new SseSplitter((ev) => (seen.push([ev.includes(new Marker('"usage": {')), ev.dataIs(b('{"usage":null}'))]), true), false);
    s.push(b('data: {"usage":null}\n\ndata: {"usage": {"x":1}}\n\n'));
    expect(seen).toEqual([[false, true], [true, false]]);
  });
});

describe('eventsOf', () => {
  it('gives back each event\'s name and data as the splitter decoded them, however the stream was split', () => {
    const input = b('data: {"a":1}\n\nevent: x\r\ndata: Grüße\r\ndata:\r\ndata: 世界 😀\r\n\r\n: ping\n\ndata: last\n\n');
    const whole = [{ event: 'message', data: '{"a":1}' }, { event: 'x', data: 'Grüße\n\n世界 😀' }, { event: 'message', data: 'last' }];
    for (let i = 0; i <= input.length; i++) {
      for (let j = i; j <= input.length; j += 7) {
        expect(eventsOf([input.subarray(0, i), input.subarray(i, j), input.subarray(j)]), `split at ${i} and ${j}`).toEqual(whole);
      }
    }
  });
});

describe('Marker', () => {
  it('finds what Buffer.indexOf finds, at every offset and in every range', () => {
    const hay = b('data: {"usage":null,"x":"usagusage\\"usage","usage":{"a":1}} "usage"');
    for (const text of ['"usage"', 'u', 'ge"', '"usage":{', 'usage\\"', '}} "usage"', 'absent']) {
      const m = new Marker(text);
      for (let from = 0; from <= hay.length; from++) {
        for (const end of [hay.length, hay.length - 3, from + text.length + 2]) {
          const want = hay.subarray(0, Math.min(end, hay.length)).indexOf(text, from);
          expect(m.in(hay, from, Math.min(end, hay.length)), `${text} from ${from} to ${end}`).toBe(want);
        }
      }
    }
  });
});

describe('SseSplitter: forwarding', () => {
  it('without cuts, each chunk goes out as it came, the same Buffer, before its event is complete', () => {
    const { s, seen } = splitter(false);
    const first = b('event: a\ndata: 1\n\ndata: {"par');
    expect(s.push(first)).toBe(first);
    const second = b('tial":true}\n\n');
    expect(s.push(second)).toBe(second);
    expect(seen).toEqual([['a', '1'], ['message', '{"partial":true}']]);
    expect(s.end().length).toBe(0);
  });

  it('with cuts, whole events go out as slices of the upstream\'s chunk, a cut one removed at its bytes', () => {
    const { s } = splitter(true, (ev) => ev.data === 'cut');
    const chunk = b('data: 1\n\ndata: 2\n\ndata: cut\n\ndata: 3\n\ndata: 4');
    const out = s.push(chunk);
    expect(out.toString()).toBe('data: 1\n\ndata: 2\n\ndata: 3\n\n');
    const only = b('data: 1\n\ndata: 2\n\n');
    const { s: t } = splitter(true);
    const view = t.push(only);
    // A view of the chunk, not a copy.
    expect(view.buffer).toBe(only.buffer);
    expect(view.byteOffset).toBe(only.byteOffset);
  });

  it('a final event without a terminating blank line is read and forwarded at the end (cut if the tracker says so)', () => {
    for (const tail of ['data: {"usage":1}', 'data: {"usage":1}\n', 'data: {"usage":1}\r']) {
      const kept = feed(b(`data: 0\n\n${tail}`), [3], true);
      expect(kept.seen.map(([, data]) => data)).toEqual(['0', '{"usage":1}']);
      expect(kept.out.toString()).toBe(`data: 0\n\n${tail}`);
      const cut = feed(b(`data: 0\n\n${tail}`), [12], true, (ev) => ev.data.includes('usage'));
      expect(cut.out.toString()).toBe('data: 0\n\n');
      const eager = feed(b(`data: 0\n\n${tail}`), [12], false);
      expect(eager.out.toString()).toBe(`data: 0\n\n${tail}`);
    }
  });

  it('split at every offset, and at every pair of offsets, forwards the input minus the cut events and sees the same events', () => {
    // A realistic stream: named and unnamed events, comments, id and retry lines, every line end,
    // text in several scripts, and the event to cut ending in a CR whose LF may come later.
    const parts = [
      ':ok\n\n',
      'retry: 1500\nid: 1\nevent: message_start\ndata: {"type":"message_start","usage":{"input_tokens":12}}\n\n',
      'event: content_block_delta\r\ndata: {"delta":{"text":"Grüße, 世界 😀"}}\r\n\r\n',
      'data: {"choices":[{"delta":{"content":"€"}}],"usage":null}\r\r',
      'data: {"choices":[],"usage":{"prompt_tokens":3}}\r\n\r\n',
      ': ping\r\n\r\n',
      'event: message_delta\ndata: {"usage":\ndata: {"output_tokens":9}}\n\r\n',
      'data: [DONE]\n\n',
    ];
    const input = b(parts.join(''));
    const hidden = parts[4];
    const cut = (ev: SseEvent) => ev.includes(new Marker('"choices":[]'));
    const expected = b(parts.filter((p) => p !== hidden).join(''));
    for (const cuts of [true, false]) {
      const whole = feed(input, [], cuts, cut);
      expect(whole.seen.map(([name]) => name)).toEqual(['message_start', 'content_block_delta', 'message', 'message', 'message_delta', 'message']);
      expect(whole.seen[1][1]).toBe('{"delta":{"text":"Grüße, 世界 😀"}}');
      expect(whole.out.equals(cuts ? expected : input)).toBe(true);
      for (let i = 0; i <= input.length; i++) {
        const one = feed(input, [i], cuts, cut);
        expect(one.seen, `split at ${i}`).toEqual(whole.seen);
        expect(one.out.equals(whole.out), `split at ${i}`).toBe(true);
        for (let j = i; j <= input.length; j += 7) {
          const two = feed(input, [i, j], cuts, cut);
          expect(two.seen, `split at ${i}, ${j}`).toEqual(whole.seen);
          expect(two.out.equals(whole.out), `split at ${i}, ${j}`).toBe(true);
        }
      }
      const bytes = feed(input, Array.from({ length: input.length }, (_, i) => i), cuts, cut);
      expect(bytes.seen).toEqual(whole.seen);
      expect(bytes.out.equals(whole.out)).toBe(true);
    }
  });
});
