// floor: what the plain case's ratio is left with, given what every paid request leaves behind.
// The floor proxy (floor-proxy.ts) is the bare proxy plus exactly that (a key lookup, a debit, an
// X-Request-Id, a usage row and an access-log line), each done the plain way, under the plain
// case's load, against the bare proxy: once with the row and the line written on the event loop,
// as the gateway writes them, once in a writer thread. Beside the plain target (0.85), the first
// says what no design writing them on its event loop reaches, the second what moving them buys.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { BenchContext } from './context.ts';
import { forkServer, stop } from './processes.ts';
import { alternate, verdict } from './rounds.ts';

const CONNECTIONS = 50;
const PLAIN_TARGET = 0.85;
const WRITERS = { loop: 'on the event loop', thread: 'in a writer thread' } as const;

export async function floorCase(ctx: BenchContext): Promise<string[]> {
  console.log(`\nfloor: the plain load (GET /, ${CONNECTIONS} connections) through the bare proxy plus a usage row and an access-log line a request`);
  const keysFile = join(ctx.dir, 'floor-keys.txt');
  writeFileSync(keysFile, `tg_${'f'.repeat(38)}\n`);
  const bare = await forkServer('bare proxy', new URL('./bare-proxy.ts', import.meta.url), { UPSTREAM_URL: ctx.upstreamUrl });
  const problems: string[] = [];
  for (const [writer, where] of Object.entries(WRITERS)) {
    console.log(`  written ${where}:`);
    const dir = join(ctx.dir, `floor-${writer}`);
    mkdirSync(dir, { recursive: true });
    const floor = await forkServer(`floor proxy, ${writer}`, new URL('./floor-proxy.ts', import.meta.url), { UPSTREAM_URL: ctx.upstreamUrl, FLOOR_DIR: dir, FLOOR_WRITER: writer });
    const { a, b, ratio } = await alternate(
      { name: 'bare proxy', pid: bare.child.pid, load: { url: bare.url, keysFile } },
      { name: `floor, ${writer}`, pid: floor.child.pid, load: { url: floor.url, keysFile } },
      { ...ctx, connections: CONNECTIONS, unit: 'req' },
    );
    verdict(`floor written ${where} / bare proxy req/s (median of the rounds' ratios)`, ratio.toFixed(3), `≥ ${PLAIN_TARGET}, the plain case's`, ratio >= PLAIN_TARGET, 'BELOW THE PLAIN TARGET');
    console.log(`  floor CPU per request: ${b.median.cpuUs.toFixed(1)} µs (threads included), bare proxy ${a.median.cpuUs.toFixed(1)} µs ` +
      `(+${(b.median.cpuUs - a.median.cpuUs).toFixed(1)} µs)`);
    await stop(floor.child);
    // wrk counts whole responses: a run's last requests may have a row and no count, and SIGTERM
    // ends the proxy without a last commit. Either way, at most one row per connection and run.
    const db = new Database(join(dir, 'floor.db'), { readonly: true });
    const rows = db.prepare('SELECT count(*) FROM usage').pluck().get() as number;
    db.close();
    const off = rows - b.responses;
    console.log(`  usage rows: ${rows} for ${b.responses} responses counted (${off >= 0 ? '+' : ''}${off}, expected within ±${CONNECTIONS * b.runs})`);
    problems.push(...a.failures, ...b.failures);
    if (Math.abs(off) > CONNECTIONS * b.runs) problems.push(`floor proxy, ${writer}: ${rows} usage rows for ${b.responses} responses`);
  }
  await stop(bare.child);
  return problems;
}
