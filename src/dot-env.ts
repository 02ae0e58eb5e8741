// ./.env, loaded by the entry points before loadConfig() reads the environment: what is already
// set in the environment wins, as with `node --env-file` and dotenv. Node's own parser
// (util.parseEnv) reads the values; it takes a line without "=" as the start of a name that runs
// on to the next "=", lines later, so such a line is refused here first, by number only (a stray
// line may be a pasted secret).
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

const DOT_ENV = '.env';

const ASSIGNMENT = /^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=\s*(.*)$/;
const QUOTES = new Set(['"', "'", '`']);

export class DotEnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DotEnvError';
  }
}

/** Adds the variables of `path` (when it exists) that `env` does not have; throws DotEnvError. */
export function loadDotEnv(env: Record<string, string | undefined>, path = DOT_ENV): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new DotEnvError(`cannot read ${path}: ${(err as Error).message}`);
  }
  check(text, path);
  for (const [name, value] of Object.entries(parseEnv(text))) {
    if (env[name] === undefined) env[name] = value;
  }
}

function check(text: string, path: string): void {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = ASSIGNMENT.exec(line);
    if (!m) throw new DotEnvError(`${path} line ${i + 1}: expected NAME=value (a name of letters, digits and _)`);
    // A quoted value may run over several lines, to its closing quote (unclosed: this line only).
    const quote = m[1][0];
    if (quote && QUOTES.has(quote) && !m[1].includes(quote, 1)) {
      const end = lines.findIndex((l, j) => j > i && l.includes(quote));
      if (end !== -1) i = end;
    }
  }
}

/** For the entry points: loads ./.env into `env`, or exits 78 (EX_CONFIG) with one line on stderr. */
export function loadDotEnvOrExit(env: Record<string, string | undefined>): void {
  try {
    loadDotEnv(env);
  } catch (err) {
    if (!(err instanceof DotEnvError)) throw err;
    process.stderr.write(`tollgate: ${err.message}\n`);
    process.exit(78);
  }
}
