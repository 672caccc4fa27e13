/**
 * Issue 18, data side: a load that an invalidation overtakes (a tag, a delete, a change of what
 * the loader read) is never stored as fresh; callers after the invalidation load again; the
 * callers that joined before get its value as the answer to their own earlier call; and a page
 * rendered from it, through `cache.wrap`, is not served as a fresh HIT afterwards.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCache, type DataGetOptions, type StrataCache } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';
import { until } from '../helpers/origin.js';

const tracked = closedAfterFile();

/** A loader whose calls each wait for their own `release(n)`, answering `<name> v<n>`. */
function gatedLoader(name: string): { load: () => Promise<string>; calls: () => number; release: (n: number) => void } {
  const gates: Array<() => void> = [];
  const waiting: Array<Promise<void>> = [];
  let calls = 0;
  const gate = (n: number): Promise<void> => (waiting[n] ??= new Promise<void>((r) => (gates[n] = r)));
  return {
    load: async () => {
      const n = ++calls;
      await gate(n);
      return `${name} v${n}`;
    },
    calls: () => calls,
    release: (n) => {
      void gate(n);
      gates[n]!();
    },
  };
}

/** A site whose page reads `cache.data.get('price')`; counts its renders. */
async function pageSite(cache: StrataCache, load: () => Promise<string>, options: DataGetOptions): Promise<{ url: string; renders: number }> {
  const site = { url: '', renders: 0 };
  const running = await listen(
    cache.wrap(async (_req, res) => {
      const n = ++site.renders;
      const value = await cache.data.get('price', load, options);
      res.setHeader('cache-control', 'max-age=300');
      res.end(`${value} (render ${n})`);
    }),
  );
  tracked.servers.push(running);
  site.url = running.url;
  return site;
}

function cacheOf(): StrataCache {
  const cache = createCache();
  tracked.caches.push(cache);
  return cache;
}

