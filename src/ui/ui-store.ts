// What the pages read and write besides the operator's operations (admin/operations.ts): the
// console overview's figures over every account, the portal's tokens per model, the secret the
// portal's sessions are signed with and the signup claims. One implementation per backend,
// db/sqlite-ui.ts and pg/pg-ui.ts, with the same rows: the pages render them alike.
import type { Claim } from '../billing/signup-claims.ts';
import type { MaybePromise } from '../storage/ports.ts';

/** The whole gateway on one UTC day (ms), from the daily rollups. */
export interface GatewayDay { day: number; requests: number; billable: number; chargedMicros: number; errors: number }
/** Stripe revenue on one UTC day: paid credit checkouts and paid subscription invoices. */
export interface RevenueDay { day: number; micros: number }
export interface TopAccount { id: string; email: string | null; requests: number; chargedMicros: number }
export interface ModelTokens { model: string; requests: number; inputTokens: number; cachedTokens: number; outputTokens: number }

export interface OverviewRows {
  /** Days of [from, to) with requests, in any order. */
  daily: GatewayDay[];
  /** Days of [from, to) with revenue, in any order. */
  revenue: RevenueDay[];
  /** The 10 accounts charged most in [from, to) (then most requests), in that order. */
  top: TopAccount[];
}

export interface UiStore {
  /** A secret of the database (made by its migration), the same for every process on it. */
  secret(): MaybePromise<string>;
  overview(from: number, to: number): MaybePromise<OverviewRows>;
  /** The account's tokens per model since `from` (plain routes, model '', left out), in any order. */
  tokensByModel(accountId: string, from: number): MaybePromise<ModelTokens[]>;
  /** SIGNUP=checkout: the new account waits, suspended with the reason 'signup', for its payment. */
  holdForSignup(accountId: string): MaybePromise<void>;
  recordSignupClaim(sessionId: string, accountId: string, now: number): MaybePromise<void>;
  /** The key of a paid signup, the first time it is asked for; after that only that it was shown. */
  claimSignupKey(sessionId: string, now: number): MaybePromise<Claim>;
}
