// fireOnce (src/notify/alerts-once.ts): the notices of one node's commit, against the alert state
// other nodes stored, each event kept only if its alert is still armed there.
import { describe, expect, it } from 'vitest';
import { fireOnce, type StoredState } from '../src/notify/alerts-once.ts';
import type { AlertState, Notice, NotificationType } from '../src/storage/ports.ts';

const ARMED: AlertState = { lowArmed: true, depletedArmed: true, quotaPeriod: null, quotaPercent: 0 };
const notice = (type: NotificationType | undefined, alerts: Partial<AlertState> = {}, data: Record<string, string | number> = {}): Notice => ({
  accountId: 'acct_a', alerts: { ...ARMED, ...alerts },
  event: type && { id: `evt_${type}`, type, accountId: 'acct_a', createdAt: 0, data },
});
const stored = (s: Partial<StoredState>) => new Map([['acct_a', { lowArmed: null, depletedArmed: null, quotaPeriod: null, quotaPercent: 0, ...s }]]);
const fired = (ns: Notice[]) => ns.map((n) => n.event?.type ?? null);

describe('fireOnce', () => {
  it('keeps an event whose alert is armed or undecided, and drops one another node fired', () => {
    const low = notice('balance.low', { lowArmed: false });
    expect(fired(fireOnce([low], stored({})))).toEqual(['balance.low']);
    expect(fired(fireOnce([low], stored({ lowArmed: true })))).toEqual(['balance.low']);
    expect(fired(fireOnce([low], stored({ lowArmed: false })))).toEqual([null]);
    const depleted = notice('balance.depleted', { depletedArmed: false });
    expect(fired(fireOnce([depleted], stored({ depletedArmed: false })))).toEqual([null]);
    expect(fired(fireOnce([depleted, depleted], stored({ depletedArmed: true })))).toEqual(['balance.depleted', null]);
  });

  it('a quota percentage fires once per period, and only upward', () => {
    const at = (percent: number, period = '2026-12') => notice('quota.threshold', { quotaPeriod: period, quotaPercent: percent }, { period, percent });
    expect(fired(fireOnce([at(80)], stored({ quotaPeriod: '2026-12', quotaPercent: 80 })))).toEqual([null]);
    expect(fired(fireOnce([at(80)], stored({ quotaPeriod: '2026-12', quotaPercent: 100 })))).toEqual([null]);
    expect(fired(fireOnce([at(100)], stored({ quotaPeriod: '2026-12', quotaPercent: 80 })))).toEqual(['quota.threshold']);
    expect(fired(fireOnce([at(80)], stored({ quotaPeriod: '2026-11', quotaPercent: 100 })))).toEqual(['quota.threshold']);
  });

  it('writes the stored state moved on: another node\'s firing is kept, this node\'s re-arm applied', () => {
    // Another node fired balance.depleted; this one re-arms balance.low (a grant it heard of).
    const [rearm] = fireOnce([notice(undefined, { lowArmed: true, depletedArmed: true })], stored({ lowArmed: false, depletedArmed: false }));
    expect(rearm.alerts).toEqual({ lowArmed: true, depletedArmed: false, quotaPeriod: null, quotaPercent: 0 });
    // Its memory is behind on the quota: the percentage another node fired stays.
    const [behind] = fireOnce([notice(undefined, { quotaPeriod: '2026-12', quotaPercent: 80 })], stored({ quotaPeriod: '2026-12', quotaPercent: 100 }));
    expect(behind.alerts).toMatchObject({ quotaPeriod: '2026-12', quotaPercent: 100 });
    // A dropped event leaves the state as stored: disarmed.
    const [dropped] = fireOnce([notice('balance.low', { lowArmed: false })], stored({ lowArmed: false, depletedArmed: true }));
    expect(dropped).toEqual({ accountId: 'acct_a', alerts: { lowArmed: false, depletedArmed: true, quotaPeriod: null, quotaPercent: 0 }, event: undefined });
  });
});
