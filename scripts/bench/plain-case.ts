// plain: the paid path. GET / through the gateway is authenticated, passes three rate-limit
// windows, is admitted against the account's prepaid balance (no quota: every request pays the
// route's price) and leaves a usage row; the bare proxy forwards the same requests and does
// nothing else. Issue 8's target: the gateway at ≥ 0.85 of the bare proxy's requests/s.
import { join } from 'node:path';
import { checkBooks } from './books.ts';
import { profileFlags, type BenchContext } from './context.ts';
import { profileReport } from './cpu-profile.ts';
import { startGateway } from './gateway.ts';
import { forkServer, stop } from './processes.ts';
import { alternate, verdict } from './rounds.ts';

const CONNECTIONS = 50;
const PRICE_MICROS = 100;
const MIN_RATIO = 0.85;

export async function plainCase(ctx: BenchContext): Promise<string[]> {
  console.log(`\nplain: GET / at ${PRICE_MICROS} µ$ a request from prepaid credits, one key, ${CONNECTIONS} connections`);
  const bare = await forkServer('bare proxy', new URL('./bare-proxy.ts', import.meta.url), { UPSTREAM_URL: ctx.upstreamUrl }, profileFlags(ctx, 'plain-bare'));
  const gateway = await startGateway({
    name: 'gateway', dir: join(ctx.dir, 'plain'), entry: ctx.entry, accounts: 1, nodeFlags: profileFlags(ctx, 'plain-gateway'),
    config: { routes: [{ path: '/', upstream: ctx.upstreamUrl, priceMicros: PRICE_MICROS }] },
  });
  // The same request bytes to both, key included (the bare proxy passes it on).
  const { a, b, ratio } = await alternate(
    { name: 'bare proxy', pid: bare.child.pid, load: { url: bare.url, keysFile: gateway.keysFile } },
    { name: 'gateway', pid: gateway.pid, load: { url: gateway.url, keysFile: gateway.keysFile } },
    { ...ctx, connections: CONNECTIONS, unit: 'req' },
  );
  verdict('gateway / bare proxy req/s (median of the rounds\' ratios)', ratio.toFixed(3), `≥ ${MIN_RATIO}`, ratio >= MIN_RATIO);
  console.log(`  gateway CPU per request: ${b.median.cpuUs.toFixed(1)} µs, bare proxy ${a.median.cpuUs.toFixed(1)} µs ` +
    `(+${(b.median.cpuUs - a.median.cpuUs).toFixed(1)} µs; each server process alone, the upstream excluded)`);

  await gateway.stop();
  await stop(bare.child); // a clean exit writes its CPU profile
  const problems = [
    ...a.failures, ...b.failures,
    ...checkBooks(gateway.books(), {
      counted: b.responses, inFlight: CONNECTIONS * b.runs, grantedMicros: gateway.grantedMicros, priceMicros: PRICE_MICROS,
    }),
  ];
  if (ctx.profileDir) {
    console.log(profileReport(ctx.profileDir, 'request', { dir: 'plain-bare', handled: a.responses }, { dir: 'plain-gateway', handled: b.responses }));
  }
  return problems;
}
