// The plain-text emails: what happened, with its figures, and what to do about it. The operator's
// copy names the account and the CLI command; the customer's speaks to the customer and shows
// the gateway's own endpoints (Stripe Checkout for credits, the billing portal) when Stripe is
// configured.
import type { Config } from '../config.ts';
import { formatMicros } from '../money.ts';
import type { OutboxEvent } from '../storage/ports.ts';

export type Audience = 'operator' | 'customer';

export interface Email {
  subject: string;
  text: string;
}

const dollars = (v: unknown): string => (typeof v === 'number' ? `$${formatMicros(v)}` : '-');
const at = (v: unknown): string => (typeof v === 'string' ? v.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '-');

export function emailFor(e: OutboxEvent, audience: Audience, config: Pick<Config, 'stripe' | 'notifications'>): Email {
  const d = e.data;
  const base = config.notifications?.publicUrl?.href.replace(/\/$/, '') ?? '';
  const you = audience === 'customer';
  const account = you ? 'your account' : `account ${e.accountId}`;
  const Account = you ? 'Your account' : `Account ${e.accountId}`;
  const lines: string[] = [];
  let subject: string;
  // How credits are added: the customer's own checkout when Stripe sells them, else the operator.
  const topUp = (): string[] => {
    const packs = config.stripe?.creditPacks.map((m) => formatMicros(m)) ?? [];
    const out: string[] = [];
    if (config.stripe) {
      out.push(`${you ? 'Buy' : 'The customer buys'} credits with Stripe Checkout: POST ${base}/_tollgate/billing/checkout with ${you ? 'your' : 'the account\'s'} API key`,
        `(Authorization: Bearer tg_…) and the body {"type":"credits","amount":"${packs[0] ?? '25.00'}"}; the answer's "url" is the payment page.`,
        `Amounts: ${packs.join(', ')}.`);
      out.push(`  curl -X POST -H "Authorization: Bearer $TOLLGATE_KEY" -d '{"type":"credits","amount":"${packs[0] ?? '25.00'}"}' ${base}/_tollgate/billing/checkout`);
    } else if (you) out.push('Ask us to add credits to your account.');
    if (!you) out.push(`Or grant credits: tollgate credits grant ${e.accountId} 10.00`);
    return out;
  };

  switch (e.type) {
    case 'balance.low':
      subject = `Balance low: ${dollars(d.balanceMicros)} left${you ? '' : ` on ${e.accountId}`}`;
      lines.push(`The prepaid balance of ${account} is ${dollars(d.balanceMicros)}, below the alert threshold of ${dollars(d.thresholdMicros)}.`,
        'Once it runs out, requests that cost credits are refused with 402 Payment Required.', '', ...topUp());
      break;
    case 'balance.depleted':
      subject = `Out of credits: requests are being refused${you ? '' : ` (${e.accountId})`}`;
      lines.push(`A request of ${account} was refused because the balance (${dollars(d.balanceMicros)}) cannot pay for it (${dollars(d.requiredMicros)}).`,
        'Requests that cost credits get 402 Payment Required until credits are added.', '', ...topUp());
      break;
    case 'quota.threshold': {
      subject = you ? `${d.percent}% of your quota used` : `${e.accountId}: ${d.percent}% of the quota used`;
      lines.push(`${Account} has used ${d.used} of ${d.limit} requests (${d.percent}%) of its plan "${d.plan}" in the period ${d.period}, which ends ${at(d.periodEnd)}.`);
      const after: Record<string, string> = {
        block: 'Past the quota, requests are refused with 402 until the period ends.',
        credits: 'Past the quota, each request is paid from prepaid credits.',
        stripe: 'Past the quota, requests go on and are billed as metered overage.',
      };
      lines.push(after[String(d.overage)] ?? '');
      if (config.stripe) {
        lines.push('', `A larger plan: POST ${base}/_tollgate/billing/checkout with {"type":"plan","plan":"…"}, or change the plan in the billing portal (GET ${base}/_tollgate/billing/portal returns its link).`);
      } else if (!you) lines.push('', `Move the account to a larger plan: tollgate accounts set-plan ${e.accountId} PLAN`);
      break;
    }
    case 'credits.added':
      subject = `Credits added: ${dollars(d.amountMicros)}`;
      lines.push(`${dollars(d.amountMicros)} ${d.kind === 'purchase' ? 'bought with Stripe Checkout were' : 'were'} added to ${account}; the balance is now ${dollars(d.balanceMicros)}.`,
        'Nothing to do.');
      break;
    case 'payment.failed':
      subject = `Payment failed${you ? '' : ` for ${e.accountId}`}: the account is suspended`;
      lines.push(`A payment of ${dollars(d.amountDueMicros)} for ${account} failed (invoice ${d.invoiceId ?? '-'}, attempt ${d.attemptCount ?? '-'}).`,
        'Requests are refused (402) until an invoice is paid.', '',
        `Update the payment method in the billing portal: GET ${base}/_tollgate/billing/portal with ${you ? 'your' : 'the account\'s'} API key returns its link.`);
      if (typeof d.hostedInvoiceUrl === 'string') lines.push(`Or pay the invoice: ${d.hostedInvoiceUrl}`);
      if (typeof d.nextPaymentAttempt === 'string') lines.push(`Stripe tries again ${at(d.nextPaymentAttempt)}.`);
      break;
    case 'subscription.changed':
      subject = `Subscription ${d.status}: plan ${d.plan}`;
      lines.push(`The subscription ${d.subscriptionId} of ${account} is now ${d.status} (was ${d.previousStatus ?? 'none'}), on the plan "${d.plan}" (was "${d.previousPlan}").`);
      if (typeof d.periodEnd === 'string') lines.push(`The current billing period ends ${at(d.periodEnd)}.`);
      if (config.stripe) lines.push(`The billing portal (GET ${base}/_tollgate/billing/portal) shows and changes it.`);
      break;
    case 'key.expiring':
      subject = `API key ${d.keyPrefix}… expires ${at(d.expiresAt)}`;
      lines.push(`The API key ${d.keyPrefix}…${d.keyName ? ` ("${d.keyName}")` : ''} of ${account} expires ${at(d.expiresAt)}; requests with it are refused after that.`, '',
        you ? 'Ask us for a new key before then and switch to it.' : `Issue its replacement (the old key keeps working for a grace period): tollgate keys rotate ${d.keyId}`);
      break;
  }
  lines.push('', `Event ${e.id} (${e.type}) at ${at(new Date(e.createdAt).toISOString())}.`);
  return { subject: `[Tollgate] ${subject}`, text: `${lines.filter((l, i, all) => l !== '' || all[i - 1] !== '').join('\n')}\n` };
}
