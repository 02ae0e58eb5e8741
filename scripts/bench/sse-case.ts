// sse: token-metered streams. POST /v1/chat/completions through the gateway's ready-made OpenAI
// route (key, rate limits, a reservation from prepaid credits, the upstream asked for usage, the
// usage chunk the client did not ask for taken out, the reservation settled to the tokens the
// provider reported) against the bare proxy passing the same stream on. The fake upstream
// (chat-stream.ts) writes 20 chunk events and a usage chunk back to back, so what is measured is
// the gateway's work per stream, not a model's pace. wrk compares every body with the one
// expected: a stream counts only when it arrived whole. Issue 8's target: ≥ 0.6 of the bare
// proxy's streams/s.
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkBooks } from './books.ts';
import { chatStream, expectedBody, MODEL, MODEL_PRICE, requestBody } from './chat-stream.ts';
import { profileFlags, type BenchContext } from './context.ts';
import { profileReport } from './cpu-profile.ts';
import { startGateway } from './gateway.ts';
import { forkServer, stop } from './processes.ts';
import { alternate, verdict } from './rounds.ts';

/** Chunk events per stream (the upstream is started with it). */
export const SSE_EVENTS = 20;
const ROUTE = '/v1/chat/completions';
const CONNECTIONS = 50;
const MIN_RATIO = 0.6;

export async function sseCase(ctx: BenchContext): Promise<string[]> {
  const stream = chatStream(SSE_EVENTS);
  console.log(`\nsse: POST ${ROUTE}, ${stream.events} chunk events + usage + [DONE] per stream, back to back, ` +
    `${stream.costMicros} µ$ a stream from prepaid credits, ${CONNECTIONS} connections`);
  const dir = join(ctx.dir, 'sse');
  const bare = await forkServer('bare proxy', new URL('./bare-proxy.ts', import.meta.url), { UPSTREAM_URL: ctx.upstreamUrl }, profileFlags(ctx, 'sse-bare'));
  const gateway = await startGateway({
    name: 'gateway', dir, entry: ctx.entry, accounts: 1, nodeFlags: profileFlags(ctx, 'sse-gateway'),
    config: { routes: [{ path: '/', upstream: ctx.upstreamUrl }], prices: { [MODEL]: MODEL_PRICE } },
    env: { OPENAI_API_KEY: 'sk-bench', OPENAI_BASE_URL: `${ctx.upstreamUrl}/v1` },
  });
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const bodyFile = file('request.json', requestBody(stream));
  const { a, b, ratio } = await alternate(
    {
      name: 'bare proxy', pid: bare.child.pid,
      load: { url: bare.url + ROUTE, keysFile: gateway.keysFile, bodyFile, expectFile: file('bare.sse', expectedBody(stream, 'direct')) },
    },
    {
      name: 'gateway', pid: gateway.pid,
      load: { url: gateway.url + ROUTE, keysFile: gateway.keysFile, bodyFile, expectFile: file('gateway.sse', expectedBody(stream, 'gateway')) },
    },
    { ...ctx, connections: CONNECTIONS, unit: 'stream' },
  );
  verdict('gateway / bare proxy streams/s (median of the rounds\' ratios)', ratio.toFixed(3), `≥ ${MIN_RATIO}`, ratio >= MIN_RATIO);
  console.log(`  gateway CPU per stream: ${b.median.cpuUs.toFixed(1)} µs, bare proxy ${a.median.cpuUs.toFixed(1)} µs ` +
    `(+${(b.median.cpuUs - a.median.cpuUs).toFixed(1)} µs; each server process alone, the upstream excluded)`);

  await gateway.stop();
  await stop(bare.child);
  const inFlight = CONNECTIONS * b.runs;
  const problems = [
    ...a.failures, ...b.failures,
    ...checkBooks(gateway.books(), { counted: b.responses, inFlight, grantedMicros: gateway.grantedMicros }),
    ...checkSettled(gateway.databasePath, stream.costMicros, b.responses, inFlight),
  ];
  if (ctx.profileDir) {
    console.log(profileReport(ctx.profileDir, 'stream', { dir: 'sse-bare', handled: a.responses }, { dir: 'sse-gateway', handled: b.responses }));
  }
  return problems;
}

/**
 * Every stream wrk received whole was settled from the provider's usage report, at exactly its
 * tokens' cost: no estimate. Streams cut by wrk's stop at the end of a run (at most one per
 * connection) are told apart and allowed: the client left, so an estimate or no charge is right.
 */
function checkSettled(databasePath: string, costMicros: number, counted: number, inFlight: number): string[] {
  const db = new Database(databasePath, { readonly: true });
  let rows: { exact: number; estimated: number; other: number };
  try {
    rows = db.prepare(`SELECT coalesce(sum(estimated = 0 AND price_micros = @cost), 0) AS exact,
      coalesce(sum(estimated != 0), 0) AS estimated, coalesce(sum(estimated = 0 AND price_micros != @cost), 0) AS other
      FROM usage`).get({ cost: costMicros }) as typeof rows;
  } finally {
    db.close();
  }
  const { exact, estimated, other } = rows;
  const ok = exact >= counted && estimated + other <= inFlight;
  console.log(`  settled: ${exact} streams at exactly ${costMicros} µ$ from the provider's usage (${counted} received whole); ` +
    `cut when a run stopped: ${estimated} estimated, ${other} at another price${ok ? '' : '  MISMATCH'}`);
  return ok ? [] : [`${exact} streams settled exactly for ${counted} received whole; ${estimated} estimated and ${other} otherwise priced (at most ${inFlight} in flight)`];
}
