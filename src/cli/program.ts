// The commander tree. Errors are not printed here: every parse error becomes a CommanderError
// that run.ts turns into one line on stderr and exit 2.
import { Command, CommanderError } from 'commander';
import { accountsCommand } from './accounts.ts';
import { auditCommand } from './audit.ts';
import { billingCommand, webhooksCommand } from './billing.ts';
import type { Cli } from './context.ts';
import { creditsCommand } from './credits.ts';
import { UsageError } from './errors.ts';
import { keysCommand } from './keys.ts';
import { requestsCommand } from './requests.ts';
import { notificationsCommand } from './notifications.ts';
import { systemCommands } from './system.ts';
import { backupCommand } from './backup.ts';
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

function group(program: Command, cli: Cli, name: string, description: string, add: (group: Command, cli: Cli) => void): void {
  const cmd = program.command(name).description(description);
  cmd.exitOverride(missingCommand(cmd));
  add(cmd, cli);
}

export function buildProgram(cli: Cli): Command {
  const program = new Command('tollgate')
    .description('Tollgate: API keys, plans, rate limits, quotas and prepaid credits in front of an HTTP API')
    // Commander finds the program's own options anywhere on the line, so these two work before
    // and after the command; the preAction hook below hands them to the command that runs.
    .option('--db <path>', 'SQLite file (default: DATABASE_PATH, else ./data/tollgate.db)')
    .option('--url <url>', 'manage the gateway whose admin API is at this URL, with TOLLGATE_ADMIN_TOKEN (default: TOLLGATE_ADMIN_URL; without either, the file)')
    .option('--json', 'print one JSON document on stdout')
    // Set before any subcommand exists: commander copies these settings into each one it creates.
    .configureOutput({ writeOut: (text) => cli.io.stdout(text), writeErr: () => {}, outputError: () => {} })
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError(true)
    .hook('preAction', (root, command) => {
      for (const [name, value] of Object.entries(root.opts())) command.setOptionValue(name, value);
    });
  program.exitOverride(missingCommand(program));

  systemCommands(program, cli);
  backupCommand(program, cli);
  group(program, cli, 'accounts', 'manage accounts', accountsCommand);
  group(program, cli, 'keys', 'issue, list, revoke and rotate API keys', keysCommand);
  group(program, cli, 'credits', 'grant prepaid credits and read the ledger', creditsCommand);
  usageCommand(program, cli);
  group(program, cli, 'requests', 'an account\'s latest requests, one request by its id', requestsCommand);
  auditCommand(program, cli);
  group(program, cli, 'billing', 'Stripe: an account\'s billing state, reporting metered overage', billingCommand);
  group(program, cli, 'webhooks', 'received Stripe events: list them, replay one', webhooksCommand);
  group(program, cli, 'notifications', 'events sent to webhooks and email: list, resend, thresholds', notificationsCommand);
  return program;
}
