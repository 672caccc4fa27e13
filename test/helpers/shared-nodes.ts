/**
 * Caches sharing a store, each on its own server, in front of one origin that counts its renders:
 * the nodes of the tests of a shared tier (one Redis, a Redis Cluster). Servers and caches are
 * closed after the test file.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createCache } from '../../src/index.js';
import type { CacheOptions } from '../../src/options/types.js';
import type { CacheStore } from '../../src/stores/store.js';
import assert from 'node:assert/strict';
import { closedAfterFile, listen, request, sleep } from './http.js';

const tracked = closedAfterFile();

/** An origin handler and its renders per URL. */
export interface CountingOrigin {
  renders: Map<string, number>;
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

/** A handler taking `delayMs` per render that says which render of its URL it was (`<p>/a render 2</p>`), cacheable for a minute. */
export function countingOrigin(delayMs: number): CountingOrigin {
  const renders = new Map<string, number>();
  return {
    renders,
    handler: async (req, res) => {
      const n = (renders.get(req.url ?? '') ?? 0) + 1;
      renders.set(req.url ?? '', n);
      await sleep(delayMs);
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.setHeader('cache-control', 'public, max-age=60');
      res.end(`<p>${req.url} render ${n}</p>`);
    },
  };
}

/** `count` nodes, each a cache with its own memory over the store `makeStore` gives it, on its own server. */
export async function sharedNodes<S extends CacheStore>(
  count: number,
  makeStore: () => Promise<S>,
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  cacheOptions: Omit<CacheOptions, 'stores'> = {},
): Promise<Array<{ url: string; store: S; cache: ReturnType<typeof createCache> }>> {
  const out: Array<{ url: string; store: S; cache: ReturnType<typeof createCache> }> = [];
  for (let i = 0; i < count; i++) {
    const store = await makeStore();
    const cache = createCache({ stores: [store], ...cacheOptions });
    tracked.caches.push(cache);
    const server = await listen(cache.wrap(handler));
    tracked.servers.push(server);
    out.push({ url: server.url, store, cache });
  }
  return out;
}

/** Waits until `check` holds (polled every 20 ms); throws naming `what` after `ms`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A node of a shared store whose invalidations travel through it (the Redis store's counters). */
interface InvalidatingNode {
  url: string;
  cache: { invalidate(path: string): unknown };
  store: { stats(): { invalidationsApplied: number; invalidationsPublished: number } };
}

/**
 * The shared-tier invalidation scenario: `b` serves a page (render 1, then a HIT), `a` invalidates
 * its path, and once `b` has applied it, `b` renders the page again (render 2).
 */
export async function invalidationReachesOther(a: InvalidatingNode, b: InvalidatingNode, host: Record<string, string>): Promise<void> {
  assert.equal((await request(`${b.url}/news/1`, { headers: host })).body, '<p>/news/1 render 1</p>');
  assert.equal((await request(`${b.url}/news/1`, { headers: host })).headers['x-cache'], 'HIT');
  a.cache.invalidate('/news');
  await until('b to apply the invalidation', () => b.store.stats().invalidationsApplied >= 1);
  const later = await request(`${b.url}/news/1`, { headers: host });
  assert.equal(later.body, '<p>/news/1 render 2</p>', 'b no longer serves the copy from before the invalidation');
  assert.equal(a.store.stats().invalidationsPublished, 1);
}
