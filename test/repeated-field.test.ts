// A JSON body's repeated top-level field: JSON.parse keeps the last, other parsers the first or
// refuse, so the gateway finds repeats on the bytes before it prices anything.
import { describe, expect, it } from 'vitest';
import { repeatedField } from '../src/json.ts';

const b = (s: string) => Buffer.from(s);

describe('repeatedField', () => {
  it('names a top-level field given twice, however it is spelled', () => {
    expect(repeatedField(b('{"model":"a","stream":true,"model":"b"}'))).toBe('model');
    expect(repeatedField(b('{ "model" : "a" ,\n "mod\\u0065l": "b" }'))).toBe('model');
    expect(repeatedField(b('{"a":{"x":1},"b":[1,{"a":2}],"a":null}'))).toBe('a');
  });

  it('passes what only looks repeated: nested objects, names inside strings, escaped quotes', () => {
    for (const text of [
      '{"model":"a","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]}',
      '{"model":"a","prompt":"\\"model\\":\\"b\\", {\\"model\\":1}","n":1}',
      '{"a\\\\":1,"a":2,"x":"ends in a backslash \\\\","y":"\\\\\\"","z":[[],{}]}',
      '{"model":"é 世界 😀","text":"{[,]}"}',
      '{}',
    ]) {
      JSON.parse(text); // valid JSON, as the gateway hands it
      expect(repeatedField(b(text)), text).toBeUndefined();
    }
  });

  it('ends on text that is not JSON (an unterminated string) rather than looping', () => {
    expect(repeatedField(b('{"a":1,"a'))).toBeUndefined();
    expect(repeatedField(b('{"a":"\\"'))).toBeUndefined();
  });

  it('agrees with JSON.parse on random objects: none without a repeat, the repeated name with one', () => {
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
    const names = ['model', 'a', 'b\\"', 'c,d', 'e:f', 'é', '{', ']'];
    const value = (depth: number): unknown => {
      const r = Math.random();
      if (depth > 2 || r < 0.3) return pick(['x"y', 1, null, true, '\\', '}']);
      if (r < 0.6) return [value(depth + 1), value(depth + 1)];
      return Object.fromEntries(names.slice(0, 3).map((n) => [n, value(depth + 1)]));
    };
    for (let i = 0; i < 500; i++) {
      const fields = names.filter(() => Math.random() < 0.5).map((n) => `${JSON.stringify(n)}:${JSON.stringify(value(0))}`);
      const text = `{${fields.join(',')}}`;
      expect(repeatedField(b(text)), text).toBeUndefined();
      if (fields.length === 0) continue;
      const again = pick(fields);
      const repeated = `{${[...fields, again].join(',')}}`;
      expect(repeatedField(b(repeated)), repeated).toBe(Object.keys(JSON.parse(`{${again}}`))[0]);
    }
  });
});
