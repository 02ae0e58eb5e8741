// npm run package: the gateway and every CLI command as one executable, with Node's single
// executable applications (SEA). esbuild bundles src/sea-entry.ts with all its dependencies into
// one CommonJS script (Node 20 runs nothing else as an SEA's main); better-sqlite3's addon and
// migrations/ travel as SEA assets (src/sea/sqlite-addon.ts, src/db/migrate.ts read them);
// postject injects the blob into a copy of this node binary.
//   node scripts/package.mjs [OUTPUT]      default dist/tollgate
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const output = resolve(process.argv[2] ?? join(root, 'dist', 'tollgate'));
// The sentinel Node's own binary carries for SEA (doc/api/single-executable-applications.md).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

let inject;
try {
  ({ inject } = (await import('postject')).default);
} catch {
  console.error('package: postject is missing; it is a devDependency: run npm install');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'tollgate-package-'));
try {
  const main = join(work, 'tollgate.cjs');
  await build({
    entryPoints: [join(root, 'src', 'sea-entry.ts')],
    outfile: main,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
    // migrate.ts only uses import.meta.url to find migrations/ on disk, which the SEA never does.
    logOverride: { 'empty-import-meta': 'silent' },
    plugins: [addonFromAsset()],
  });

  const migrations = Object.fromEntries(readdirSync(join(root, 'migrations'))
    .filter((f) => f.endsWith('.sql'))
    .map((f) => [f, readFileSync(join(root, 'migrations', f), 'utf8')]));
  writeFileSync(join(work, 'migrations.json'), JSON.stringify(migrations));

  const sqlite = dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json'));
  const blob = join(work, 'sea.blob');
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify({
    main,
    output: blob,
    disableExperimentalSEAWarning: true,
    // V8's compiled code for the script, made at build time: start-up does not compile the 8 MB bundle again.
    useCodeCache: true,
    assets: {
      'better_sqlite3.node': join(sqlite, 'build', 'Release', 'better_sqlite3.node'),
      'migrations.json': join(work, 'migrations.json'),
    },
  }));
  execFileSync(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')], { stdio: 'pipe' });

  mkdirSync(dirname(output), { recursive: true });
  rmSync(output, { force: true });
  copyFileSync(process.execPath, output);
  chmodSync(output, 0o755);
  stripSymbols(output);
  await quietly(() => inject(output, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: FUSE }));
  console.log(`package: ${output} (${(statSync(output).size / 1e6).toFixed(1)} MB, node ${process.version}, ${process.platform}-${process.arch})`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** Debian's node carries its symbol table (13 of its 99 MB); addons link through the dynamic one. */
function stripSymbols(file) {
  try {
    execFileSync('strip', [file], { stdio: 'pipe' });
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    console.log('package: strip (binutils) not found; the executable keeps node\'s symbol table');
  }
}

/** LIEF, inside postject, warns about every one of the node binary's 256 ELF notes; nothing is wrong. */
async function quietly(fn) {
  const warn = console.warn;
  console.warn = (...args) => {
    if (!/^warning: Can't find string offset for section name/.test(String(args[0]))) warn(...args);
  };
  try {
    return await fn();
  } finally {
    console.warn = warn;
  }
}

/** better-sqlite3 finds its addon with `require('bindings')(name)`: here that is the SEA asset. */
function addonFromAsset() {
  const loader = join(root, 'src', 'sea', 'sqlite-addon.ts');
  return {
    name: 'sqlite-addon-from-asset',
    setup(b) {
      b.onResolve({ filter: /^bindings$/ }, () => ({ path: 'bindings', namespace: 'sea-addon' }));
      b.onLoad({ filter: /.*/, namespace: 'sea-addon' }, () => ({
        contents: `module.exports = require(${JSON.stringify(loader)}).loadSqliteAddon;`,
        resolveDir: root,
        loader: 'js',
      }));
    },
  };
}
