// better-sqlite3's native addon, as the single executable carries it: an SEA asset. A shared
// library can only be loaded from a file, so the asset is written, once per content, into a
// directory only this user can reach (another user able to swap the file would run code as us),
// then loaded with process.dlopen. scripts/package.mjs points better-sqlite3's `bindings` lookup
// here.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRawAsset } from 'node:sea';

export const ADDON_ASSET = 'better_sqlite3.node';

let loaded: object | undefined;

/** The addon's exports, for better-sqlite3 (what `require('bindings')('better_sqlite3.node')` gives it). */
export function loadSqliteAddon(name: string): object {
  if (name !== ADDON_ASSET) throw new Error(`the single executable carries ${ADDON_ASSET}, not ${name}`);
  if (loaded) return loaded;
  const bytes = new Uint8Array(getRawAsset(ADDON_ASSET) as ArrayBuffer);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const file = join(privateDir(), `better_sqlite3-${hash}.node`);
  if (!existsSync(file) || !readFileSync(file).equals(bytes)) {
    // Written aside and renamed: a second process starting at once never loads a half-written file.
    const partial = `${file}.${process.pid}.tmp`;
    writeFileSync(partial, bytes, { mode: 0o700 });
    renameSync(partial, file);
  }
  const module = { exports: {} };
  process.dlopen(module, file);
  return (loaded = module.exports);
}

/**
 * $XDG_CACHE_HOME/tollgate, else <tmpdir>/tollgate-<uid>: made 0700 if missing, and refused unless
 * it is a real directory of this user that nobody else can write to (in a shared /tmp another
 * user could have made it first).
 */
function privateDir(): string {
  // Where this program unpacks itself, not a gateway setting: config.ts does not know about it.
  const xdg = process.env.XDG_CACHE_HOME;
  const uid = process.getuid?.();
  const dir = xdg ? join(xdg, 'tollgate') : join(tmpdir(), `tollgate-${uid ?? 'user'}`);
  if (xdg) mkdirSync(xdg, { recursive: true, mode: 0o700 });
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} must be a directory owned by this user and writable by no one else (to unpack the SQLite addon); remove it or set XDG_CACHE_HOME`);
  }
  return dir;
}
