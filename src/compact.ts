/**
 * The compact in-memory layout of an entry as objects, and what it costs. The memory tier keeps
 * an entry it does not pack (`stores/pack.ts`: a body over 4 KiB, compressed variants) in this
 * layout ({@link compactEntry}, in place: same object, same fields, same values) and charges it
 * {@link entrySize} bytes, which follow the heap the layout really takes (`npm run bench:memory`
 * measures both), so a `maxSize` bounds memory as a user reads it; an unpacked (hot) entry is
 * charged this too.
 *
 * What makes it compact: a body in an ArrayBuffer of its own size (a small body cut from Node's
 * 8 KiB buffer pool would keep the whole pool slab alive), header pairs shared between entries
 * when equal (a `[name, value]` pair is frozen and interned unless its value is per response:
 * dates, validators, lengths, cookies), the header list and the Vary and tag lists of exact
 * length (an empty one is one shared frozen array), and host names interned.
 */
import type { Entry } from './entry.js';
import { MAX_INTERNED_VALUE, pairAt, pairOf, PER_RESPONSE, shared } from './intern.js';

/** The one empty list every entry without Vary names, tags or headers shares. Frozen: never mutate an entry's lists, replace them. */
const EMPTY_LIST: string[] = Object.freeze([]) as unknown as string[];
const EMPTY_HEADERS: Array<[string, string]> = Object.freeze([]) as unknown as Array<[string, string]>;
const EMPTY_BODY = Buffer.alloc(0);

/** One stored header pair, shared with every entry holding the same pair when its value is not per response. */
function pairFor(name: string, value: string): [string, string] {
  const id = pairOf(name, value);
  return id >= 0 ? pairAt(id) : [shared(name), value];
}

/** `bytes` in an ArrayBuffer of exactly its length (a copy when it is a view into a larger one). */
function own(bytes: Buffer): Buffer {
  if (bytes.length === 0) return EMPTY_BODY;
  if (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length) return bytes;
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}

/** `list`, or the shared empty list when it is empty. */
function listOf(list: string[]): string[] {
  return list.length === 0 ? EMPTY_LIST : list;
}

/**
 * Puts `entry` in the compact layout, in place (it stays the same object, with equal field
 * values), and returns it. An entry with a `source` (bodies left in a store's medium) is left as it is.
 */
export function compactEntry(entry: Entry): Entry {
  if (entry.source !== undefined) return entry;
  const headers = entry.headers;
  if (headers.length === 0) entry.headers = EMPTY_HEADERS;
  else if (!Object.isFrozen(headers[0])) {
    // Allocated at its exact length: a list grown by push keeps spare capacity.
    const out = new Array<[string, string]>(headers.length);
    for (let i = 0; i < headers.length; i++) out[i] = pairFor(headers[i]![0], headers[i]![1]);
    entry.headers = out;
  }
  entry.body = own(entry.body);
  if (entry.encoded !== undefined) for (const coding of Object.keys(entry.encoded) as Array<keyof typeof entry.encoded>) entry.encoded[coding] = own(entry.encoded[coding]!);
  entry.host = shared(entry.host);
  entry.vary = listOf(entry.vary);
  entry.tags = listOf(entry.tags);
  return entry;
}

/**
 * Bytes of heap an entry takes besides its strings, bodies and lists, as measured by
 * `npm run bench:memory` on Node 20 (x64): the entry object and its five boxed times (≈ 230), the
 * body's Buffer and ArrayBuffer objects (≈ 185), and the memory tier's key and LRU bookkeeping and
 * the invalidation index's note of the URL (≈ 195). The key's characters and the header list a hit
 * writes are charged by the memory tier as it stores the entry.
 */
export const ENTRY_OVERHEAD = 610;

/** Heap bytes of a string of `length` characters beyond a pointer to it (header, rounded up). */
function stringBytes(s: string): number {
  return 24 + s.length;
}

/**
 * Bytes an entry is charged for in a byte-bounded store: what its compact layout takes in memory
 * (bodies, strings, lists and a fixed overhead). A header pair whose value is not per response is
 * charged only its slot: equal pairs are shared between entries.
 */
export function entrySize(entry: Entry): number {
  let size = ENTRY_OVERHEAD + entry.body.length + stringBytes(entry.url) + entry.vary.length * 8 + entry.tags.length * 8;
  if (entry.encoded !== undefined) for (const bytes of Object.values(entry.encoded)) size += 184 + bytes.length;
  for (const [name, value] of entry.headers) size += PER_RESPONSE.has(name) || value.length > MAX_INTERNED_VALUE ? 72 + stringBytes(value) : 16;
  for (const tag of entry.tags) size += stringBytes(tag);
  if (entry.deps !== undefined) for (const dep of entry.deps) size += 8 + stringBytes(dep);
  return size;
}
