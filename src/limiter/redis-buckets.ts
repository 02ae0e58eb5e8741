// Rate-limit buckets in Redis (REDIS_URL), shared by every node: the same slices as PostgreSQL's
// (shared-buckets.ts), taken with one script call each. The bucket is refilled on Redis's clock
// for the time since its last take, and expires once it would be full again: losing Redis (a
// restart without persistence) only refills the buckets.
import type { TokenStore } from './shared-buckets.ts';

// KEYS[1] the bucket; ARGV capacity, tokens per ms, want. Returns what it took and what is left
// (as a string: Redis turns a Lua number into an integer).
const TAKE = `
local cap, perMs, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]), tonumber(b[2])
if tokens == nil then tokens, at = cap, now end
tokens = math.min(cap, tokens + math.max(0, now - at) * perMs)
local taken = math.min(want, math.floor(tokens))
tokens = tokens - taken
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) / perMs) + 1000)
return {taken, tostring(tokens)}`;

const CONNECT_MS = 10_000;

export type RedisTokenStore = TokenStore & { close(): Promise<void> };

export async function createRedisBuckets(url: string, onError: (err: Error) => void): Promise<RedisTokenStore> {
  // Loaded here, not at startup: a gateway without REDIS_URL never holds its 5 MB of heap.
  const { createClient } = await import('redis');
  const client = createClient({ url });
  // A dropped connection is reconnected by the client; takes meanwhile fail, and their requests with them.
  client.on('error', onError);
  // The client retries a first connection for ever: a gateway that cannot reach Redis says so.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis at ${new URL(url).host} did not answer within ${CONNECT_MS / 1000} s`)), CONNECT_MS);
  });
  try {
    await Promise.race([client.connect(), late]);
  } catch (err) {
    client.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return {
    async take(accountId, window, capacity, perMs, want) {
      const [taken, tokens] = (await client.eval(TAKE, { keys: [`tollgate:bucket:${accountId}:${window}`], arguments: [String(capacity), String(perMs), String(want)] })) as [number, string];
      return { taken, tokens: Number(tokens) };
    },
    async close() {
      await client.close();
    },
  };
}
