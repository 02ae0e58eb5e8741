// What every command of one run shares: where its output goes, the environment its settings come
// from, the config (read once, on demand, without the settings only a serving gateway needs) and
// the database file. One Cli per run, so a test can run the program many times in one process.
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { loadConfig, type Config } from '../config.ts';
import { Admin } from '../db/admin.ts';
import { openDb } from '../db/open.ts';
import { createSqliteStorage, type SqliteStorage } from '../db/sqlite-storage.ts';
import { EXIT, FailedError } from './errors.ts';

export interface CliIo {
  /** Where settings are read from: process.env for the bin. */
  env: Record<string, string | undefined>;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** --db and --json: the program's own options, accepted before or after the command. */
export interface CommonOptions { db?: string; json?: boolean }

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
  withStorage<T>(opts: CommonOptions, fn: (storage: SqliteStorage) => T): T {
    const storage = createSqliteStorage(openDb(this.database(opts)));
    try {
      return fn(storage);
    } finally {
      storage.close();
    }
  }

  withAdmin<T>(opts: CommonOptions, fn: (admin: Admin) => T): T {
    return this.withStorage(opts, (storage) => fn(new Admin(storage)));
  }
}
