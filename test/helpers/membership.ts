/**
 * Waiting for cluster membership without polling or sleeping: resolves once a cache's peers are
 * the expected ones, checked now and again at every `membership` event (or `error` event, for the
 * failures a test provokes), rejecting after a generous bound so a broken test fails.
 */
import type { StrataCache } from '../../src/index.js';
import type { CacheError } from '../../src/errors.js';

/** The peers `cache` knows, sorted. */
export const peersOf = (cache: StrataCache): string[] => cache.stats().peers.map((p) => p.url).sort();

/** Resolves when `cache`'s peers are exactly `expected` (any order). */
export function untilPeers(cache: StrataCache, expected: readonly string[], timeoutMs = 10_000): Promise<void> {
  const want = JSON.stringify([...expected].sort());
  if (JSON.stringify(peersOf(cache)) === want) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (JSON.stringify(peersOf(cache)) !== want) return;
      clearTimeout(timer);
      cache.off('membership', check);
      resolve();
    };
    const timer = setTimeout(() => {
      cache.off('membership', check);
      reject(new Error(`peers are ${JSON.stringify(peersOf(cache))}, expected ${want}`));
    }, timeoutMs);
    cache.on('membership', check);
  });
}

/** The next `error` event of `cache` (a membership read that failed, for instance). */
export function nextError(cache: StrataCache, timeoutMs = 10_000): Promise<CacheError> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no error event')), timeoutMs);
    cache.once('error', (error) => {
      clearTimeout(timer);
      resolve(error);
    });
  });
}
