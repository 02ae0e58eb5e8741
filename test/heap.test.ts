import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CHILD = fileURLToPath(new URL('./heap-child.ts', import.meta.url));

function run(flags: string[]): { set: boolean; full: number } {
  return JSON.parse(execFileSync(process.execPath, [...flags, '--import', 'tsx', CHILD], { encoding: 'utf8' })) as { set: boolean; full: number };
}

describe('the heap grows at most 1.3x past what a full collection kept', () => {
  it('takes effect when set at boot: a growing heap is collected more often than with the operator\'s 300%', () => {
    const bounded = run([]);
    const operators = run(['--heap-growing-percent=300']);
    expect(bounded.set).toBe(true);
    // The operator's own flag is left as it is.
    expect(operators.set).toBe(false);
    // Measured: 7 full collections against 3.
    expect(bounded.full).toBeGreaterThanOrEqual(operators.full + 2);
  });
});
