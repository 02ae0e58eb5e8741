// A throwaway PostgreSQL cluster for the test run: Debian's server binaries (the `postgresql`
// package .ci/run installs), a data directory in a temp folder, a free port on 127.0.0.1, and the
// durability settings off (a test's database dies with the run). PostgreSQL refuses to run as
// root, so as root the cluster belongs to the `postgres` user the package creates.
// TEST_DATABASE_URL names a server to use instead (its user must be allowed to create databases).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { displayPrefix, generateKey, hashKey, newId } from '../src/keys.ts';
import { freePort } from './server-process.ts';

export interface Postgres {
  /** postgres://… of a superuser on the cluster. */
  url: string;
  /** The server's processes (postmaster and backends), to pause them; none for TEST_DATABASE_URL. */
  pids(): number[];
  stop(): Promise<void>;
}

const USER = 'tollgate';

/** initdb's folder: on PATH, else the newest of Debian's /usr/lib/postgresql/<version>/bin. */
function binaries(): string {
  const onPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath.replace(/\/initdb$/, '');
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  if (versions.length === 0) {
    throw new Error('PostgreSQL server binaries not found (initdb): install Debian\'s postgresql package (.ci/run does), or set TEST_DATABASE_URL');
  }
  versions.sort((a, b) => Number(b) - Number(a));
  return join(root, versions[0], 'bin');
}

/** `settings`: more server settings, as `name=value` (the bench preloads pg_stat_statements). */
export async function startPostgres(settings: string[] = []): Promise<Postgres> {
  const given = process.env.TEST_DATABASE_URL;
  if (given) return { url: given, pids: () => [], stop: async () => {} };
  const bin = binaries();
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-pg-'));
  const data = join(dir, 'data');
  const root = process.getuid?.() === 0;
  let uid: number | undefined;
  if (root) {
    uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  const run = (cmd: string, args: string[]) => execFileSync(join(bin, cmd), args, { stdio: ['ignore', 'ignore', 'pipe'], uid, env: { ...process.env, LC_ALL: 'C' } });
  run('initdb', ['-D', data, '-U', USER, '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const port = await freePort();
  const options = [
    `-p ${port}`, '-c listen_addresses=127.0.0.1', `-c unix_socket_directories=${dir}`,
    '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off', '-c max_connections=300', ...settings.map((x) => `-c ${x}`),
  ].join(' ');
  run('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  return {
    url: `postgres://${USER}@127.0.0.1:${port}/postgres`,
    pids() {
      const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      const children = spawnSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
      return [postmaster, ...children];
    },
    async stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A new, empty database on the cluster at `url`; returns its URL. */
export async function freshDatabase(url: string): Promise<string> {
  const name = `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** An account granted `micros`, as Admin would make it: the balance and its ledger row. */
export async function seedPgAccount(pool: pg.Pool, id: string, micros: number): Promise<void> {
  await pool.query(`INSERT INTO accounts (id, email, plan, balance_micros, created_at) VALUES ($1, $2, 'default', $3, $4)`, [id, `${id}@example.com`, micros, Date.now()]);
  await pool.query(`INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
    VALUES ($1, $2, $2, 'grant', 'test', $3)`, [id, micros, Date.now()]);
}

/** A key of the account, as Admin would issue it; returns the key. */
export async function seedPgKey(pool: pg.Pool, accountId: string): Promise<string> {
  const key = generateKey();
  await pool.query(`INSERT INTO api_keys (id, account_id, hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)`,
    [newId('key'), accountId, hashKey(key), displayPrefix(key), Date.now()]);
  return key;
}

/** A new account on `plan` granted `micros`, with one key. */
export async function pgAccount(pool: pg.Pool, micros: number, plan = 'default'): Promise<{ id: string; key: string }> {
  const id = `acct_${Math.random().toString(36).slice(2, 10)}`;
  await seedPgAccount(pool, id, micros);
  await pool.query('UPDATE accounts SET plan = $2 WHERE id = $1', [id, plan]);
  return { id, key: await seedPgKey(pool, id) };
}

export interface Books {
  balance: number;
  /** The sum of the ledger: always the balance. */
  ledger: number;
  /** What open leases hold unspent, and how many are open. */
  held: number;
  open: number;
  /** What the account's usage rows charged. */
  charged: number;
  debt: number;
}

/** An account's money as the database has it. */
export async function books(pool: pg.Pool, id: string): Promise<Books> {
  const { rows } = await pool.query<Books>(`SELECT
      a.balance_micros AS balance, a.debt_micros AS debt, (SELECT sum(amount_micros) FROM ledger WHERE account_id = a.id)::bigint AS ledger,
      (SELECT coalesce(sum(granted_micros - consumed_micros), 0) FROM leases WHERE account_id = a.id AND closed_at IS NULL)::bigint AS held,
      (SELECT count(*) FROM leases WHERE account_id = a.id AND closed_at IS NULL)::int AS open,
      (SELECT coalesce(sum(price_micros), 0) FROM usage WHERE account_id = a.id)::bigint AS charged
    FROM accounts a WHERE a.id = $1`, [id]);
  return rows[0];
}

/** GET `path` of a gateway with the key; its status, the body read. */
export const statusOf = (url: string, key: string, path = '/api/x'): Promise<number> =>
  fetch(`${url}${path}`, { headers: { authorization: `Bearer ${key}` } }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });

/** Rate limits that never refuse in the multi-node tests' load. */
export const OPEN_LIMITS = { perSecond: 1_000_000, perMinute: 10_000_000, perDay: 100_000_000 };

/**
 * A config file for gateway processes on PostgreSQL: `/api/` to `upstream` at `priceMicros`, and
 * a default plan that pays every request from credits (no quota) and never rate-limits, beside
 * `plans`. Returns its path.
 */
export function paidConfig(upstream: string, priceMicros: number, plans: Record<string, unknown> = {}): string {
  const path = join(mkdtempSync(join(tmpdir(), 'tollgate-config-')), 'tollgate.config.json');
  writeFileSync(path, JSON.stringify({
    routes: [{ path: '/api/', upstream, priceMicros }],
    plans: { default: { limits: OPEN_LIMITS, burst: 1_000_000, monthlyQuota: 0, overage: 'credits' }, ...plans },
  }));
  return path;
}
