/**
 * A tier list (`options.stores`, `options.data.stores`): checked once at construction, and split
 * into the memory tier (a {@link MemoryStore} listed first, else none: the cache makes one from
 * its `maxSize`) and the lower tiers, fastest first.
 */
import { fail } from '../options/validate.js';
import { MemoryStore } from './memory.js';
import { PendingStore } from './pending.js';
import type { CacheStore } from './store.js';

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** A validated tier list. */
export interface Tiers {
  /** The list as given (validated). */
  readonly all: readonly CacheStore[];
  /** The memory store named in the list, or undefined when the cache makes its own. */
  readonly memory: MemoryStore | undefined;
  /** Every other store, in the order given (fastest first). */
  readonly lower: readonly CacheStore[];
}

/**
 * Checks and splits a tier list: an array of stores (get, set and delete) or promises of one
 * (made {@link PendingStore}s), each listed once, at most one memory store and, when there is
 * one, first (tiers are listed fastest first).
 * @throws TypeError or RangeError naming `options.<path>[i]` and what it got.
 */
export function resolveTiers(path: string, stores: unknown): Tiers {
  if (!Array.isArray(stores)) fail(TypeError, path, 'an array of stores', stores);
  let memory: MemoryStore | undefined;
  const lower: CacheStore[] = [];
  // A promise of a store (`redisStore()` not awaited) stands in as a store that waits for it.
  const pending = new Map<PromiseLike<unknown>, PendingStore>();
  const wrap = (store: unknown, i: number): unknown => {
    if (!isThenable(store)) return store;
    let stand = pending.get(store);
    if (stand === undefined) pending.set(store, (stand = new PendingStore(store, `${path}[${i}]`)));
    return stand;
  };
  const list = (stores as unknown[]).map(wrap) as Array<CacheStore | null | undefined>;
  list.forEach((store, i) => {
    if (!store || typeof store.get !== 'function' || typeof store.set !== 'function' || typeof store.delete !== 'function') {
      fail(TypeError, `${path}[${i}]`, 'a store with get, set and delete', store);
    }
    if (list.indexOf(store) !== i) fail(RangeError, `${path}[${i}]`, 'a store not already listed', `the same ${store.name} store again`);
    if (!(store instanceof MemoryStore)) lower.push(store);
    else if (i === 0) memory = store;
    else fail(RangeError, `${path}[${i}]`, 'a lower tier (a memory store must come first: tiers are listed fastest first)', 'a memory store');
  });
  return { all: list as CacheStore[], memory, lower };
}
