/**
 * The stored entry most tests start from: the public `makeEntry` (src/testing.ts, the one entry
 * factory) with this suite's defaults: fresh for a minute from `now` (stale-while-revalidate and
 * stale-if-error end then too), plain text, shared, url `/x`, no host; override any field.
 */
import type { Entry } from '../../src/entry.js';
import { makeEntry } from '../../src/testing.js';

export function testEntry(over: Partial<Entry> = {}, now = Date.now()): Entry {
  const fresh = now + 60_000;
  return makeEntry({
    headers: [['content-type', 'text/plain']],
    storedAt: now,
    staleAt: fresh,
    swrUntil: fresh,
    sieUntil: fresh,
    expiresAt: fresh,
    shared: true,
    url: '/x',
    host: '',
    ...over,
  });
}