describe('a data load overtaken by an invalidation', { timeout: 20_000 }, () => {
  test('tag (soft): joined callers get the old value, later callers load again, the old value never replaces the new one', async () => {
    const cache = cacheOf();
    const price = gatedLoader('price');
    const first = cache.data.get('price', price.load, { tags: ['prices'] });
    const joined = cache.data.get('price', price.load, { tags: ['prices'] });
    assert.equal(await until(() => price.calls() === 1), true);
    await cache.invalidateTags(['prices']);
    const after = cache.data.get('price', price.load, { tags: ['prices'] });
    assert.equal(await until(() => price.calls() === 2), true, 'a call after the invalidation starts its own load');
    price.release(2);
    assert.equal(await after, 'price v2');
    price.release(1);
    assert.equal(await first, 'price v1', 'answers the call made before the invalidation');
    assert.equal(await joined, 'price v1');
    assert.equal(await cache.data.get('price', price.load, { tags: ['prices'] }), 'price v2', 'v1 did not overwrite v2');
    assert.equal(price.calls(), 2);
    assert.equal(cache.data.stats().invalidatedLoads, 1);
  });

  test('tag (soft), no newer load: the value is stored already stale (served only inside its stale window)', async () => {
    const cache = cacheOf();
    const price = gatedLoader('price');
    const first = cache.data.get('price', price.load, { tags: ['prices'], staleWhileRevalidate: 60_000 });
    assert.equal(await until(() => price.calls() === 1), true);
    await cache.invalidateTags(['prices']);
    price.release(1);
    assert.equal(await first, 'price v1');
    // Not a fresh hit: the next call loads again (tagged values stored before their tag's invalidation are reloaded).
    const next = cache.data.get('price', price.load, { tags: ['prices'] });
    assert.equal(await until(() => price.calls() === 2), true);
    price.release(2);
    assert.equal(await next, 'price v2');
    assert.equal(cache.data.stats().hits, 0);
  });

  test('delete (hard): the loaded value is answered to its callers but not stored', async () => {
    const cache = cacheOf();
    const user = gatedLoader('user');
    const first = cache.data.get('user', user.load);
    assert.equal(await until(() => user.calls() === 1), true);
    cache.data.delete('user');
    user.release(1);
    assert.equal(await first, 'user v1');
    assert.equal(cache.data.stats().entries, 0, 'nothing stored');
    const next = cache.data.get('user', user.load);
    assert.equal(await until(() => user.calls() === 2), true, 'loaded again');
    user.release(2);
    assert.equal(await next, 'user v2');
    assert.equal(cache.data.stats().invalidatedLoads, 1);
  });

  test('a namespace clear() (hard tag) while loading: answered to its callers, not stored', async () => {
    const cache = cacheOf();
    const user = gatedLoader('user');
    const ns = cache.data.namespace('tenant:1');
    const first = ns.get('user', user.load);
    assert.equal(await until(() => user.calls() === 1), true);
    ns.clear();
    user.release(1);
    assert.equal(await first, 'user v1');
    assert.equal(cache.data.stats().entries, 0);
    const next = ns.get('user', user.load);
    assert.equal(await until(() => user.calls() === 2), true);
    user.release(2);
    assert.equal(await next, 'user v2');
  });

  test('a key the loader read changes while it runs: later callers load again, the value is stored stale', async () => {
    const cache = cacheOf();
    let inner = 0;
    const outer = gatedLoader('outer');
    const load = async (): Promise<string> => `${await cache.data.get('inner', () => `inner v${++inner}`)} + ${await outer.load()}`;
    const first = cache.data.get('outer', load);
    assert.equal(await until(() => outer.calls() === 1), true);
    cache.data.delete('inner');
    const after = cache.data.get('outer', load);
    assert.equal(await until(() => outer.calls() === 2), true, 'not joined to the load that read the old inner');
    outer.release(2);
    assert.equal(await after, 'inner v2 + outer v2');
    outer.release(1);
    assert.equal(await first, 'inner v1 + outer v1');
    assert.equal(await cache.data.get('outer', load), 'inner v2 + outer v2');
  });

  test('through cache.wrap: a page rendered while its data tag was invalidated is not served as a fresh HIT', async () => {
    const cache = cacheOf();
    const price = gatedLoader('price');
    const site = await pageSite(cache, price.load, { ttl: 60_000, tags: ['prices'] });
    const renders = (): number => site.renders;
    const page = request(`${site.url}/product`);
    assert.equal(await until(() => price.calls() === 1), true);
    await cache.invalidateTags(['prices']);
    price.release(1);
    assert.equal((await page).body, 'price v1 (render 1)');
    price.release(2);
    const next = await request(`${site.url}/product`);
    assert.notEqual(next.headers['x-cache'], 'HIT', 'the page was stored stale at birth');
    assert.equal(await until(() => renders() === 2 && price.calls() === 2), true, 'rendered again with a new load');
    assert.equal(await until(() => cache.stats().stores === 2), true);
    const fresh = await request(`${site.url}/product`);
    assert.equal(fresh.headers['x-cache'], 'HIT');
    assert.equal(fresh.body, 'price v2 (render 2)');
  });

  test('through cache.wrap: a page rendered while its data key was deleted is not served as a fresh HIT', async () => {
    const cache = cacheOf();
    const price = gatedLoader('price');
    const site = await pageSite(cache, price.load, {});
    const page = request(`${site.url}/product`);
    assert.equal(await until(() => price.calls() === 1), true);
    cache.data.delete('price');
    price.release(1);
    assert.equal((await page).body, 'price v1 (render 1)');
    price.release(2);
    const next = await request(`${site.url}/product`);
    assert.notEqual(next.headers['x-cache'], 'HIT');
    assert.equal(await until(() => cache.stats().stores === 2), true);
    assert.equal((await request(`${site.url}/product`)).body, 'price v2 (render 2)');
  });
});
