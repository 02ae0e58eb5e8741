// The tollgate program as a function: arguments in, output through `io`, the exit code out.
// Exit codes: 0 done, 1 not found or refused, 2 bad arguments, 78 invalid configuration; a failure
// says why in one line on stderr. index.ts runs it for the bin; tests run it in-process.
import { CommanderError } from 'commander';
import { Cli, type CliIo } from './context.ts';
import { describeFailure, EXIT, oneLine } from './errors.ts';
import { buildProgram } from './program.ts';

export type { CliIo } from './context.ts';

/** `argv` is what follows the program's name: `['accounts', 'list', '--json']`. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const cli = new Cli(io);
  try {
    await buildProgram(cli).parseAsync([...argv], { from: 'user' });
    return cli.exitCode;
  } catch (err) {
    if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version')) return EXIT.ok;
    const { code, line } = describeFailure(err);
    io.stderr(`tollgate: ${oneLine(line)}\n`);
    return code;
  }
}
