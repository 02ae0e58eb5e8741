// tollgate keys create | list | revoke | rotate. A key is printed once, at creation or rotation;
// only its hash is stored.
import { Option, type Command } from 'commander';
import type { ApiKey } from '../db/admin.ts';
import type { Cli, CommonOptions } from './context.ts';
import { fields, iso, keyJson, keyRows } from './output.ts';
import { durationArg, positiveDurationArg } from './parse.ts';

const NOT_SHOWN_AGAIN = 'Store this key now: it will not be shown again.';
const DEFAULT_GRACE = '24h';

interface CreateOptions extends CommonOptions { account: string; name?: string; expires?: number }
interface ListOptions extends CommonOptions { account?: string }
interface RotateOptions extends CommonOptions { grace: number }

function keyFields(k: ApiKey, key: string): string[] {
  return fields([['key', key], ['id', k.id], ['account', k.accountId], ['name', k.name], ['expires', iso(k.expiresAt) ?? 'never']]);
}

export function keysCommand(group: Command, cli: Cli): void {
  group.command('create').description('issue a key for an account (printed once)')
    .requiredOption('--account <id>', 'account id')
    .option('--name <name>', 'a label for the key')
    .option('--expires <duration>', 'stop working after this long, e.g. 30d, 12h', positiveDurationArg)
    .action((opts: CreateOptions) => {
      const now = Date.now();
      const expiresAt = opts.expires === undefined ? null : now + opts.expires;
      const created = cli.withAdmin(opts, (admin) => admin.createKey({ accountId: opts.account, name: opts.name, expiresAt }));
      cli.emit(opts, { ...keyJson(created, now), key: created.key },
        () => [`Created key ${created.id}`, ...keyFields(created, created.key), NOT_SHOWN_AGAIN]);
    });

  group.command('list').description('list keys (never the keys themselves)')
    .option('--account <id>', 'only this account\'s keys')
    .action((opts: ListOptions) => {
      const now = Date.now();
      const keys = cli.withAdmin(opts, (admin) => {
        if (opts.account !== undefined) admin.account(opts.account);
        return admin.listKeys(opts.account);
      });
      cli.emit(opts, keys.map((k) => keyJson(k, now)), () => keyRows(keys, now));
    });

  group.command('revoke').description('stop a key at once').argument('<id>', 'key id')
    .action((id: string, opts: CommonOptions) => {
      const key = cli.withAdmin(opts, (admin) => admin.revokeKey(id));
      // The state is taken after the write: a key revoked this instant reads as revoked.
      cli.emit(opts, keyJson(key, Date.now()), () => [`Revoked key ${key.id} (${key.prefix}…) at ${iso(key.revokedAt)}`]);
    });

  group.command('rotate').description('issue a replacement key; the old one keeps working for the grace period')
    .argument('<id>', 'key id')
    .addOption(new Option('--grace <duration>', 'how long the old key keeps working, e.g. 24h, 15m, 0s')
      .argParser(durationArg).default(durationArg(DEFAULT_GRACE), DEFAULT_GRACE))
    .action((id: string, opts: RotateOptions) => {
      // A revoked key cannot be rotated: Admin refuses it (exit 1).
      const rotated = cli.withAdmin(opts, (admin) => admin.rotateKey(id, opts.grace));
      const fresh = rotated.new;
      const now = Date.now();
      cli.emit(opts, { old: keyJson(rotated.old, now), new: { ...keyJson(fresh, now), key: fresh.key } }, () => [
        `Rotated key ${rotated.old.id}: the old key stops at ${iso(rotated.old.expiresAt)}`,
        ...keyFields(fresh, fresh.key),
        NOT_SHOWN_AGAIN,
      ]);
    });
}
