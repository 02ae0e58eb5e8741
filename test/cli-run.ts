// The CLI run in-process (src/cli/run.ts, what dist/cli.js calls) with its output captured, so a
// test runs a command in milliseconds instead of starting node. test/cli.test.ts keeps a few
// real-process runs of dist/cli.js to prove the bin does the same.
import { expect } from 'vitest';
import { run } from '../src/cli/run.ts';

export interface CliRun { status: number; stdout: string; stderr: string }

/** Runs `tollgate ...args` with exactly `env` as its environment (nothing from this process's). */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const status = await run(args, { env, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { status, stdout, stderr };
}

/** A successful --json run: exit 0, nothing on stderr, exactly one JSON document on stdout. */
export function parsed<T>(r: CliRun): T {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** A failure: the exit code, nothing on stdout, exactly one line on stderr. */
export function expectFailure(r: CliRun, status: number, message?: RegExp): void {
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^tollgate: [^\n]+\n$/);
  if (message) expect(r.stderr).toMatch(message);
  expect(r.status).toBe(status);
}
