// Once per test run: the PostgreSQL cluster the PostgreSQL tests share (each makes its own database).
import type { TestProject } from 'vitest/node';
import { startPostgres } from './postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** postgres://… of the run's cluster: freshDatabase(inject('postgresUrl')) gives a test file its database. */
    postgresUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const pg = await startPostgres();
  project.provide('postgresUrl', pg.url);
  return () => pg.stop();
}
