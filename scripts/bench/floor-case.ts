// floor: what the plain case's ratio can be at most when a usage row and an access-log line are
// written on the event loop. The floor proxy (floor-proxy.ts) is the bare proxy plus exactly those
// (and a key lookup, a debit, an X-Request-Id), each done the plain way, against the bare proxy
// under the plain case's load. The plain target (0.85) is printed beside it: a design whose
// floor is below the target cannot meet it without taking those writes off the event loop.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { BenchContext } from './context.ts';
import { forkServer, stop } from './processes.ts';
import { alternate, verdict } from './rounds.ts';

const CONNECTIONS = 50;
const PLAIN_TARGET = 0.85;

export async function floorCase(ctx: BenchContext): Promise<string[]> {
  console.log(`\nfloor: the plain load (GET /, ${CONNECTIONS} connections) through the bare proxy plus a usage row and an access-log line a request`);
  const dir = join(ctx.dir, 'floor');
  mkdirSync(dir, { recursive: true });
  const keysFile = join(dir, 'keys.txt');
  writeFileSync(keysFile, `tg_${'f'.repeat(38)}\n`);
  const bare = await forkServer('bare proxy', new URL('./bare-proxy.ts', import.meta.url), { UPSTREAM_URL: ctx.upstreamUrl });
  const floor = await forkServer('floor proxy', new URL('./floor-proxy.ts', import.meta.url), { UPSTREAM_URL: ctx.upstreamUrl, FLOOR_DIR: dir });
  const { a, b, ratio } = await alternate(
    { name: 'bare proxy', pid: bare.child.pid, load: { url: bare.url, keysFile } },
    { name: 'floor proxy', pid: floor.child.pid, load: { url: floor.url, keysFile } },
    { ...ctx, connections: CONNECTIONS, unit: 'req' },
  );
  verdict('floor proxy / bare proxy req/s (median of the rounds\' ratios)', ratio.toFixed(3), `≥ ${PLAIN_TARGET}, the plain case's`, ratio >= PLAIN_TARGET, 'BELOW THE PLAIN TARGET');
  console.log(`  floor proxy CPU per request: ${b.median.cpuUs.toFixed(1)} µs, bare proxy ${a.median.cpuUs.toFixed(1)} µs ` +
    `(+${(b.median.cpuUs - a.median.cpuUs).toFixed(1)} µs)`);
  await stop(floor.child);
  await stop(bare.child);
  // wrk counts whole responses: a run's last requests may have a row and no count, and SIGTERM
  // ends the proxy without a last commit. Either way, at most one row per connection and run.
  const db = new Database(join(dir, 'floor.db'), { readonly: true });
  const rows = db.prepare('SELECT count(*) FROM usage').pluck().get() as number;
  db.close();
  const off = rows - b.responses;
  console.log(`  usage rows: ${rows} for ${b.responses} responses counted (${off >= 0 ? '+' : ''}${off}, expected within ±${CONNECTIONS * b.runs})`);
  return [
    ...a.failures, ...b.failures,
    ...(Math.abs(off) > CONNECTIONS * b.runs ? [`floor proxy: ${rows} usage rows for ${b.responses} responses`] : []),
  ];
}
