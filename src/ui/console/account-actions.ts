// The account page's actions, each through the admin API's operations (so each writes its audit
// row, naming the console's signed-in token): change plan, grant or deduct credits with a
// reason, suspend or reactivate, create, revoke and rotate keys. A new key is shown on the
// answer to its POST, once, and never again.
import { InvalidInputError } from '../../db/admin.ts';
import { parseDollars } from '../../money.ts';
import { html } from '../html.ts';
import { redirect, UiRefusal, type UiReply } from '../http.ts';
import type { NewKeyDoc } from '../../admin/shapes.ts';
import { consolePage, seg, type ConsoleCtx } from './context.ts';

/** Rotation: the old key keeps working this long, so clients can switch. */
const ROTATE_GRACE_S = 24 * 3600;

const back = (id: string, done: string) => redirect(`/accounts/${seg(id)}?done=${done}`);

export async function changePlan(ctx: ConsoleCtx, form: URLSearchParams): Promise<UiReply> {
  const id = ctx.params.id;
  await ctx.ops.updateAccount(id, { plan: form.get('plan') ?? '' });
  return back(id, 'plan');
}

export async function changeStatus(ctx: ConsoleCtx, form: URLSearchParams): Promise<UiReply> {
  const id = ctx.params.id;
  const status = form.get('status');
  if (status !== 'active' && status !== 'suspended') throw new UiRefusal(400, 'The status is "active" or "suspended".');
  await ctx.ops.updateAccount(id, { status });
  return back(id, status);
}

export async function moveCredits(ctx: ConsoleCtx, form: URLSearchParams): Promise<UiReply> {
  const id = ctx.params.id;
  const reason = (form.get('reason') ?? '').trim();
  if (!reason) throw new InvalidInputError('a reason is required');
  let amountMicros: number;
  try {
    amountMicros = parseDollars((form.get('amount') ?? '').trim());
  } catch (err) {
    throw new InvalidInputError(`amount: ${(err as Error).message}`);
  }
  if (form.get('direction') === 'deduct') await ctx.ops.deductCredits(id, { amountMicros, reason });
  else await ctx.ops.grantCredits(id, { amountMicros, reason });
  return back(id, 'credits');
}

function shownOnce(ctx: ConsoleCtx, title: string, key: NewKeyDoc, extra = ''): UiReply {
  return consolePage(ctx, title, html`<p>Copy the key now: it is shown this once and cannot be read again.${extra}</p>
<p class="secret" id="new-key">${key.key}</p><p>Key id <code>${key.id}</code>, prefix <code>${key.prefix}</code>.</p>
<p><a href="/accounts/${seg(key.accountId)}">Back to the account</a></p>`);
}

export async function createKey(ctx: ConsoleCtx, form: URLSearchParams): Promise<UiReply> {
  const name = (form.get('name') ?? '').trim();
  return shownOnce(ctx, 'New key', await ctx.ops.createKey({ accountId: ctx.params.id, name: name || null }));
}

export async function revokeKey(ctx: ConsoleCtx): Promise<UiReply> {
  const key = await ctx.ops.revokeKey(ctx.params.id);
  return back(key.accountId, 'revoked');
}

export async function rotateKey(ctx: ConsoleCtx): Promise<UiReply> {
  const rotated = await ctx.ops.rotateKey(ctx.params.id, ROTATE_GRACE_S);
  return shownOnce(ctx, 'Key rotated', rotated.new, ` The old key ${rotated.old.id} keeps working until ${rotated.old.expiresAt}.`);
}
