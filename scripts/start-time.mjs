// Start-up time: from exec to the first 200 from /_tollgate/ready, median of RUNS (default 5),
// for each program given (default: dist/tollgate, the single executable, and node dist/server.js).
// One warm-up run first creates and migrates the database, so the figures are of a restart.
//   node scripts/start-time.mjs [--runs N] ['PROGRAM ARGS' ...]
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
let runs = 5;
if (args[0] === '--runs') {
  runs = Number(args[1]);
  args.splice(0, 2);
}
const programs = args.length > 0 ? args : ['dist/tollgate', `${process.execPath} dist/server.js`];

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

const ready = (port) => new Promise((resolve) => {
  const req = request({ host: '127.0.0.1', port, path: '/_tollgate/ready', agent: false }, (res) => {
    res.resume();
    resolve(res.statusCode === 200);
  });
  req.on('error', () => resolve(false));
  req.end();
});

/** Milliseconds from spawn to ready, then a SIGTERM and wait for the exit. */
async function once(program, env) {
  const port = await freePort();
  const [cmd, ...rest] = program.split(' ');
  const start = performance.now();
  const child = spawn(cmd, rest, { env: { ...env, PORT: String(port) }, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const deadline = start + 10_000;
  while (!(await ready(port))) {
    if (performance.now() > deadline) throw new Error(`${program} was not ready within 10 s`);
  }
  const ms = performance.now() - start;
  child.kill('SIGTERM');
  await exited;
  return ms;
}

for (const program of programs) {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-start-'));
  const env = { PATH: process.env.PATH, DATABASE_PATH: join(dir, 'tollgate.db'), XDG_CACHE_HOME: join(dir, 'cache'), LOG_LEVEL: 'warn' };
  try {
    await once(program, env);
    const times = [];
    for (let i = 0; i < runs; i++) times.push(await once(program, env));
    times.sort((a, b) => a - b);
    console.log(`${program}: median ${times[Math.floor(times.length / 2)].toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(', ')})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
