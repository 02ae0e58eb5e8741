// The commander tree. Errors are not printed here: every parse error becomes a CommanderError
// that index.ts turns into one line on stderr and exit 2.
import { Command, CommanderError } from 'commander';
import { accountsCommand } from './accounts.ts';
import { billingCommand, webhooksCommand } from './billing.ts';
import { creditsCommand } from './credits.ts';
import { UsageError } from './errors.ts';
import { keysCommand } from './keys.ts';
import { systemCommands } from './system.ts';
import { usageCommand } from './usage.ts';

/** Without a subcommand commander prints the whole help to stderr; we say it in one line instead. */
function missingCommand(cmd: Command) {
  return (err: CommanderError): never => {
    if (err.code === 'commander.help') {
      const path = cmd.parent ? `tollgate ${cmd.name()}` : 'tollgate';
      throw new UsageError(`missing command: ${path} <${cmd.commands.map((c) => c.name()).join('|')}> (see ${path} --help)`);
    }
    throw err;
  };
}

function group(program: Command, name: string, description: string, add: (group: Command) => void): void {
  const cmd = program.command(name).description(description);
  cmd.exitOverride(missingCommand(cmd));
  add(cmd);
}

export function buildProgram(): Command {
  const program = new Command('tollgate')
    .description('Tollgate: API keys, plans, rate limits, quotas and prepaid credits in front of an HTTP API')
    // Set before any subcommand exists: commander copies these settings into each one it creates.
    .configureOutput({ writeErr: () => {}, outputError: () => {} })
    .showSuggestionAfterError(true);
  program.exitOverride(missingCommand(program));

  systemCommands(program);
  group(program, 'accounts', 'manage accounts', accountsCommand);
  group(program, 'keys', 'issue, list, revoke and rotate API keys', keysCommand);
  group(program, 'credits', 'grant prepaid credits and read the ledger', creditsCommand);
  usageCommand(program);
  group(program, 'billing', 'Stripe: an account\'s billing state, reporting metered overage', billingCommand);
  group(program, 'webhooks', 'received Stripe events: list them, replay one', webhooksCommand);
  return program;
}
