/**
 * The tier list of `options.stores` (each store already checked to have get, set and delete by
 * the options resolver), split once at construction into the memory tier (a {@link MemoryStore}
 * in the list, else none: the cache makes one from its `maxSize`) and the lower tiers, fastest
 * first.
 */
import { MemoryStore } from './memory.js';
import type { CacheStore } from './store.js';

/** A validated tier list. */
export interface Tiers {
  /** The memory store named in the list, or undefined when the cache makes its own. */
  readonly memory: MemoryStore | undefined;
  /** Every other store, in the order given (fastest first). */
  readonly lower: readonly CacheStore[];
}

/**
 * Splits a tier list: each store listed at most once, at most one memory store and, when there
 * is one, first (the list is ordered fastest first).
 * @throws RangeError naming `options.<path>[i]` and what it got.
 */
export function resolveTiers(path: string, stores: readonly CacheStore[]): Tiers {
  let memory: MemoryStore | undefined;
  const lower: CacheStore[] = [];
  stores.forEach((store, i) => {
    if (stores.indexOf(store) !== i) throw new RangeError(`expected options.${path}[${i}] to be a store not already listed, got the same ${store.name} store again`);
    if (!(store instanceof MemoryStore)) lower.push(store);
    else if (i === 0) memory = store;
    else throw new RangeError(`expected options.${path}[${i}] to be a lower tier (a memory store must come first: tiers are listed fastest first), got a memory store`);
  });
  return { memory, lower };
}
