// accounts: the plain paid load spread over many accounts (BENCH_ACCOUNTS, one key each, picked
// round-robin by load.lua) against the same load from one account, two gateways side by side in
// alternating rounds. What grows with the number of active accounts (key cache, rate-limit
// buckets, balances or leases, quota counters, what a group commit writes) shows as the ratio and
// as the gateway's RSS. Issue 8's targets: ≥ 0.85 of the one-key figure, RSS under 150 MB.
import { join } from 'node:path';
import { checkBooks } from './books.ts';
import { profileFlags, type BenchContext } from './context.ts';
import { startGateway } from './gateway.ts';
import { rssMb } from './processes.ts';
import { alternate, verdict } from './rounds.ts';

const CONNECTIONS = 50;
const PRICE_MICROS = 100;
const MIN_RATIO = 0.85;
const MAX_RSS_MB = 150;

export async function accountsCase(ctx: BenchContext): Promise<string[]> {
  const n = ctx.accounts;
  console.log(`\naccounts: GET / at ${PRICE_MICROS} µ$ a request from prepaid credits, ${n} accounts with one key each against one, ${CONNECTIONS} connections`);
  const config = { routes: [{ path: '/', upstream: ctx.upstreamUrl, priceMicros: PRICE_MICROS }] };
  const one = await startGateway({ name: 'one key', dir: join(ctx.dir, 'accounts-1'), entry: ctx.entry, accounts: 1, config });
  const seeding = performance.now();
  const many = await startGateway({
    name: `${n} keys`, dir: join(ctx.dir, `accounts-${n}`), entry: ctx.entry, accounts: n, config, nodeFlags: profileFlags(ctx, 'accounts-many'),
  });
  console.log(`  seeded ${n} accounts, keys and grants and started the gateway in ${((performance.now() - seeding) / 1000).toFixed(1)} s`);

  // The warm-up sends every key once (and a connection's worth more, so the last keys' answers are
  // in): what is measured is the steady state of a gateway serving that many active accounts. A
  // key the process has not seen costs a lookup in the file once per process, a cost of starting
  // up rather than of serving.
  const { a, b, ratio } = await alternate(
    { name: one.name, pid: one.pid, load: { url: one.url, keysFile: one.keysFile } },
    { name: many.name, pid: many.pid, load: { url: many.url, keysFile: many.keysFile }, warmupResponses: n + CONNECTIONS },
    { ...ctx, connections: CONNECTIONS, unit: 'req' },
  );
  verdict(`${n} keys / one key req/s (median of the rounds' ratios)`, ratio.toFixed(3), `≥ ${MIN_RATIO}`, ratio >= MIN_RATIO);
  console.log(`  CPU per request: ${b.median.cpuUs.toFixed(1)} µs with ${n} keys, ${a.median.cpuUs.toFixed(1)} µs with one`);
  const mb = (pid: number | undefined, field?: 'VmHWM') => (rssMb(pid, field) ?? NaN).toFixed(0);
  const rss = rssMb(many.pid) ?? NaN;
  verdict(`RSS of the gateway with ${n} accounts active`, `${rss.toFixed(0)} MB, peak ${mb(many.pid, 'VmHWM')} (one key: ${mb(one.pid)}, peak ${mb(one.pid, 'VmHWM')})`,
    `< ${MAX_RSS_MB} MB`, rss < MAX_RSS_MB, 'ABOVE TARGET');

  const problems = [...a.failures, ...b.failures];
  for (const [gateway, side] of [[one, a], [many, b]] as const) {
    await gateway.stop();
    console.log(`  ${gateway.name}:`);
    problems.push(...checkBooks(gateway.books(), {
      counted: side.responses, inFlight: CONNECTIONS * side.runs, grantedMicros: gateway.grantedMicros, priceMicros: PRICE_MICROS,
    }).map((p) => `${gateway.name}: ${p}`));
  }
  return problems;
}
