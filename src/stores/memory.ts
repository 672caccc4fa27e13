/**
 * In-memory tier: an LRU table bounded by bytes (`slots.ts`), small entries packed into one string
 * each (`pack.ts`). Answers synchronously, so a memory hit never allocates a promise.
 */
import { compactEntry, entrySize } from '../compact.js';
import type { Entry } from '../entry.js';
import { describeValue, integerOption } from '../options/validate.js';
import { type Bytes } from '../options/units.js';
import type { CacheStore } from './store.js';
import { packedBytes, packEntry, unpackEntry } from './pack.js';
import { Slots } from './slots.js';

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
  /**
   * Small entries kept unpacked at once besides packed: the ones read most recently. A hot
   * entry is served from objects, allocation-free; reading a packed one unpacks it (about a
   * microsecond on a hit, by `bench/cold-hit.ts`). Each unpacked 100-byte page takes about 1,500
   * bytes instead of about 300, charged against `maxSize`. 0 keeps none: every read of a small
   * entry unpacks a copy.
   * @default 1024 (HOT_ENTRIES)
   */
  hotEntries?: number;
  /** Called when an entry leaves the store because of space or age (not on replace or delete). */
  onEvict?: (key: string, entry: Entry) => void;
}

/**
 * Entries kept unpacked at once: the ones read most recently. A read of a packed entry unpacks it
 * (about a microsecond for a small page) and keeps it unpacked until this many others were unpacked
 * after it, so a hot page is served from objects, allocation-free, and a cold one costs its bytes.
 */
export const HOT_ENTRIES = 1024;

/**
 * Heap bytes a packed entry takes besides its packed string and key: its Map entry and the
 * table's array cells (`Slots`, with the spare room they grow by), as `npm run bench:memory`
 * measures them on Node 20 (x64).
 */
export const PACKED_OVERHEAD = 96;

/**
 * Heap bytes an unpacked (hot) entry takes beyond what `entrySize` counts for an entry as objects
 * and its packed string: the copies unpacking makes (each per-response header pair and its value,
 * the URL cut from the key, boxed times) and its place in the hot ring, as `npm run bench:memory`
 * measures them after a hit on each page.
 */
export const UNPACKED_OVERHEAD = 370;

/**
 * Byte-bounded LRU memory store (see {@link memoryStore}). Small entries are kept packed, one
 * Latin-1 string each (`pack.ts`); the `hotEntries` read most recently are kept unpacked
 * too, and each is charged what it takes in the form it is in.
 */
export class MemoryStore implements CacheStore {
  readonly name = 'memory';
  /** Entries by key: packed (a string) or objects; beside a hot one, its packed form. */
  readonly #slots = new Slots<Entry | string, string>();
  readonly #maxSize: number;
  readonly #maxEntrySize: number;
  /** Hot slots, oldest first from `#ringAt`: the one there is packed again when another is unpacked. */
  readonly #ring: Int32Array;
  #ringAt = 0;
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
    this.#maxSize = maxSize;
    this.#maxEntrySize = maxEntrySize;
    this.#ring = new Int32Array(options.hotEntries === undefined ? HOT_ENTRIES : integerOption('hotEntries', options.hotEntries, 0, 1 << 20)).fill(-1);
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

  /**
   * The entry under `key`, now the most recently used; `now` (epoch ms) lets a caller that
   * already read the clock pass it. The same object on every read while the entry stays hot; a
   * packed entry is unpacked into new objects with equal values.
   */
  get(key: string, now = Date.now()): Entry | undefined {
    const slot = this.#slots.slotOf(key);
    if (slot < 0) return undefined;
    const value = this.#slots.value(slot);
    const entry = typeof value === 'string' ? this.#unpack(slot, key, value) : value;
    // Past its storage deadline an entry is useless: dropped on read.
    if (entry.expiresAt <= now) {
      this.#remove(slot);
      this.#onEvict?.(key, entry);
      return undefined;
    }
    this.#slots.touch(slot);
    // Unpacked, it is charged more: others may have to leave (never this one).
    if (entry !== value) this.#evict(slot);
    return entry;
  }

  /** The entry under `key` without making it recently used or unpacking it in place (a copy when packed). */
  peek(key: string): Entry | undefined {
    const slot = this.#slots.slotOf(key);
    return slot < 0 ? undefined : this.#entryAt(slot);
  }

