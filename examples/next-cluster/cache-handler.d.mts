// Types of cache-handler.mjs, for the TypeScript that imports it (server.ts).
import type { StrataCache } from 'stratacache';
import type { NextCacheHandlerClass, NextUseCacheHandler } from 'stratacache/next';

export declare const cache: StrataCache;
export declare const useCacheHandler: NextUseCacheHandler;
declare const CacheHandler: NextCacheHandlerClass;
export default CacheHandler;
