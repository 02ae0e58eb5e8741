// The streaming case: an OpenAI chat stream (chat-stream.ts) loaded directly, through the bare
// proxy and through the gateway's ready-made /v1/chat/completions route, which reads the body,
// reserves credits, asks the upstream for usage, parses every event, hides the usage chunk the
// client did not ask for and settles the reservation to the tokens reported.
// A stream counts only when it arrives whole: every response body is compared with the expected one.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chatStream, expectedBody, requestBody, type ChatStream } from './chat-stream.ts';
import { profileReport } from './cpu-profile.ts';
import { startGateway, type AiUsage } from './gateway.ts';
import { measure, printTable, summarize, type Row, type Target } from './load.ts';
import { forkServer, stop } from './processes.ts';

const ROUTE = '/v1/chat/completions';
// Ample for every reservation of a long run: one stream reserves a few hundred micro-dollars
// and gives all but its cost back when it ends.
const CREDITS_MICROS = 1_000_000_000;

export interface SseCaseOptions {
  dir: string;
  upstreamUrl: string;
  upstreamPid: number | undefined;
  /** The gateway bundle. */
  entry: string;
  /** Chunk events per stream; the upstream child was started with the same number. */
  events: number;
  delayMs: number;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  /** Node flags for a child's CPU profile, by profile directory name. */
  profileFlags(name: string): string[];
  profileDir: string | undefined;
}

/** Runs the case and prints its table; false when a stream, a usage row or the credits were wrong. */
export async function runSseCase(o: SseCaseOptions): Promise<boolean> {
  const stream = chatStream(o.events);
  const dir = join(o.dir, 'sse');
  mkdirSync(dir);
  const bare = await forkServer('bare proxy (sse)', new URL('./bare-proxy.ts', import.meta.url), { UPSTREAM_URL: o.upstreamUrl }, o.profileFlags('sse-bare'));
  const gateway = await startGateway({
    dir, upstreamUrl: o.upstreamUrl, entry: o.entry, nodeFlags: o.profileFlags('sse-gateway'), ai: { creditsMicros: CREDITS_MICROS },
  });
  const json = { 'content-type': 'application/json' };
  const body = requestBody(stream);
  const direct = { body, expectBody: expectedBody(stream, 'direct', false) };
  const targets: Target[] = [
    { name: 'upstream (direct)', url: o.upstreamUrl + ROUTE, headers: json, pid: o.upstreamPid, post: direct },
    { name: 'bare proxy', url: bare.url + ROUTE, headers: json, pid: bare.child.pid, post: direct },
    {
      name: 'gateway', url: gateway.url + ROUTE, headers: { ...json, authorization: `Bearer ${gateway.key}` }, pid: gateway.pid,
      post: { body, expectBody: expectedBody(stream, 'gateway', false) },
    },
  ];

  const perStream = stream.events + 1; // the chunks and [DONE]
  console.log();
  console.log(`streaming case: POST ${ROUTE}, ${stream.events} chunk events + [DONE] per stream, ` +
    `${o.delayMs > 0 ? `${o.delayMs} ms apart` : 'written back to back'}; model ${stream.completionTokens} tokens`);
  const samples = await checkSamples(stream, targets);
  const tallies = await measure(targets, { ...o, unit: 'streams' });

  const exitCode = await gateway.stop();
  await stop(bare.child); // a clean exit writes its CPU profile
  if (exitCode !== 0) throw new Error(`gateway (sse) exited with ${exitCode} on SIGTERM\n${gateway.output()}`);

  const report = targets.map((t) => summarize(t.name, tallies.get(t)!));
  printSseTable(report, perStream);
  const [, bareRow, gatewayRow] = report;
  const ratio = gatewayRow.rps / bareRow.rps;
  const addedCpu = gatewayRow.cpuUs - bareRow.cpuUs;
  const addedP50 = gatewayRow.p50 - bareRow.p50;
  console.log();
  console.log(`gateway / bare proxy streams/s: ${ratio.toFixed(3)} (${(ratio * 100).toFixed(1)}%)`);
  console.log(`gateway CPU per stream: ${gatewayRow.cpuUs.toFixed(1)} µs vs bare ${bareRow.cpuUs.toFixed(1)} µs ` +
    `(+${addedCpu.toFixed(1)} µs, +${(addedCpu / perStream).toFixed(2)} µs per event; each server process alone, upstream excluded)`);
  console.log(`added p50 latency (whole stream): ${addedP50 >= 0 ? '+' : ''}${addedP50.toFixed(3)} ms`);

  // As in the plain case: every gateway response leaves a usage row, and up to one stream per
  // connection was cut when a run ended (billed as an estimate, never counted by autocannon).
  const gatewayTally = tallies.get(targets[2])!;
  const inFlight = o.connections * gatewayTally.runs;
  const counted = gatewayTally.handled + samples;
  const rows = gateway.usageRows(ROUTE);
  const extra = rows - counted;
  const rowsOk = extra >= 0 && extra <= inFlight;
  console.log(`usage rows: ${rows}; gateway streams counted: ${counted} (warm-up and ${samples} samples included); ` +
    `difference ${extra} (expected 0…${inFlight})${rowsOk ? '' : '  MISMATCH'}`);
  const creditsOk = checkCredits(gateway.aiUsage(ROUTE), stream, counted, inFlight);

  if (o.profileDir) {
    console.log(profileReport(o.profileDir, 'stream', { dir: 'sse-bare', handled: tallies.get(targets[1])!.handled },
      { dir: 'sse-gateway', handled: counted }));
  }

  const failed = report.filter((r) => r.errors > 0 || r.non2xx > 0 || r.mismatches > 0);
  for (const r of failed) {
    console.error(`bench: streaming, ${r.name} saw ${r.errors} errors, ${r.non2xx} non-2xx responses and ${r.mismatches} incomplete or altered streams`);
  }
  if (!rowsOk) console.error('bench: streaming, usage rows do not match the streams the gateway gave');
  if (!creditsOk) console.error('bench: streaming, the credits charged do not match the tokens streamed');
  return failed.length === 0 && rowsOk && creditsOk;
}

