// webhook: how fast the gateway answers Stripe. An account buys BENCH_WEBHOOKS credit packs (each
// a checkout the gateway creates on a local fake of Stripe's API and records), then each
// checkout.session.completed event, signed with the `stripe` package as Stripe signs it, is
// POSTed one at a time and its reply timed. Stripe waits a few seconds at most and retries what it
// did not hear back from; the target is a median well inside that (under 100 ms). No bare-proxy
// comparison: nothing else does this work.
import { join } from 'node:path';
import { billingEnv, paidCheckout, postWebhook, startFakeStripe, stripeEvent } from '../../test/fake-stripe.ts';
import type { BenchContext } from './context.ts';
import { startGateway } from './gateway.ts';
import { median, verdict } from './rounds.ts';

const PACK = '10.00';
const PACK_MICROS = 10_000_000;
const MAX_MEDIAN_MS = 100;

export async function webhookCase(ctx: BenchContext): Promise<string[]> {
  const n = ctx.webhooks;
  console.log(`\nwebhook: ${n} signed checkout.session.completed events of $${PACK} credit packs, one at a time`);
  const stripe = await startFakeStripe();
  try {
    const gateway = await startGateway({
      name: 'gateway', dir: join(ctx.dir, 'webhook'), entry: ctx.entry, accounts: 1, env: billingEnv(stripe),
      config: { routes: [{ path: '/', upstream: ctx.upstreamUrl, priceMicros: 100 }], credits: { packs: [PACK] } },
    });
    const sessions = [];
    for (let i = 0; i < n; i++) {
      sessions.push(await paidCheckout(stripe, gateway.url, gateway.firstKey, { cents: PACK_MICROS / 10_000, paymentIntent: `pi_bench_${i}` }));
    }
    const problems: string[] = [];
    const times: number[] = [];
    for (const session of sessions) {
      const res = await postWebhook(gateway.url, stripeEvent('checkout.session.completed', session));
      if (res.status !== 200) problems.push(`event answered ${res.status}: ${JSON.stringify(res.body)}`);
      times.push(res.ms);
    }
    times.sort((x, y) => x - y);
    const p99 = times[Math.ceil(0.99 * times.length) - 1];
    verdict('reply time, median', `${median(times).toFixed(2)} ms (p99 ${p99.toFixed(2)} ms, max ${times[times.length - 1].toFixed(2)} ms)`,
      `< ${MAX_MEDIAN_MS} ms`, median(times) < MAX_MEDIAN_MS, 'ABOVE TARGET');

    await gateway.stop();
    const books = gateway.books();
    const credited = books.balanceMicros - gateway.grantedMicros;
    const ok = credited === n * PACK_MICROS && books.unbalanced === 0 && books.ledgerMicros === books.balanceMicros;
    console.log(`  credited ${credited} µ$ for ${n} packs of ${PACK_MICROS}; ledger ${books.ledgerMicros} µ$, balance ${books.balanceMicros} µ$` +
      (ok ? ' (ledger = balance)' : '  MISMATCH'));
    if (!ok) problems.push(`credited ${credited} µ$ for ${n} packs of ${PACK_MICROS}; ledger ${books.ledgerMicros}, balance ${books.balanceMicros}`);
    return problems;
  } finally {
    await stripe.close();
  }
}
