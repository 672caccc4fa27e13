/**
 * The data cache for a backend team: a token that lives as long as the API says (adaptive
 * lifetime), a slow API held to a soft and a hard timeout, a hot key refreshed ahead of its
 * expiry, and one user's keys dropped at once with a namespace.
 *   npx tsx examples/data-cache.ts     # prints what each call answered, then exits
 */
import { createCache, DataTimeoutError } from 'stratacache';

const cache = createCache({
  data: {
    softTimeout: 200, // a caller holding a stale value waits at most 200 ms for a fresh one
    hardTimeout: 2_000, // nobody waits more than 2 s: DataTimeoutError
    refreshAhead: 0.8, // past 80 % of its ttl, a read also refreshes the value in the background
    ttlJitter: 0.1, // values loaded together do not all expire together
  },
});

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// Adaptive lifetime: the loader learns how long its answer lives, and may refuse to store it.
async function fetchToken(): Promise<{ value: string; expiresIn: number }> {
  return { value: 'token-1', expiresIn: 5_000 };
}
const token = await cache.data.get('auth:token', async (ctx) => {
  const t = await fetchToken();
  ctx.options.ttl = t.expiresIn; // lives as long as the token
  if (t.value === '') ctx.skip(); // answered, never stored
  return t.value;
});
console.log(`token: ${token}`);

// Soft and hard timeouts: the first load is slow but answers; later a stale copy is at hand.
let version = 0;
const slowApi = async (): Promise<string> => {
  await delay(version === 0 ? 50 : 1_000);
  return `report v${++version}`;
};
console.log(await cache.data.get('report', slowApi, { ttl: 100, staleIfError: 60_000 }));
await delay(150); // expired; the stale copy stays at hand for staleIfError
console.log(`after the soft timeout: ${await cache.data.get('report', slowApi, { ttl: 100, staleIfError: 60_000 })}`);
try {
  await cache.data.get('cold-report', () => delay(1_000).then(() => 'late'), { hardTimeout: 300 });
} catch (error) {
  if (error instanceof DataTimeoutError) console.log(`hard timeout: ${error.code}`);
}

// Namespaces: every key of one user, dropped on every node without knowing the keys.
const user = cache.data.namespace('user:42');
await user.get('profile', () => ({ name: 'Ada' }));
await user.get('cart', () => ({ items: 3 }));
user.clear(); // a tag invalidation: peers and shared stores get it too
console.log(`after clear: ${JSON.stringify(await user.get('profile', () => ({ name: 'Ada Lovelace' })))}`);

const { softTimeouts, hardTimeouts, loads } = cache.data.stats();
console.log(`loads ${loads}, soft timeouts ${softTimeouts}, hard timeouts ${hardTimeouts}`);
await cache.close({ timeout: 0 });
