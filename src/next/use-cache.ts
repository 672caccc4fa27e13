/**
 * Next's `cacheHandlers` (`'use cache'`, `'use cache: remote'`) over a stratacache data cache:
 * the bytes of each cached function result with its tags and lifetimes. Tags revalidated on any
 * node (or invalidated with `cache.invalidateTags`) reach the entries here; the page's implicit
 * (soft) tags are checked in `get`, so `getExpiration` answers `Infinity` as Next documents for
 * a handler that does so.
 */
import createDebug from 'debug';
import type { NextCore } from './core.js';
import type { NextUseCacheEntry, NextUseCacheHandler } from './types.js';

const debug = createDebug('stratacache:next');

/** An entry's fields but its value, as stored beside the bytes. */
type Meta = Omit<NextUseCacheEntry, 'value'>;

/** A stream over `bytes`, new for every reader (Next reads a returned entry's stream once). */
function streamOf(bytes: Buffer): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.length > 0) controller.enqueue(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      controller.close();
    },
  });
}

/** Reads a stream whole; rejects when it errors (a partial entry is not kept). */
async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(chunks);
}

/** The `'use cache'` handler of one cache (see {@link createNextUseCacheHandler}). */
export function useCacheHandler(core: NextCore): NextUseCacheHandler {
  // Sets in progress on this node: a get of the same key waits for it (Next requires it). Only
  // the promise of our own write is kept, never Next's pending entry, and only until it settles.
  const pending = new Map<string, Promise<void>>();
  return {
    async get(cacheKey, softTags) {
      const writing = pending.get(cacheKey);
      if (writing !== undefined) await writing;
      const entry = await core.find(cacheKey);
      if (entry === undefined) return undefined;
      const meta = core.meta<Meta>(entry);
      if (meta === undefined) return undefined;
      // Next's hard limit: past `expire` the entry is a miss (Next checks it too).
      if (Date.now() > meta.timestamp + meta.expire * 1000) return undefined;
      const reach = core.reach(entry, { tags: softTags });
      if (reach === 'hard') {
        debug('use cache get %s: invalidated (hard)', cacheKey);
        return undefined;
      }
      // A soft invalidation: served once more while Next renders it again (a negative
      // revalidate is always in the past, as Next's own handler does for a stale tag).
      return { ...meta, revalidate: reach === 'soft' ? -1 : meta.revalidate, value: streamOf(entry.body) };
    },

    async set(cacheKey, pendingEntry) {
      let done!: () => void;
      const writing = new Promise<void>((resolve) => (done = resolve));
      pending.set(cacheKey, writing);
      try {
        const entry = await pendingEntry;
        // `expire: 0` is dynamic: Next renders it on every read and never serves a stored copy.
        if (entry.expire === 0) return;
        const body = await bytesOf(entry.value);
        const { value: _value, ...meta } = entry;
        core.keep(cacheKey, core.entry(cacheKey, { body, meta, tags: entry.tags, createdAt: Math.min(entry.timestamp, core.renderTime()), lifetime: entry.expire * 1000 }));
        debug('use cache set %s', cacheKey);
      } catch (error) {
        debug('use cache set %s failed: %s', cacheKey, (error as Error | undefined)?.message);
      } finally {
        if (pending.get(cacheKey) === writing) pending.delete(cacheKey);
        done();
      }
    },

    // Invalidations reach this node as they happen (Redis stream, peers): nothing to fetch.
    refreshTags: () => Promise.resolve(),

    // Infinity: the soft tags are checked in get (Next's documented contract for that answer).
    getExpiration: () => Promise.resolve(Infinity),

    updateTags: (tags, durations) => core.revalidate(tags, durations),
  };
}
