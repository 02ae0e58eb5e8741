// tollgate keys create | list | revoke | rotate. A key is printed once, at creation or rotation;
// only its hash is stored.
import { Option, type Command } from 'commander';
import { MAX_LIMIT } from '../admin/input.ts';
import type { KeyDoc } from '../admin/shapes.ts';
import type { Cli, CommonOptions } from './context.ts';
import { fields, keyRows, nextPage } from './output.ts';
import { durationArg, limitArg, positiveDurationArg } from './parse.ts';

const NOT_SHOWN_AGAIN = 'Store this key now: it will not be shown again.';
const DEFAULT_GRACE = '24h';
const DEFAULT_LIMIT = 50;

interface CreateOptions extends CommonOptions { account: string; name?: string; expires?: number }
interface ListOptions extends CommonOptions { account?: string; limit: number; after?: string }
interface RotateOptions extends CommonOptions { grace: number }

function keyFields(k: KeyDoc, key: string): string[] {
  return fields([['key', key], ['id', k.id], ['account', k.accountId], ['name', k.name], ['expires', k.expiresAt ?? 'never']]);
}

export function keysCommand(group: Command, cli: Cli): void {
  group.command('create').description('issue a key for an account (printed once)')
    .requiredOption('--account <id>', 'account id')
    .option('--name <name>', 'a label for the key')
    .option('--expires <duration>', 'stop working after this long, e.g. 30d, 12h', positiveDurationArg)
    .action(async (opts: CreateOptions) => {
      const expiresAt = opts.expires === undefined ? null : new Date(Date.now() + opts.expires).toISOString();
      const created = await cli.withOps(opts, (ops) => ops.createKey({ accountId: opts.account, name: opts.name, expiresAt }));
      cli.emit(opts, created, () => [`Created key ${created.id}`, ...keyFields(created, created.key), NOT_SHOWN_AGAIN]);
    });

  group.command('list').description(`list keys (never the keys themselves), oldest first, ${DEFAULT_LIMIT} at a time`)
    .option('--account <id>', 'only this account\'s keys')
    .option('--limit <n>', `how many (at most ${MAX_LIMIT})`, limitArg, DEFAULT_LIMIT)
    .option('--after <key-id>', 'the page after this key (the "next" of the previous page)')
    .action(async (opts: ListOptions) => {
      const { account, limit, after } = opts;
      const page = await cli.withOps(opts, (ops) => ops.listKeys({ account, limit, after }));
      cli.emit(opts, page, () => [...keyRows(page.data), ...nextPage(page.next, 'keys list', { account, limit: limit === DEFAULT_LIMIT ? undefined : limit })]);
    });

  group.command('revoke').description('stop a key at once').argument('<id>', 'key id')
    .action(async (id: string, opts: CommonOptions) => {
      const key = await cli.withOps(opts, (ops) => ops.revokeKey(id));
      cli.emit(opts, key, () => [`Revoked key ${key.id} (${key.prefix}…) at ${key.revokedAt}`]);
    });

  group.command('rotate').description('issue a replacement key; the old one keeps working for the grace period')
    .argument('<id>', 'key id')
    .addOption(new Option('--grace <duration>', 'how long the old key keeps working, e.g. 24h, 15m, 0s')
      .argParser(durationArg).default(durationArg(DEFAULT_GRACE), DEFAULT_GRACE))
    .action(async (id: string, opts: RotateOptions) => {
      // A revoked key cannot be rotated: refused (exit 1). Durations are whole seconds.
      const rotated = await cli.withOps(opts, (ops) => ops.rotateKey(id, opts.grace / 1000));
      const fresh = rotated.new;
      cli.emit(opts, rotated, () => [
        `Rotated key ${rotated.old.id}: the old key stops at ${rotated.old.expiresAt}`,
        ...keyFields(fresh, fresh.key),
        NOT_SHOWN_AGAIN,
      ]);
    });
}
