// A gateway's database before it starts: the schema from the build's own CLI (`cli.js migrate`,
// beside server.js), so the bench follows whatever migrations that build has; then accounts, one
// key each and their credits, inserted in one transaction. Only the columns every version of the
// schema has are written; each grant is a ledger row, so ledger = balance from the start.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { displayPrefix, generateKey, hashKey, newId } from '../../src/keys.ts';

export interface Seed {
  /** Path of a file with every key, one a line (what load.lua reads). */
  keysFile: string;
  firstKey: string;
}

export function seed(o: { entry: string; databasePath: string; keysFile: string; plan: string; accounts: number; creditsMicros: number }): Seed {
  const cli = join(dirname(o.entry), 'cli.js');
  if (!existsSync(cli)) throw new Error(`no ${cli}: the bench creates the schema with the CLI built beside the server`);
  execFileSync(process.execPath, [cli, 'migrate', '--db', o.databasePath], { stdio: ['ignore', 'ignore', 'inherit'] });

  const db = new Database(o.databasePath);
  // Random ids and key hashes land all over the tables and their indexes: with the default 2 MB
  // cache the transaction spills and rereads pages; 128 MB holds 100,000 accounts' worth.
  db.pragma('cache_size = -131072');
  const keys: string[] = [];
  try {
    const now = Date.now();
    const account = db.prepare('INSERT INTO accounts (id, email, name, plan, balance_micros, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    const key = db.prepare('INSERT INTO api_keys (id, account_id, name, hash, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    const grant = db.prepare(`INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
      VALUES (?, ?, ?, 'grant', 'bench', ?)`);
    db.transaction(() => {
      for (let i = 0; i < o.accounts; i++) {
        const id = newId('acct');
        const k = generateKey();
        account.run(id, `bench${i}@example.com`, `bench ${i}`, o.plan, o.creditsMicros, now);
        key.run(newId('key'), id, 'bench', hashKey(k), displayPrefix(k), now);
        if (o.creditsMicros > 0) grant.run(id, o.creditsMicros, o.creditsMicros, now);
        keys.push(k);
      }
    })();
  } finally {
    db.close();
  }
  writeFileSync(o.keysFile, `${keys.join('\n')}\n`);
  return { keysFile: o.keysFile, firstKey: keys[0] };
}
