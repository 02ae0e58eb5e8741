// Bundles the gateway (dist/server.js) and the CLI (dist/cli.js) with esbuild. better-sqlite3 is
// a native addon and stays external; everything else is inlined.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
};

await build({ ...common, entryPoints: { server: 'src/server-entry.ts', cli: 'src/cli/index.ts', 'usage-worker': 'src/db/usage-worker.ts' }, outdir: 'dist' });
chmodSync('dist/cli.js', 0o755);
