import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Two cores: files run in two forked workers; each test file starts its own servers on port 0.
    pool: 'forks',
    maxWorkers: 2,
  },
});
