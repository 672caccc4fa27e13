/**
 * An LRU bounded by a count of entries that allocates as it fills: lru-cache allocates its slot
 * arrays for `max` entries up front (100 000 slots cost a cache ~10 ms of CPU and a few MB each),
 * but bounded by `maxSize` with every entry of size 1 it grows on demand to the same bound.
 */
import { LRUCache } from 'lru-cache';

/** An LRU of at most `max` entries (the least recently used dropped first), allocated as it fills. */
export function boundedLru<K extends {}, V extends {}>(max: number, options: Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation'> = {}): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...options, maxSize: max, sizeCalculation: () => 1 } as LRUCache.Options<K, V, unknown>);
}
