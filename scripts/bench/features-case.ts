// features: what the access log and notifications cost the plain paid path, each as the gateway
// against itself with the feature on, in alternating rounds: a gateway with ACCESS_LOG=off and no
// notifications, the same with every request logged (the default), the same with notifications
// configured (nothing crosses a threshold). Issue 10's target: no change with notifications.
import { join } from 'node:path';
import { checkBooks } from './books.ts';
import type { BenchContext } from './context.ts';
import { startGateway, type Gateway } from './gateway.ts';
import { alternate, type SideResult } from './rounds.ts';

const CONNECTIONS = 50;
const PRICE_MICROS = 100;

export async function featuresCase(ctx: BenchContext): Promise<string[]> {
  console.log(`\nfeatures: the plain paid path (GET / at ${PRICE_MICROS} µ$, one key, ${CONNECTIONS} connections) without and with each feature`);
  const config = { routes: [{ path: '/', upstream: ctx.upstreamUrl, priceMicros: PRICE_MICROS }] };
  const start = (name: string, env: Record<string, string>, notifications: boolean) =>
    startGateway({ name, dir: join(ctx.dir, `features-${name.replaceAll(' ', '-')}`), entry: ctx.entry, accounts: 1, config, env, notifications });
  const base = await start('neither', { ACCESS_LOG: 'off' }, false);
  const logged = await start('access log', { ACCESS_LOG: 'all' }, false);
  const notified = await start('notifications', { ACCESS_LOG: 'off' }, true);
  const problems: string[] = [];
  const sides = new Map<Gateway, SideResult[]>();
  for (const feature of [logged, notified]) {
    const { a, b, ratio } = await alternate(
      { name: base.name, pid: base.pid, load: { url: base.url, keysFile: base.keysFile } },
      { name: feature.name, pid: feature.pid, load: { url: feature.url, keysFile: feature.keysFile } },
      { ...ctx, connections: CONNECTIONS, unit: 'req' },
    );
    console.log(`  ${feature.name}: ${ratio.toFixed(3)} of the req/s without it (median of the rounds' ratios); ` +
      `CPU per request ${b.median.cpuUs.toFixed(1)} µs against ${a.median.cpuUs.toFixed(1)} µs (${(b.median.cpuUs - a.median.cpuUs).toFixed(1)} µs)`);
    sides.set(base, [...(sides.get(base) ?? []), a]);
    sides.set(feature, [b]);
  }
  for (const [gateway, results] of sides) {
    await gateway.stop();
    const counted = results.reduce((n, r) => n + r.responses, 0);
    const runs = results.reduce((n, r) => n + r.runs, 0);
    problems.push(...results.flatMap((r) => r.failures));
    console.log(`  ${gateway.name}:`);
    problems.push(...checkBooks(gateway.books(), { counted, inFlight: CONNECTIONS * runs, grantedMicros: gateway.grantedMicros, priceMicros: PRICE_MICROS })
      .map((p) => `${gateway.name}: ${p}`));
  }
  return problems;
}
