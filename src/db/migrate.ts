// Applies migrations/NNNN_name.sql in order, each in its own transaction, and records them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { getAsset, isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import type { Db } from './open.ts';

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** migrations/ sits beside dist/ in a build and two levels above src/db/ in the sources. */
export function migrationsDir(): string {
  for (const rel of ['../migrations/', '../../migrations/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new Error('migrations/ folder not found next to the program');
}

/** The single executable's copy of migrations/: file name → SQL (scripts/package.mjs writes it). */
export const MIGRATIONS_ASSET = 'migrations.json';

export interface Migration { version: number; name: string; sql: string }

/**
 * File name → SQL of every .sql file in migrations/ (SQLite's) or a folder of it ('pg/'): on
 * disk, or the copy the single executable carries (SQLite's only).
 */
function sqlFiles(folder: string): Record<string, string> {
  if (isSea() && folder === '') return JSON.parse(getAsset(MIGRATIONS_ASSET, 'utf8')) as Record<string, string>;
  const dir = migrationsDir() + folder;
  return Object.fromEntries(readdirSync(dir).filter((f) => f.endsWith('.sql')).map((f) => [f, readFileSync(dir + f, 'utf8')]));
}

/** The migrations of migrations/ (or its `folder`), in order. */
export function available(folder = ''): Migration[] {
  return Object.entries(sqlFiles(folder))
    .flatMap(([file, sql]) => {
      const m = FILE.exec(file);
      return m ? [{ version: Number(m[1]), name: m[2], sql }] : [];
    })
    .sort((a, b) => a.version - b.version);
}

/** Returns the names of the migrations it applied (none when the schema is current). */
export function migrate(db: Db): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const done = new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const applied: string[] = [];
  for (const m of available()) {
    if (done.has(m.version)) continue;
    // IMMEDIATE: a second process starting at the same moment waits instead of applying twice.
    db.transaction(() => {
      if (db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version)) return;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
      applied.push(migrationName(m));
    }).immediate();
  }
  return applied;
}

export const migrationName = (m: Migration) => `${String(m.version).padStart(4, '0')}_${m.name}`;

let latest: number | undefined;

/** True when every migration on disk is recorded: what /_tollgate/ready reports. */
export function isMigrated(db: Db): boolean {
  latest ??= available().at(-1)?.version ?? 0;
  try {
    return (db.prepare('SELECT max(version) FROM schema_migrations').pluck().get() as number | null ?? 0) >= latest;
  } catch {
    return false;
  }
}
