// The one file a Next.js app needs to keep its cache in stratacache (docs/next.md): ISR pages,
// route handlers and fetch entries (`cacheHandler`), and 'use cache' / 'use cache: remote'
// results (`cacheHandlers`, see use-cache-handler.mjs), in one cache whose invalidations reach
// every instance sharing its Redis. A custom server imports `cache` to put `cache.wrap` in front.
import { createCache, redisStore } from 'stratacache';
import { createNextCacheHandler, createNextUseCacheHandler } from 'stratacache/next';

// No REDIS_URL (as during `next build`): this process keeps its entries in memory only.
const redis = process.env.REDIS_URL ? redisStore({ url: process.env.REDIS_URL }) : undefined;

export const cache = createCache({
  stores: redis ? [redis] : [],
  data: { stores: redis ? [redis] : [] },
});

export const useCacheHandler = createNextUseCacheHandler(cache);
export default createNextCacheHandler(cache);