  /** True when an entry is kept under `key` (expired or not), without making it recently used. */
  has(key: string): boolean {
    return this.#slots.slotOf(key) >= 0;
  }

  /** True when an entry of `bytes` (as `entrySize` counts them) is small enough to be kept. */
  accepts(bytes: number): boolean {
    return bytes <= this.#maxEntrySize;
  }

  /**
   * Sets what the store does to each entry it keeps unpacked besides compacting it (the response
   * cache builds the header list a hit writes); `prepare` returns the heap bytes it added, charged
   * to the entry. Internal.
   * @internal
   */
  prepareWith(prepare: (entry: Entry) => number): void {
    this.#prepare = prepare;
  }

  /**
   * Stores `entry`, packed when it is small (then later reads return equal copies, not this
   * object) and otherwise in the compact layout, in place. Returns false, keeping nothing under
   * `key`, when what it would take is over `maxEntrySize`.
   */
  store(key: string, entry: Entry): boolean {
    const packed = packEntry(entry, key);
    const value = packed ?? compactEntry(entry);
    const size = packed !== undefined ? this.#packedSize(packed, key) : this.#objectSize(entry, key);
    const old = this.#slots.slotOf(key);
    if (size > this.#maxEntrySize) {
      if (old >= 0) this.#remove(old);
      return false;
    }
    this.#slots.set(key, value, size);
    this.#evict();
    return true;
  }

  /** Stores `entry` under `key` (see {@link MemoryStore.store}). */
  set(key: string, entry: Entry): void {
    this.store(key, entry);
  }

  delete(key: string): void {
    const slot = this.#slots.slotOf(key);
    if (slot >= 0) this.#remove(slot);
  }

  /** Iterates keys, most recently used first (for invalidation by prefix or tag in tests and tools). */
  keys(): IterableIterator<string> {
    return this.#slots.keys();
  }

  size(): { entries: number; bytes: number } {
    return { entries: this.#slots.count, bytes: this.#slots.bytes };
  }

  close(): void {
    this.#slots.clear();
    this.#ring.fill(-1);
  }

  /** Unpacks the entry of `slot` in place (the table keeps both forms while it is hot), packing the oldest hot one again. */
  #unpack(slot: number, key: string, packed: string): Entry {
    const entry = unpackEntry(packed, key);
    if (this.#ring.length === 0) return entry;
    // Charged both forms: the packed one stays, to be the entry again when it cools.
    this.#slots.replace(slot, entry, this.#objectSize(entry, key) + packedBytes(packed) + UNPACKED_OVERHEAD);
    this.#slots.setAside(slot, packed);
    const oldest = this.#ring[this.#ringAt]!;
    this.#ring[this.#ringAt] = slot;
    this.#ringAt = (this.#ringAt + 1) % this.#ring.length;
    if (oldest >= 0 && oldest !== slot) this.#repack(oldest);
    return entry;
  }

  /** Keeps `slot` packed only, when it is hot. */
  #repack(slot: number): void {
    const packed = this.#slots.aside(slot);
    if (packed === undefined) return;
    this.#slots.setAside(slot, undefined);
    this.#slots.replace(slot, packed, this.#packedSize(packed, this.#slots.key(slot)));
  }

  /** The entry of `slot` as objects: the hot or unpacked one, or a copy of the packed one. */
  #entryAt(slot: number): Entry {
    const value = this.#slots.value(slot);
    return typeof value === 'string' ? unpackEntry(value, this.#slots.key(slot)) : value;
  }

  #remove(slot: number): void {
    this.#slots.remove(slot);
  }

  /** Drops least recently used entries while over `maxSize`, telling the listener of each; `keep` stays. */
  #evict(keep = -1): void {
    while (this.#slots.bytes > this.#maxSize) {
      const slot = this.#slots.tail;
      if (slot < 0 || slot === keep) return;
      const key = this.#slots.key(slot);
      const entry = this.#onEvict === undefined ? undefined : this.#entryAt(slot);
      this.#remove(slot);
      if (entry !== undefined) this.#onEvict?.(key, entry);
    }
  }

  #packedSize(packed: string, key: string): number {
    return PACKED_OVERHEAD + packedBytes(packed) + packedBytes(key);
  }

  /** What an entry as objects takes: its compact layout, its key's characters and what `prepare` added. */
  #objectSize(entry: Entry, key: string): number {
    return entrySize(entry) + key.length + (this.#prepare?.(entry) ?? 0);
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
