// A process that bounds its heap's growth as the gateway does at boot, then keeps about 250 MB
// of small objects; it prints whether it set the bound and how many full collections it ran.
// Usage: node --import tsx [--heap-growing-percent=N] test/heap-child.ts
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { boundHeapGrowth } from '../src/heap.ts';

type GcEntry = PerformanceEntry & { detail: { kind: number } };

const set = boundHeapGrowth();
let full = 0;
const count = (entries: PerformanceEntry[]) => {
  for (const e of entries as GcEntry[]) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) full++;
};
const observer = new PerformanceObserver((list) => count(list.getEntries()));
observer.observe({ entryTypes: ['gc'] });
const kept: { i: number; j: number }[][] = [];
for (let i = 0; i < 1000; i++) {
  const chunk = [];
  for (let j = 0; j < 10_000; j++) chunk.push({ i, j });
  kept.push(chunk);
}
// Node hands GC entries over on later turns of the event loop; the last of them is taken here.
for (let turn = 0; turn < 3; turn++) await new Promise(setImmediate);
count(observer.takeRecords());
observer.disconnect();
process.stdout.write(`${JSON.stringify({ set, full, kept: kept.length })}\n`);
