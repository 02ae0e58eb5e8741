// Reads a V8 .cpuprofile (node --cpu-prof) and lists where the time went: self time (the function
// itself was on top of the stack) and total time (it was anywhere on the stack), per function.
// Usage: tsx scripts/bench/cpu-profile.ts FILE.cpuprofile [TOP]
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  /** Where it lives: "dist/server.js:812", "node:internal/…", "undici/…", or "" for V8's own entries. */
  where: string;
  selfMs: number;
  totalMs: number;
}

/** Time V8 attributes to no JavaScript function: waiting in epoll, not work. */
const IDLE = '(idle)';

export function summarizeCpuProfile(path: string): { busyMs: number; functions: FunctionTime[] } {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }

  const times = new Map<string, FunctionTime>();
  const entry = (n: ProfileNode): FunctionTime => {
    const { functionName, url, lineNumber } = n.callFrame;
    const name = functionName || '(anonymous)';
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const id = `${name} ${where}`;
    let t = times.get(id);
    if (!t) times.set(id, (t = { name, where, selfMs: 0, totalMs: 0 }));
    return t;
  };

  let busyMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample: it belongs to sample i.
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    let node = byId.get(profile.samples[i])!;
    if (node.callFrame.functionName === IDLE) continue;
    busyMs += ms;
    entry(node).selfMs += ms;
    // Count a function once per sample, however deep it recurses.
    const seen = new Set<FunctionTime>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      node = byId.get(id)!;
      const t = entry(node);
      if (!seen.has(t)) {
        seen.add(t);
        t.totalMs += ms;
      }
    }
  }
  return { busyMs, functions: [...times.values()].filter((t) => t.name !== '(root)') };
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) return url.slice(modules + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

export function formatCpuSummary(summary: { busyMs: number; functions: FunctionTime[] }, top = 25): string {
  const { busyMs, functions } = summary;
  const pct = (ms: number) => `${((100 * ms) / busyMs).toFixed(1).padStart(5)}%`;
  const row = (t: FunctionTime, ms: number) => `  ${pct(ms)}  ${ms.toFixed(0).padStart(6)} ms  ${t.name}  ${t.where}`;
  const self = [...functions].sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  const gateway = functions.filter((t) => t.where.startsWith('dist/')).sort((a, b) => b.totalMs - a.totalMs).slice(0, top);
  return [
    `CPU busy: ${busyMs.toFixed(0)} ms (idle excluded)`,
    `Top ${top} by self time:`,
    ...self.map((t) => row(t, t.selfMs)),
    `Top ${top} gateway functions (dist/) by total time:`,
    ...gateway.map((t) => row(t, t.totalMs)),
  ].join('\n');
}

/**
 * CPU per response of both proxies, then where the gateway's time went. `bare` and `gateway` name
 * the profile directories under `dir`; `handled` is every response the process gave.
 */
export function profileReport(
  dir: string, unit: string, bare: { dir: string; handled: number }, gateway: { dir: string; handled: number },
): string {
  // The main thread's profile: its name ends in ".<pid>.0.<seq>.cpuprofile" (0 is the thread id;
  // tsx's loader thread in the bare proxy writes another one).
  const latest = (name: string) => {
    let files: string[] = [];
    try {
      files = readdirSync(join(dir, name)).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f)).sort();
    } catch {
      // No directory: that process wrote no profile.
    }
    return files.length > 0 ? join(dir, name, files[files.length - 1]) : undefined;
  };
  const bareFile = latest(bare.dir);
  const gatewayFile = latest(gateway.dir);
  if (!bareFile || !gatewayFile) return `\nno .cpuprofile under ${dir}`;
  const bareCpu = summarizeCpuProfile(bareFile);
  const gatewayCpu = summarizeCpuProfile(gatewayFile);
  const per = (busyMs: number, handled: number) => `${((busyMs * 1000) / handled).toFixed(1)} µs`;
  return [
    `\nCPU per ${unit} (warm-up included): bare proxy ${per(bareCpu.busyMs, bare.handled)}, gateway ${per(gatewayCpu.busyMs, gateway.handled)}`,
    `gateway profile: ${gatewayFile}`,
    formatCpuSummary(gatewayCpu),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: tsx scripts/bench/cpu-profile.ts FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  process.stdout.write(`${formatCpuSummary(summarizeCpuProfile(file), top ? Number(top) : 25)}\n`);
}
