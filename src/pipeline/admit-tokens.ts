// Stage 3 on AI routes: price the request by its model and reserve its worst case from the
// prepaid balance before anything goes upstream. meter() settles it to the tokens actually used.
import type { Config } from '../config.ts';
import { GatewayError } from '../errors.ts';
import { findPrice } from '../meters/prices.ts';
import { isRecord, repeatedField } from '../json.ts';
import { bare, type EndpointKind } from '../meters/provider.ts';
import { PROVIDERS } from '../meters/providers.ts';
import { AiExchange, reservationMicros } from '../meters/token-meter.ts';
import type { Wallets } from '../state/wallet.ts';
import { pay } from './admit.ts';
import type { RequestContext } from './context.ts';

/**
 * Checks that the gateway serves this endpoint of the provider, and picks which provider key goes
 * upstream: the client's own on a BYOK plan (then `byok` is true: the request costs the account
 * nothing), else the gateway's.
 */
export function admitProvider(ctx: RequestContext, config: Config): { kind: EndpointKind; byok: boolean } {
  const provider = ctx.route!.meter!;
  const kind = PROVIDERS[provider].endpoint(ctx.req.method!, ctx.req.url!);
  if (kind === undefined) {
    throw new GatewayError('NOT_FOUND', { detail: `This gateway does not serve ${ctx.req.method} ${bare(ctx.req.url!)} of the ${provider} API.` });
  }
  const own = ctx.req.headers['x-provider-key'];
  const byok = ctx.plan?.byok === true && typeof own === 'string' && own !== '';
  if (kind === 'free' && PROVIDERS[provider].listsModels(ctx.req.method!, ctx.req.url!)) {
    // The list shows what this customer can call: priced models (any, with its own key) the plan allows.
    const { models } = ctx.plan!;
    const keep = (model: string) => (byok || findPrice(config.prices, model) !== undefined) && (!models || models.includes(model));
    ctx.modelFilter = (list) => PROVIDERS[provider].filterModels(list, keep);
  }
  if (byok) {
    ctx.providerKey = own as string;
    return { kind, byok: true };
  }
  ctx.providerKey = config.providerKeys[provider];
  if (ctx.providerKey === undefined) throw new GatewayError('PROVIDER_NOT_CONFIGURED', {
    detail: ctx.plan?.byok ? 'Send your provider key in X-Provider-Key.' : `The gateway has no ${provider} key.`,
  });
  return { kind, byok: false };
}

export function admitTokens(ctx: RequestContext, body: Buffer, byok: boolean, config: Config, wallets: Wallets): void | Promise<void> {
  const provider = PROVIDERS[ctx.route!.meter!];
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new GatewayError('BAD_REQUEST', { detail: 'The request body is not valid JSON.' });
  }
  if (!isRecord(json)) throw new GatewayError('BAD_REQUEST', { detail: 'The request body must be a JSON object.' });
  const repeated = repeatedField(body);
  if (repeated !== undefined) {
    throw new GatewayError('BAD_REQUEST', { detail: `The request body has the field ${JSON.stringify(repeated)} more than once; send each field once.` });
  }
  const call = provider.parse(ctx.req.url!, json);
  const sent = call.sets ? rewrittenBody(body, json, call.sets) : body;
  const plan = ctx.plan!;
  if (plan.models && !plan.models.includes(call.model)) {
    throw new GatewayError('MODEL_NOT_ALLOWED', { detail: `Your plan does not include the model "${call.model}".` });
  }
  if (byok) {
    ctx.ai = new AiExchange(provider, call, undefined, 0, sent);
    return;
  }
  const price = findPrice(config.prices, call.model);
  if (!price) throw new GatewayError('UNKNOWN_MODEL', { detail: `The model "${call.model}" has no price on this gateway.` });
  // What costs more than tokens at the standard rate needs a price of its own: never billed short.
  if (call.tier === 'priority' && !price.priority) {
    throw new GatewayError('BAD_REQUEST', { detail: `service_tier "priority" has no price for the model "${call.model}" on this gateway.` });
  }
  if (call.maxWebSearches > 0 && price.webSearch === undefined) {
    throw new GatewayError('BAD_REQUEST', { detail: `Web search has no price for the model "${call.model}" on this gateway.` });
  }
  const reserved = reservationMicros(price, sent.length, call.choices * (call.maxOutputTokens ?? price.maxOutput), call.tier, call.maxWebSearches);
  ctx.ai = new AiExchange(provider, call, price, reserved, sent);
  return pay(ctx, wallets, reserved, 'INSUFFICIENT_CREDITS', 'The prepaid balance cannot cover this request at its max_tokens; top up credits or lower max_tokens.');
}

/**
 * The body to send in place of `body` (parsed: `json`), with the fields the gateway `sets`. Fields
 * only added go in before its closing brace, the client's bytes otherwise untouched: serializing
 * the whole request again cost more than parsing it, and grows with the prompt. A field the client
 * sent with another value means serializing it all.
 */
function rewrittenBody(body: Buffer, json: Record<string, unknown>, sets: Record<string, unknown>): Buffer {
  let added = '';
  for (const k in sets) {
    if (Object.hasOwn(json, k)) return Buffer.from(JSON.stringify({ ...json, ...sets }));
    added += `,${JSON.stringify(k)}:${JSON.stringify(sets[k])}`;
  }
  let end = body.length - 1;
  while (body[end] !== 0x7d /* } */) end--; // only blanks follow an object's closing brace
  // The object has fields before the added ones: a model at least (parse() refused it otherwise).
  return Buffer.concat([body.subarray(0, end), Buffer.from(`${added}}`)]);
}
