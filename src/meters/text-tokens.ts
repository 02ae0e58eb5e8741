// Counting the tokens of text, for the estimates of requests whose usage report never came.
// OpenAI's models use the BPE encodings of gpt-tokenizer (pure JS, o200k_base or cl100k_base by
// model); other models count characters / 4. The encodings are large (about 70 MB of memory,
// 200 ms to load), so they load in the background the first time an OpenAI request is priced;
// until then, and if the package cannot be loaded, the estimate falls back to characters / 4.

type Counter = (text: string) => number;
type Encoding = 'o200k_base' | 'cl100k_base';

/** Characters per token where no tokenizer is known (English text averages about 4). */
const CHARS_PER_TOKEN = 4;
/** Text beyond this many characters is extrapolated from the tokens of its first part. */
const EXACT_CHARS = 64 * 1024;

const loaded: Partial<Record<Encoding, Counter>> = {};
const loading: Partial<Record<Encoding, Promise<void>>> = {};

// cl100k_base: GPT-4 (not 4o / 4.1 / 4.5), GPT-3.5 and the embedding models; o200k_base: the rest.
const CL100K = /^(?:gpt-4(?![o.])|gpt-3\.5|text-embedding-)/;

export function encodingOf(model: string): Encoding {
  return CL100K.test(model) ? 'cl100k_base' : 'o200k_base';
}

/** Starts loading the encoding of an OpenAI model; resolves once it is ready (or failed to load). */
export function loadTokenizer(model: string): Promise<void> {
  const enc = encodingOf(model);
  return (loading[enc] ??= (enc === 'o200k_base' ? import('gpt-tokenizer/encoding/o200k_base') : import('gpt-tokenizer/encoding/cl100k_base')).then((m) => {
    // Generated text may contain "<|endoftext|>" as plain characters: count it, do not throw.
    const none = new Set<string>();
    loaded[enc] = (text) => m.countTokens(text, { disallowedSpecial: none });
  }, () => undefined));
}

/** Whether the model's tokenizer is loaded (tests wait for it). */
export function tokenizerReady(model: string): boolean {
  return loaded[encodingOf(model)] !== undefined;
}

const byChars: Counter = (text) => Math.ceil(text.length / CHARS_PER_TOKEN);

/** The tokens of `text` as `model` counts them: the OpenAI tokenizer when loaded, else characters / 4. */
export function countTokens(text: string, model: string, openaiModel: boolean): number {
  if (text.length === 0) return 0;
  const count = (openaiModel ? loaded[encodingOf(model)] : undefined) ?? byChars;
  if (text.length <= EXACT_CHARS) return count(text);
  // Bounded work on the event loop: a long text is counted by the ratio of its first part.
  return Math.ceil((count(text.slice(0, EXACT_CHARS)) * text.length) / EXACT_CHARS);
}
