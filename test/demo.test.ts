// With nothing configured the gateway serves its echo service behind /demo/, and says so to
// whoever asks for anything else.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkProblem, fetchText, tempDir } from './helpers.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';

describe('demo mode', () => {
  let server: ServerProcess | undefined;
  afterAll(() => {
    server?.child.kill('SIGKILL');
  });

  it('GET / is a 404 that points to /demo/', async () => {
    server = await spawnServer({ DATABASE_PATH: join(tempDir(), 'demo.db') });
    const res = await fetchText(`${server.url}/`);
    const problem = checkProblem(res, 404, 'not-found');
    expect(problem.detail).toContain('demo mode');
    expect(problem.detail).toContain('/demo/');
  });
});
