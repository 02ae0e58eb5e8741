// What every command of one run shares: where its output goes, the environment its settings come
// from, the config (read once, on demand, without the settings only a serving gateway needs), the
// database file, and the operations a command runs: on that file, or through a running gateway's
// admin API with --url. One Cli per run, so a test can run the program many times in one process.
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { LocalOperations, type Operations } from '../admin/operations.ts';
import { loadAdminClient, loadConfig, type Config } from '../config.ts';
import { Admin } from '../db/admin.ts';
import { openDb } from '../db/open.ts';
import { createSqliteStorage, type SqliteStorage } from '../db/sqlite-storage.ts';
import { createLogger } from '../log.ts';
import { EXIT, FailedError, UsageError } from './errors.ts';
import { migratePg } from '../pg/migrate.ts';
import { pgOperations } from '../pg/pg-operations.ts';
import { createPool, type Pool } from '../pg/pool.ts';
import { RemoteOperations } from './remote.ts';

export interface CliIo {
  /** Where settings are read from: process.env for the bin. */
  env: Record<string, string | undefined>;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** --db, --url and --json: the program's own options, accepted before or after the command. */
export interface CommonOptions { db?: string; url?: string; json?: boolean }

export class Cli {
  /** Set by a command that printed its result and still failed (a Stripe report did not go through). */
  exitCode: number = EXIT.ok;
  #config: Config | undefined;

  constructor(readonly io: CliIo) {}

  config(): Config {
    return (this.#config ??= loadConfig(this.io.env, { serving: false }));
  }

  /** Prints `doc` as one JSON document with --json, else the lines `human()` returns. */
  emit(opts: CommonOptions, doc: unknown, human: () => string[]): void {
    this.io.stdout(`${opts.json ? JSON.stringify(doc, null, 2) : human().join('\n')}\n`);
  }

  /**
   * The database file: --db, else DATABASE_PATH, else ./data/tollgate.db, as an absolute path.
   * Only `create` (migrate, serve) may start a new one: elsewhere a missing file is a mistake (the
   * wrong directory, a typo) that would otherwise leave an empty database behind.
   */
  database(opts: CommonOptions, { create = false } = {}): string {
    if (opts.db === undefined && this.config().databaseUrl) {
      throw new FailedError('this command works on the SQLite file only, not on PostgreSQL (DATABASE_URL) yet');
    }
    const given = opts.db ?? this.config().databasePath;
    const path = resolve(given);
    if (!create && !existsSync(path)) {
      throw new FailedError(`no database at ${path} (create it with: tollgate migrate --db ${path})`);
    }
    // A relative path means the working directory chose the file: say which one it was.
    if (!isAbsolute(given)) this.io.stderr(`tollgate: using ${path}\n`);
    return path;
  }

  /** Opens the database (applying pending migrations), runs `fn`, and closes it whatever happens. */
  async withStorage<T>(opts: CommonOptions, fn: (storage: SqliteStorage) => T | Promise<T>): Promise<T> {
    const storage = createSqliteStorage(openDb(this.database(opts)));
    try {
      return await fn(storage);
    } finally {
      storage.close();
    }
  }

  /**
   * Runs `fn` with the operator's operations: through the admin API of the gateway at --url (or
   * TOLLGATE_ADMIN_URL), else on the database file, recorded in the audit log as done by 'cli'.
   */
  async withOps<T>(opts: CommonOptions, fn: (ops: Operations) => T | Promise<T>): Promise<T> {
    const remote = loadAdminClient(this.io.env, opts.url);
    if (remote) return fn(new RemoteOperations(remote));
    const url = opts.db === undefined ? this.config().databaseUrl : undefined;
    if (url) return this.withPostgres(url, (pool) => fn(pgOperations(pool, { config: () => this.config(), now: Date.now, actor: 'cli' })));
    return this.withStorage(opts, (storage) => fn(new LocalOperations({
      admin: new Admin(storage), config: () => this.config(), now: Date.now, log: createLogger('silent'),
    })));
  }

  /** Connects to PostgreSQL (applying pending migrations), runs `fn`, and disconnects whatever happens. */
  async withPostgres<T>(url: string, fn: (pool: Pool) => T | Promise<T>): Promise<T> {
    const pool = await createPool(url, 2);
    try {
      await migratePg(pool);
      return await fn(pool);
    } finally {
      await pool.end();
    }
  }

  /** For the commands the admin API does not serve: they work on the database file only. */
  fileOnly(opts: CommonOptions, command: string): void {
    if (opts.url !== undefined) throw new UsageError(`tollgate ${command} works on the database file only (the admin API has no such endpoint): drop --url`);
  }
}
