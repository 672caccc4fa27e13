/**
 * In-memory tier: lru-cache bounded by bytes. Answers synchronously, so a memory hit never
 * allocates a promise.
 */
import { LRUCache } from 'lru-cache';
import { compactEntry, entrySize } from '../compact.js';
import type { Entry } from '../entry.js';
import { describeValue, integerOption } from '../options/validate.js';
import { type Bytes } from '../options/units.js';
import type { CacheStore } from './store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Byte budget: each entry is charged the memory its compact layout takes (`entrySize`: bodies,
   * strings and a fixed overhead of about 600 bytes; plus its key, and the hit's header list in the
   * response cache), within 10 % of what `npm run bench:memory` measures for small pages. Past it
   * the least recently used entries are dropped. Required: unbounded is refused.
   * @default undefined (required)
   */
  maxSize: Bytes;
  /** Largest single entry in bytes; larger ones are not stored. @default maxSize */
  maxEntrySize?: Bytes;
  /** Called when an entry leaves the store because of space or age (not on replace or delete). */
  onEvict?: (key: string, entry: Entry) => void;
}

/** Byte-bounded LRU memory store (see {@link memoryStore}). */
export class MemoryStore implements CacheStore {
  readonly name = 'memory';
  readonly #lru: LRUCache<string, Entry>;
  readonly #maxEntrySize: number;
  #onEvict: ((key: string, entry: Entry) => void) | undefined;
  #prepare: ((entry: Entry) => number) | undefined;

  /**
   * @throws TypeError or RangeError naming `options.<field>` and the value it got.
   */
  constructor(options: MemoryStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError(`expected options to be an object, got ${describeValue(options)}`);
    const maxSize = integerOption('maxSize', options.maxSize, 1);
    const maxEntrySize = options.maxEntrySize === undefined ? maxSize : integerOption('maxEntrySize', options.maxEntrySize, 1);
    if (maxEntrySize > maxSize) throw new RangeError(`expected options.maxEntrySize to be at most options.maxSize (${maxSize}), got ${maxEntrySize}`);
    this.#onEvict = options.onEvict;
    this.#maxEntrySize = maxEntrySize;
    this.#lru = new LRUCache<string, Entry>({
      maxSize,
      maxEntrySize,
      sizeCalculation: entrySize,
      dispose: (value, key, reason) => {
        if (reason === 'evict' || reason === 'expire') this.#onEvict?.(key, value);
      },
    });
  }

  /**
   * Sets the eviction listener when the cache did not create this store itself (a memory store
   * passed in `options.stores` becomes the memory tier, and the data cache's dependency index
   * must hear of its evictions). Internal.
   * @internal
   */
  listenEvictions(onEvict: (key: string, entry: Entry) => void): void {
    this.#onEvict = onEvict;
  }

  /** The entry under `key`; `now` (epoch ms) lets a caller that already read the clock pass it. */
  get(key: string, now = Date.now()): Entry | undefined {
    const entry = this.#lru.get(key);
    // Past its storage deadline an entry is useless: drop it on read. This replaces lru-cache's
    // per-entry TTL, whose staleness clock costs every lookup a check and a timer.
    if (entry !== undefined && entry.expiresAt <= now) {
      this.#lru.delete(key);
      // Leaving by age: onEvict's contract (lru-cache reports this removal as a plain delete).
      this.#onEvict?.(key, entry);
      return undefined;
    }
    return entry;
  }

  /** True when an entry of `bytes` (as `entrySize` counts them) is small enough to be kept. */
  accepts(bytes: number): boolean {
    return bytes <= this.#maxEntrySize;
  }

  /**
   * Sets what the store does to each entry it keeps besides compacting it (the response cache
   * builds the header list a hit writes); `prepare` returns the heap bytes it added, charged to
   * the entry. Internal.
   * @internal
   */
  prepareWith(prepare: (entry: Entry) => number): void {
    this.#prepare = prepare;
  }

  /**
   * Stores `entry` in the compact layout (in place: `get` returns this same object), charged its
   * `entrySize`, its key's characters and what the store's `prepare` added.
   */
  set(key: string, entry: Entry): void {
    const compact = compactEntry(entry);
    const size = entrySize(compact) + key.length + (this.#prepare?.(compact) ?? 0);
    this.#lru.set(key, compact, { size });
  }

  delete(key: string): void {
    this.#lru.delete(key);
  }

  /** Iterates keys, most recently used first (for invalidation by prefix or tag in tests and tools). */
  keys(): IterableIterator<string> {
    return this.#lru.keys();
  }

  size(): { entries: number; bytes: number } {
    return { entries: this.#lru.size, bytes: this.#lru.calculatedSize };
  }

  close(): void {
    this.#lru.clear();
  }
}

/**
 * A byte-bounded in-memory tier. In `createCache({ stores: [memoryStore({ maxSize }), ...] })` it
 * is the memory tier (in place of the one `options.maxSize` would make); on its own it is a
 * {@link CacheStore} like any other.
 * @throws TypeError or RangeError naming `options.<field>` and the value it got.
 */
export function memoryStore(options: Omit<MemoryStoreOptions, 'onEvict'>): MemoryStore {
  return new MemoryStore(options);
}
