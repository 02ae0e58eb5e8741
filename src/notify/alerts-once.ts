// Alerts across several nodes. Each node decides an account's alerts from its own view, so two
// nodes can both see balance.low cross; the alert state they share (account_alerts) says which
// fired first. A node commits its notices against the stored state, read under the row's lock:
// an event whose alert is disarmed there already (another node fired it) is dropped, and the
// state written is the stored one moved on by what this node decided.
import type { AlertState, Notice } from '../storage/ports.ts';

/** The stored state of an account's alerts; null fields: not decided yet (armed). */
export interface StoredState {
  lowArmed: boolean | null;
  depletedArmed: boolean | null;
  quotaPeriod: string | null;
  quotaPercent: number;
}

/** `notices` in order, each event kept only if the stored state (moved on by the notices before it) lets it fire. */
export function fireOnce(notices: readonly Notice[], stored: ReadonlyMap<string, StoredState>): Notice[] {
  const state = new Map<string, StoredState>();
  return notices.map((n) => {
    const s = state.get(n.accountId) ?? { ...(stored.get(n.accountId) ?? { lowArmed: null, depletedArmed: null, quotaPeriod: null, quotaPercent: 0 }) };
    state.set(n.accountId, s);
    const e = n.event;
    let fires = false;
    if (e === undefined) {
      merge(s, n.alerts);
    } else if (e.type === 'balance.low') {
      fires = s.lowArmed !== false;
      s.lowArmed = false;
    } else if (e.type === 'balance.depleted') {
      fires = s.depletedArmed !== false;
      s.depletedArmed = false;
    } else if (e.type === 'quota.threshold') {
      const { period, percent } = e.data as { period: string; percent: number };
      fires = !(s.quotaPeriod === period && s.quotaPercent >= percent);
      if (fires) {
        s.quotaPeriod = period;
        s.quotaPercent = percent;
      }
    } else {
      fires = true;
    }
    const alerts: AlertState = {
      lowArmed: s.lowArmed ?? n.alerts.lowArmed, depletedArmed: s.depletedArmed ?? n.alerts.depletedArmed,
      quotaPeriod: s.quotaPeriod, quotaPercent: s.quotaPercent,
    };
    return { accountId: n.accountId, alerts, event: fires ? e : undefined };
  });
}

/**
 * A notice without an event (a re-arm, a new threshold) moves the stored state on: balance.low as
 * this node decided it; balance.depleted only when not decided yet (money coming in re-arms it in
 * the ledger's transaction, migrations/pg/0010); the quota's percentages only forward within a
 * period (a node still in the previous period can move it back: its next percentage may fire twice).
 */
function merge(s: StoredState, mine: AlertState): void {
  s.lowArmed = mine.lowArmed;
  s.depletedArmed ??= mine.depletedArmed;
  if (mine.quotaPeriod !== null && (s.quotaPeriod !== mine.quotaPeriod || mine.quotaPercent > s.quotaPercent)) {
    s.quotaPeriod = mine.quotaPeriod;
    s.quotaPercent = mine.quotaPercent;
  }
}
