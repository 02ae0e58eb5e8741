import { defineConfig } from 'vitest/config';

/** Timed against a bound (a request answered within 0.5 s): run alone, after the rest, so the suite's other files do not take the CPU they time. */
const TIMED = ['test/busy-database.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    projects: [
      { extends: true, test: { name: 'suite', exclude: [...TIMED, '**/node_modules/**'], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'timed', include: TIMED, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
