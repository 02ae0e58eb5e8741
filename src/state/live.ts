// What Admin reads from a running gateway's memory rather than the file (db/admin-types.ts
// LiveView): the admin listener and the customer portal see the same live balances and counts.
import type { LiveView } from '../db/admin.ts';
import type { RecentUsage } from '../storage/records.ts';
import type { GatewayState } from './state.ts';

export function liveView(state: GatewayState): LiveView {
  return {
    ...state.live,
    keyLastUsed: (hash) => state.accounts.keyLastUsed(hash),
    recent: (accountId, limit) => {
      const s = state.accounts.state(accountId);
      // Admin runs on SQLite only, where recent() answers at once.
      return s && (state.recent(s, limit) as RecentUsage[]);
    },
    commitRows: () => void state.recorder.commitRows(),
  };
}
