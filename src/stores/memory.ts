/**
 * In-memory tier: lru-cache bounded by bytes. Answers synchronously, so a memory hit never
 * allocates a promise.
 */
import { LRUCache } from 'lru-cache';
import { entrySize, type Entry } from '../entry.js';
import type { Bytes } from '../options.js';
import type { CacheStore } from './store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Byte budget (entries are charged by {@link entrySize}). Required: unbounded is refused. */
  maxSize: Bytes;
  /** Largest single entry in bytes; larger ones are not stored. @default maxSize */
  maxEntrySize?: Bytes;
  /** Called when an entry leaves the store because of space or age (not on replace or delete). */
  onEvict?: (key: string, entry: Entry) => void;
}

/** Byte-bounded LRU memory store. */
export class MemoryStore implements CacheStore {
  readonly name = 'memory';
  readonly #lru: LRUCache<string, Entry>;
  readonly #onEvict: ((key: string, entry: Entry) => void) | undefined;

  constructor(options: MemoryStoreOptions) {
    const onEvict = options.onEvict;
    this.#onEvict = onEvict;
    this.#lru = new LRUCache<string, Entry>({
      maxSize: options.maxSize,
      maxEntrySize: options.maxEntrySize ?? options.maxSize,
      sizeCalculation: entrySize,
      ...(onEvict
        ? {
            dispose: (value, key, reason) => {
              if (reason === 'evict' || reason === 'expire') onEvict(key, value);
            },
          }
        : {}),
    });
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

  set(key: string, entry: Entry): void {
    this.#lru.set(key, entry);
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
