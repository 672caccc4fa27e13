/**
 * `stratacache/next`: Next.js's two cache extension points over a stratacache cache, so Next's
 * entries live in its tiers (memory, Redis, peers) and Next's tag revalidation is stratacache's
 * invalidation, reaching every node (see docs/next.md):
 *
 * - {@link createNextCacheHandler}: the class for `cacheHandler` (ISR pages, route handlers, the
 *   fetch cache);
 * - {@link createNextUseCacheHandler}: the object for `cacheHandlers` (`'use cache'`,
 *   `'use cache: remote'`).
 *
 * `next` is never imported: its interfaces are written out in `types.ts`.
 */
import { createCache, StrataCache } from '../cache.js';
import type { CacheOptions } from '../options/types.js';
import { MemoryStore } from '../stores/memory.js';
import { coreOf } from './core.js';
import { IncrementalStore } from './incremental.js';
import type { NextCacheHandlerClass, NextCacheHandlerInstance, NextGetContext, NextIncrementalValue, NextSetContext, NextUseCacheHandler } from './types.js';
import { useCacheHandler } from './use-cache.js';

export type {
  NextCacheControl,
  NextCacheHandlerClass,
  NextCacheHandlerInstance,
  NextCacheHandlerValue,
  NextGetContext,
  NextIncrementalValue,
  NextSetContext,
  NextUseCacheEntry,
  NextUseCacheHandler,
} from './types.js';

/**
 * The cache Next's entries go to: a {@link StrataCache} (share one between both handlers and a
 * custom server's `cache.wrap`), or the options to create one with. From options, `data.stores`
 * defaults to the stores of `stores` below memory (Next's entries are data-cache entries, so a
 * `redisStore` in `stores` holds them too). Both handlers given the same options object share
 * one cache.
 */
export type NextCacheSource = StrataCache | CacheOptions;

const created = new WeakMap<CacheOptions, StrataCache>();

/** The cache of a {@link NextCacheSource}. */
function cacheOf(source: NextCacheSource): StrataCache {
  if (source instanceof StrataCache) return source;
  if (source === null || typeof source !== 'object') throw new TypeError(`expected options to be a StrataCache or cache options, got ${String(source)}`);
  let cache = created.get(source);
  if (cache === undefined) {
    const stores = source.stores;
    const data = source.data?.stores === undefined && Array.isArray(stores) ? { ...source.data, stores: stores.filter((s) => !(s instanceof MemoryStore)) } : source.data;
    cache = createCache(data === undefined ? source : { ...source, data });
    created.set(source, cache);
  }
  return cache;
}

/**
 * The class to export from the module Next's `cacheHandler` option names (ISR pages, route
 * handlers, `fetch` and `unstable_cache` entries): `export default createNextCacheHandler(cache)`.
 * Next makes one instance per request; they all use this one cache. `revalidateTag` /
 * `revalidatePath` become invalidations of the cache (hard without a profile or with
 * `expire: 0`, soft with a profile: stale while Next renders again) and reach every node sharing
 * its invalidations (Redis stream, `invalidation.propagate` to peers).
 * @throws TypeError or RangeError for invalid options (as `createCache`).
 */
export function createNextCacheHandler(source: NextCacheSource = {}): NextCacheHandlerClass {
  const store = new IncrementalStore(coreOf(cacheOf(source)));
  return class StrataNextCacheHandler implements NextCacheHandlerInstance {
    /** Next passes its context (dev, serverDistDir, ...); the cache needs none of it. */
    constructor(_ctx?: unknown) {}

    get(key: string, ctx: NextGetContext) {
      return store.get(key, ctx);
    }

    set(key: string, data: NextIncrementalValue | null, ctx: NextSetContext) {
      return store.set(key, data, ctx);
    }

    revalidateTag(tags: string | string[], durations?: { expire?: number }) {
      return store.revalidateTag(tags, durations);
    }

    /** Nothing is kept per request. */
    resetRequestCache(): void {}
  };
}

/**
 * The object to export from the module Next's `cacheHandlers` option names, for `default`
 * (`'use cache'`) and/or `remote` (`'use cache: remote'`):
 * `export default createNextUseCacheHandler(cache)`.
 * @throws TypeError or RangeError for invalid options (as `createCache`).
 */
export function createNextUseCacheHandler(source: NextCacheSource = {}): NextUseCacheHandler {
  return useCacheHandler(coreOf(cacheOf(source)));
}
