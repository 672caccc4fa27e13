/**
 * The parts of Next.js's cache handler interfaces that stratacache implements, written out
 * structurally so that `stratacache/next` never imports `next` (not at run time, not for its
 * types). They follow Next 16.4 (`next/dist/server/lib/incremental-cache` for `cacheHandler`,
 * `next/dist/server/lib/cache-handlers/types` for `cacheHandlers`); test/unit/next-types.test.ts
 * checks them against the installed `next`.
 */

/** Next's cache lifetime of a page or route (`revalidate` and `expire` in seconds). */
export interface NextCacheControl {
  revalidate: number | false;
  expire: number | undefined;
}

/**
 * A value of Next's incremental cache (`kind` is `APP_PAGE`, `APP_ROUTE`, `PAGES`, `FETCH`,
 * `REDIRECT` or `IMAGE`; each kind has fields of its own); stored as it is, Buffers and Maps
 * included. Only the fields read here are named.
 */
export interface NextIncrementalValue {
  kind: string;
  headers?: Record<string, string | number | string[] | undefined> | undefined;
  revalidate?: number | false | undefined;
  /** A fetch entry's tags. */
  tags?: string[] | undefined;
}

/** What `get` of a `cacheHandler` answers. */
export interface NextCacheHandlerValue {
  lastModified: number;
  value: NextIncrementalValue | null;
  cacheControl?: NextCacheControl;
}

/** The context Next passes to `get` of a `cacheHandler`. */
export interface NextGetContext {
  kind: string;
  revalidate?: number | false;
  tags?: string[];
  softTags?: string[];
}

/** The context Next passes to `set` of a `cacheHandler`. */
export interface NextSetContext {
  fetchCache?: boolean;
  tags?: string[];
  cacheControl?: NextCacheControl;
}

/** An instance of the class Next's `cacheHandler` option loads (ISR pages, route handlers, fetch cache). */
export interface NextCacheHandlerInstance {
  get(key: string, ctx: NextGetContext): Promise<NextCacheHandlerValue | null>;
  set(key: string, data: NextIncrementalValue | null, ctx: NextSetContext): Promise<void>;
  revalidateTag(tags: string | string[], durations?: { expire?: number }): Promise<void>;
  resetRequestCache(): void;
}

/** The class Next's `cacheHandler` option loads: Next makes one instance per request. */
export type NextCacheHandlerClass = new (ctx?: unknown) => NextCacheHandlerInstance;

/** An entry of a `'use cache'` handler (times in ms since the epoch, durations in seconds). */
export interface NextUseCacheEntry {
  value: ReadableStream<Uint8Array>;
  tags: string[];
  stale: number;
  timestamp: number;
  expire: number;
  revalidate: number;
}

/** The object Next's `cacheHandlers` option takes for `'use cache'` and `'use cache: remote'`. */
export interface NextUseCacheHandler {
  get(cacheKey: string, softTags: string[]): Promise<NextUseCacheEntry | undefined>;
  set(cacheKey: string, pendingEntry: Promise<NextUseCacheEntry>): Promise<void>;
  refreshTags(): Promise<void>;
  getExpiration(tags: string[]): Promise<number>;
  updateTags(tags: string[], durations?: { expire?: number }): Promise<void>;
}
