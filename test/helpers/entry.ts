/** A stored entry for tests: fresh for a minute from `now`, plain text, shared; override any field. */
import type { Entry } from '../../src/entry.js';

export function testEntry(over: Partial<Entry> = {}, now = Date.now()): Entry {
  return {
    status: 200,
    headers: [['content-type', 'text/plain']],
    body: Buffer.from('hello'),
    storedAt: now,
    initialAge: 0,
    staleAt: now + 60_000,
    swrUntil: now + 60_000,
    sieUntil: now + 60_000,
    expiresAt: now + 60_000,
    etag: undefined,
    lastModified: undefined,
    shared: true,
    url: '/x',
    host: '',
    vary: [],
    tags: [],
    ...over,
  };
}
