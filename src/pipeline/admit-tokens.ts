// Stage 3 on AI routes: price the request by its model and reserve its worst case from the
// prepaid balance before anything goes upstream. meter() settles it to the tokens actually used.
import type { Config } from '../config.ts';
import type { Store } from '../db/store.ts';
import { GatewayError } from '../errors.ts';
import { findPrice } from '../meters/prices.ts';
import { isRecord } from '../json.ts';
import { bare, type EndpointKind } from '../meters/provider.ts';
import { PROVIDERS } from '../meters/providers.ts';
import { AiExchange, reservationMicros } from '../meters/token-meter.ts';
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
  if (ctx.plan?.byok && typeof own === 'string' && own !== '') {
    ctx.providerKey = own;
    return { kind, byok: true };
  }
  ctx.providerKey = config.providerKeys[provider];
  if (ctx.providerKey === undefined) throw new GatewayError('PROVIDER_NOT_CONFIGURED', {
    detail: ctx.plan?.byok ? 'Send your provider key in X-Provider-Key.' : `The gateway has no ${provider} key.`,
  });
  return { kind, byok: false };
}

export function admitTokens(ctx: RequestContext, body: Buffer, byok: boolean, config: Config, store: Store): void {
  const provider = PROVIDERS[ctx.route!.meter!];
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new GatewayError('BAD_REQUEST', { detail: 'The request body is not valid JSON.' });
  }
  if (!isRecord(json)) throw new GatewayError('BAD_REQUEST', { detail: 'The request body must be a JSON object.' });
  const call = provider.parse(ctx.req.url!, json);
  const sent = call.rewritten ? Buffer.from(JSON.stringify(call.rewritten)) : body;
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
  const reserved = reservationMicros(price, sent.length, call.choices * (call.maxOutputTokens ?? price.maxOutput));
  if (!store.debit(ctx.account!.id, reserved, 'reserve', ctx.requestId)) {
    throw new GatewayError('INSUFFICIENT_CREDITS', { detail: 'The prepaid balance cannot cover this request at its max_tokens; top up credits or lower max_tokens.' });
  }
  ctx.ai = new AiExchange(provider, call, price, reserved, sent);
}
