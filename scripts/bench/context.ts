// What bench.ts hands every case: where to work, what to run, and how long.
import { join } from 'node:path';

export interface BenchContext {
  /** A temp directory; each case takes a subdirectory. */
  dir: string;
  /** The gateway bundle: dist/server.js or BENCH_SERVER. */
  entry: string;
  /** The shared upstream (upstream.ts). */
  upstreamUrl: string;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  /** BENCH_ACCOUNTS: accounts of the accounts case. */
  accounts: number;
  /** BENCH_WEBHOOKS: events of the webhook case. */
  webhooks: number;
  /** BENCH_PROFILE: node --cpu-prof output for the proxies, by case and side. */
  profileDir: string | undefined;
}

/** Node flags that make a child write a CPU profile under profileDir/name when it exits. */
export function profileFlags(ctx: BenchContext, name: string): string[] {
  return ctx.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(ctx.profileDir, name)}`] : [];
}
