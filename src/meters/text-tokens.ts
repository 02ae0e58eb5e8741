// Counting the tokens of text, for the estimates of requests whose usage report never came.
// OpenAI's models use the BPE encodings of gpt-tokenizer (pure JS, o200k_base or cl100k_base by
// model); other models count characters / 4. An encoding takes about 400 ms and 20 MB of heap to
// load, so it lives in a worker thread: loaded on the event loop it stopped every request for
// 212 ms, and its objects lengthened every full collection of the gateway's heap (8 µs a metered
// stream in the bench's profile). It loads the first time an OpenAI request is priced; until then,
// and if it cannot load, the estimate falls back to characters / 4. Where no worker can load the
// package (the single executable), it loads here, in the background.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

type Encoding = 'o200k_base' | 'cl100k_base';
type Counter = (text: string) => number;

/** Characters per token where no tokenizer is known (English text averages about 4). */
const CHARS_PER_TOKEN = 4;
/** Text beyond this many characters is extrapolated from the tokens of its first part. */
const EXACT_CHARS = 64 * 1024;

// cl100k_base: GPT-4 (not 4o / 4.1 / 4.5), GPT-3.5 and the embedding models; o200k_base: the rest.
const CL100K = /^(?:gpt-4(?![o.])|gpt-3\.5|text-embedding-)/;

export function encodingOf(model: string): Encoding {
  return CL100K.test(model) ? 'cl100k_base' : 'o200k_base';
}

// CommonJS in the worker: `require` resolves nothing relative to it, so the modules' paths are given.
// Generated text may contain "<|endoftext|>" as plain characters: it is counted, never thrown at.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const loaded = {};
const none = new Set();
parentPort.on('message', ({ id, encoding, texts }) => {
  try {
    const m = (loaded[encoding] ??= require(workerData.modules[encoding]));
    parentPort.postMessage({ id, counts: texts.map((t) => m.countTokens(t, { disallowedSpecial: none })) });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message) });
  }
});
`;

interface Answer { id: number; counts?: number[]; error?: string }

/** The worker and what it was asked, or the encodings loaded on this thread where there is none. */
let worker: Worker | undefined | null;
const asked = new Map<number, (a: Answer) => void>();
let nextId = 0;
const ready: Partial<Record<Encoding, boolean>> = {};
const loading: Partial<Record<Encoding, Promise<void>>> = {};
const here: Partial<Record<Encoding, Counter>> = {};

function theWorker(): Worker | null {
  if (worker !== undefined) return worker;
  try {
    const require = createRequire(import.meta.url);
    const modules = { o200k_base: require.resolve('gpt-tokenizer/encoding/o200k_base'), cl100k_base: require.resolve('gpt-tokenizer/encoding/cl100k_base') };
    worker = new Worker(WORKER, { eval: true, workerData: { modules } });
  } catch {
    return (worker = null);
  }
  worker.unref();
  worker.on('message', (a: Answer) => {
    const tell = asked.get(a.id);
    asked.delete(a.id);
    tell?.(a);
  });
  // A worker that died counts nothing more: estimates fall back to characters / 4.
  worker.on('error', () => {
    worker = null;
    for (const tell of asked.values()) tell({ id: -1, error: 'the tokenizer worker stopped' });
    asked.clear();
  });
  return worker;
}

function ask(w: Worker, encoding: Encoding, texts: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    asked.set(id, (a) => (a.counts ? resolve(a.counts) : reject(new Error(a.error))));
    w.postMessage({ id, encoding, texts });
  });
}

/** Starts loading the encoding of an OpenAI model; resolves once it is ready (or failed to load). */
export function loadTokenizer(model: string): Promise<void> {
  const encoding = encodingOf(model);
  return (loading[encoding] ??= (async () => {
    const w = theWorker();
    if (w) {
      await ask(w, encoding, []);
    } else {
      const m = await (encoding === 'o200k_base' ? import('gpt-tokenizer/encoding/o200k_base') : import('gpt-tokenizer/encoding/cl100k_base'));
      const none = new Set<string>();
      here[encoding] = (text) => m.countTokens(text, { disallowedSpecial: none });
    }
    ready[encoding] = true;
  })().catch(() => undefined));
}

/** Whether the model's tokenizer is loaded (tests wait for it). */
export function tokenizerReady(model: string): boolean {
  return ready[encodingOf(model)] === true;
}

/** A long text is counted by the ratio of its first part: bounded work, and a bounded message. */
const head = (text: string) => (text.length <= EXACT_CHARS ? text : text.slice(0, EXACT_CHARS));
const scale = (tokens: number, text: string) => (text.length <= EXACT_CHARS ? tokens : Math.ceil((tokens * text.length) / EXACT_CHARS));
const byChars = (text: string) => Math.ceil(text.length / CHARS_PER_TOKEN);

/**
 * The tokens of each text as `model` counts them: the OpenAI tokenizer once loaded (an answer
 * from its worker, later), else characters / 4 (at once).
 */
export function countTokens(texts: string[], model: string, openaiModel: boolean): number[] | Promise<number[]> {
  const encoding = encodingOf(model);
  if (!openaiModel || !ready[encoding]) return texts.map(byChars);
  const counter = here[encoding];
  if (counter) return texts.map((t) => scale(t.length === 0 ? 0 : counter(head(t)), t));
  const w = theWorker();
  if (!w) return texts.map(byChars);
  return ask(w, encoding, texts.map(head)).then((counts) => counts.map((n, i) => scale(n, texts[i])), () => texts.map(byChars));
}