/**
 * Before the load: one stream per target read whole and compared, and through the gateway once
 * more with include_usage, which must then arrive. Returns the streams the gateway served.
 */
async function checkSamples(stream: ChatStream, targets: Target[]): Promise<number> {
  const gateway = targets[2];
  const cases: [Target, string, string][] = targets.map((t) => [t, t.post!.body, t.post!.expectBody!]);
  cases.push([gateway, requestBody(stream, true), expectedBody(stream, 'gateway', true)]);
  for (const [target, body, expected] of cases) {
    const res = await fetch(target.url, { method: 'POST', headers: target.headers, body });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    if (res.status !== 200 || !type.startsWith('text/event-stream') || text !== expected) {
      throw new Error(`streaming sample from ${target.name}${body.includes('include_usage') ? ' (include_usage)' : ''}: ` +
        `status ${res.status}, ${type}, ${describe(text)}; expected ${describe(expected)}`);
    }
  }
  console.log(`  samples whole: ${describe(gateway.post!.expectBody!)} through the gateway (usage chunk hidden), ` +
    `${describe(expectedBody(stream, 'gateway', true))} when the client asks for usage`);
  return cases.filter(([t]) => t === gateway).length;
}

/** "20 chunks + usage + [DONE]": what a stream's body holds. */
function describe(body: string): string {
  const events = body.split('\n\n').filter((e) => e !== '');
  const data = events.map((e) => e.replace(/^data: /, ''));
  const chunks = data.filter((d) => d.includes('"choices":[{')).length;
  const usage = data.filter((d) => d.includes('"choices":[]')).length;
  const done = data[data.length - 1] === '[DONE]';
  const other = data.length - chunks - usage - (done ? 1 : 0);
  return `${chunks} chunks${usage ? ` + ${usage} usage` : ''}${done ? ' + [DONE]' : ', no [DONE]'}${other ? ` + ${other} other` : ''}`;
}

/**
 * Money adds up: every stream that ended whole cost exactly its tokens, one cut mid-stream an
 * estimate, one whose client left before the upstream answered nothing (499); and the balance is
 * what was granted less what the usage rows say was charged.
 */
function checkCredits(usage: AiUsage, stream: ChatStream, counted: number, inFlight: number): boolean {
  let exact = 0;
  let estimated = 0;
  let unanswered = 0;
  let wrong = 0;
  let charged = 0;
  for (const g of usage.groups) {
    charged += g.priceMicros * g.rows;
    if (g.estimated && g.priceMicros > 0) estimated += g.rows;
    else if (g.status === 499 && g.priceMicros === 0) unanswered += g.rows;
    else if (g.status === 200 && g.outputTokens === stream.completionTokens && g.priceMicros === stream.costMicros) exact += g.rows;
    else {
      wrong += g.rows;
      console.log(`  unexpected usage rows: ${JSON.stringify(g)}`);
    }
  }
  const balanceOk = usage.balanceMicros === usage.grantedMicros - charged;
  const exactOk = wrong === 0 && exact >= counted && estimated + unanswered <= inFlight;
  console.log(`credits: ${exact} streams at ${stream.costMicros} µ$ each (${stream.completionTokens} output tokens, exact); ` +
    `cut when a run ended: ${estimated} estimated, ${unanswered} before the upstream answered (free)${wrong ? `; ${wrong} WRONG` : ''}`);
  console.log(`  granted ${usage.grantedMicros} µ$, charged ${charged}, balance ${usage.balanceMicros}${balanceOk ? ' (adds up)' : '  MISMATCH'}`);
  return balanceOk && exactOk;
}

function printSseTable(rows: Row[], perStream: number): void {
  printTable(
    ['target', 'streams/s', 'events/s', 'p50 ms', 'p99 ms', 'CPU µs/stream', '2xx', 'incomplete', 'errors', 'non-2xx'],
    rows.map((r) => [
      r.name, r.rps.toFixed(0), (r.rps * perStream).toFixed(0), r.p50.toFixed(3), r.p99.toFixed(3), r.cpuUs.toFixed(1),
      String(r.ok), String(r.mismatches), String(r.errors), String(r.non2xx),
    ]),
  );
}
