/**
 * The packed form of a small entry in the memory tier: one Latin-1 string holding every field,
 * the header list and the body. A string of n one-byte characters costs V8 about 16 + n bytes; an
 * entry as objects costs about 600 bytes besides its strings and body (the entry object, five
 * boxed times, a Buffer and its ArrayBuffer, the header list's arrays). The memory tier keeps cold
 * entries packed and unpacks one when it is read (`memory.ts`).
 *
 * Layout: a flags byte, the status (2 bytes), the times as variable-length integers (the four
 * deadlines relative to `storedAt`; any time that is not a safe integer is a marker and 8 bytes of
 * IEEE double), the validators, the URL (only its length when the key ends with it), the host,
 * the Vary names, tags and data dependencies, the headers, then the body to the end. Header names,
 * hosts and Vary names are numbers into a table of atoms shared by all entries, and a header pair
 * whose value is not per response (not a date, validator, length or cookie) is a number into a
 * table of pairs: a catalogue's thousands of `Content-Type: application/json` take one table slot.
 * Both tables only grow, to a bound; past it a string is written out instead.
 */
import type { Entry } from '../entry.js';
import { atomAt, atomOf, pairAt, pairOf } from '../intern.js';

/** Largest body (bytes) kept packed: above it the Buffer's own cost (≈ 185 bytes) is small beside the body, and copies cost more. */
export const PACK_LIMIT = 4096;

const FLAG_SHARED = 1;
const FLAG_ESI = 2;
const FLAG_ETAG = 4;
const FLAG_LAST_MODIFIED = 8;
const FLAG_URL_IN_KEY = 16;
const FLAG_DEPS = 32;
const FLAG_LOAD_MS = 64;

/** Characters past Latin-1: a string holding one cannot be packed byte for byte. */
const WIDE = /[^\u0000-\u00ff]/;

/** Thrown inside {@link packEntry} when a string is not Latin-1 (the entry then stays unpacked). */
const NOT_LATIN1 = Symbol('not latin-1');

/** The writer's scratch buffer, grown as needed (packing is synchronous: one at a time). */
let buf = Buffer.allocUnsafeSlow(4096);
let at = 0;
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

function room(n: number): void {
  if (at + n <= buf.length) return;
  const next = Buffer.allocUnsafeSlow(Math.max(buf.length * 2, at + n));
  buf.copy(next, 0, 0, at);
  buf = next;
}

function uint(n: number): void {
  room(8);
  while (n >= 128) {
    buf[at++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
}

/** A time or count: an even varint (zigzag of `v - base`, doubled) when it is a safe integer, else 1 then 8 bytes of double. */
function num(v: number, base: number): void {
  const d = v - base;
  if (Number.isSafeInteger(d) && Math.abs(d) < 2 ** 49) uint((d >= 0 ? d * 2 : -d * 2 - 1) * 2);
  else {
    uint(1);
    room(8);
    f64[0] = v;
    for (let i = 0; i < 8; i++) buf[at++] = f64Bytes[i]!;
  }
}

/** A string's length (times `scale`, so callers can mark it) then its characters, one byte each. */
function str(s: string, scale = 1): void {
  if (WIDE.test(s)) throw NOT_LATIN1;
  uint(s.length * scale);
  room(s.length);
  at += buf.write(s, at, 'latin1');
}

/** An atom's number (odd) or the string itself (its length doubled: even). */
function atomic(s: string): void {
  const id = atomOf(s);
  if (id >= 0) uint(id * 2 + 1);
  else str(s, 2);
}

function list(items: readonly string[], write: (s: string) => void): void {
  uint(items.length);
  for (const s of items) write(s);
}

/**
 * `entry` as one Latin-1 string, or undefined when it stays as objects: a body over
 * {@link PACK_LIMIT}, compressed variants, a body left in a store's medium, or a string that is
 * not Latin-1. `key` is the key it is stored under (the URL is not repeated when the key ends with it).
 */
export function packEntry(entry: Entry, key: string): string | undefined {
  if (entry.body.length > PACK_LIMIT || entry.encoded !== undefined || entry.source !== undefined) return undefined;
  at = 0;
  try {
    const urlInKey = entry.url.length > 0 && key.endsWith(entry.url);
    let flags = urlInKey ? FLAG_URL_IN_KEY : 0;
    if (entry.shared) flags |= FLAG_SHARED;
    if (entry.esi === true) flags |= FLAG_ESI;
    if (entry.etag !== undefined) flags |= FLAG_ETAG;
    if (entry.lastModified !== undefined) flags |= FLAG_LAST_MODIFIED;
    if (entry.deps !== undefined) flags |= FLAG_DEPS;
    if (entry.loadMs !== undefined) flags |= FLAG_LOAD_MS;
    room(3);
    buf[at++] = flags;
    buf[at++] = entry.status >> 8;
    buf[at++] = entry.status & 255;
    num(entry.storedAt, 0);
    num(entry.initialAge, 0);
    num(entry.staleAt, entry.storedAt);
    num(entry.swrUntil, entry.storedAt);
    num(entry.sieUntil, entry.storedAt);
    num(entry.expiresAt, entry.storedAt);
    if (entry.etag !== undefined) str(entry.etag);
    if (entry.lastModified !== undefined) str(entry.lastModified);
    if (urlInKey) uint(entry.url.length);
    else str(entry.url);
    atomic(entry.host);
    list(entry.vary, atomic);
    list(entry.tags, str);
    if (entry.deps !== undefined) list(entry.deps, str);
    if (entry.loadMs !== undefined) num(entry.loadMs, 0);
    uint(entry.headers.length);
    for (const [name, value] of entry.headers) {
      const id = pairOf(name, value);
      if (id >= 0) uint(id * 2 + 1);
      else {
        uint(0);
        atomic(name);
        str(value);
      }
    }
    room(entry.body.length);
    at += entry.body.copy(buf, at);
  } catch (error) {
    if (error === NOT_LATIN1) return undefined;
    throw error;
  }
  return buf.toString('latin1', 0, at);
}

/** Reads a packed string from its start: the cursor and the primitives. */
class Reader {
  i = 0;
  constructor(readonly p: string) {}

  byte(): number {
    return this.p.charCodeAt(this.i++);
  }

  uint(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      const b = this.p.charCodeAt(this.i++);
      n += (b & 127) * scale;
      if (b < 128) return n;
      scale *= 128;
    }
  }

  num(base: number): number {
    const v = this.uint();
    if (v === 1) {
      for (let k = 0; k < 8; k++) f64Bytes[k] = this.p.charCodeAt(this.i++);
      return f64[0]!;
    }
    const z = v / 2;
    return base + (z % 2 === 0 ? z / 2 : -(z + 1) / 2);
  }

  str(): string {
    const n = this.uint();
    return this.p.slice(this.i, (this.i += n));
  }

  atomic(): string {
    const v = this.uint();
    if (v % 2 === 1) return atomAt((v - 1) / 2);
    return this.p.slice(this.i, (this.i += v / 2));
  }

  /** A list of atoms (`atomic`) or of strings. */
  list(atomic: boolean): string[] {
    const n = this.uint();
    if (n === 0) return EMPTY_LIST;
    const out = new Array<string>(n);
    for (let k = 0; k < n; k++) out[k] = atomic ? this.atomic() : this.str();
    return out;
  }
}

const EMPTY_LIST: string[] = Object.freeze([]) as unknown as string[];
const EMPTY_HEADERS: Array<[string, string]> = Object.freeze([]) as unknown as Array<[string, string]>;
const EMPTY_BODY = Buffer.alloc(0);

/** Node's own Latin-1 writer on every Buffer (what `write(s, offset, length, 'latin1')` calls after checking its arguments). */
interface Latin1Writer {
  latin1Write(s: string, offset: number, length: number): number;
}

/** Bytes of the slabs unpacked bodies are cut from. */
const SLAB = 32 * 1024;
let slab = Buffer.allocUnsafeSlow(0);
let slabAt = 0;

/**
 * `length` bytes for an unpacked body, cut from a slab of this module's own: an ArrayBuffer per
 * body costs more than a microsecond to make, and Node's shared pool would let unrelated buffers
 * keep a slab alive. Entries are unpacked and packed again in the same order (the hot ring is
 * first in, first out), so a slab is let go soon after the last body cut from it cools.
 */
function bodySlice(length: number): Buffer {
  if (slabAt + length > slab.length) {
    slab = Buffer.allocUnsafeSlow(Math.max(SLAB, length));
    slabAt = 0;
  }
  const body = slab.subarray(slabAt, slabAt + length);
  // Kept 8-aligned, like Node's pool.
  slabAt = (slabAt + length + 7) & ~7;
  return body;
}

/** The entry `packed` holds (made by {@link packEntry} for `key`): new objects, equal field values. */
export function unpackEntry(packed: string, key: string): Entry {
  const r = new Reader(packed);
  const flags = r.byte();
  const status = (r.byte() << 8) | r.byte();
  const storedAt = r.num(0);
  const initialAge = r.num(0);
  const staleAt = r.num(storedAt);
  const swrUntil = r.num(storedAt);
  const sieUntil = r.num(storedAt);
  const expiresAt = r.num(storedAt);
  const etag = flags & FLAG_ETAG ? r.str() : undefined;
  const lastModified = flags & FLAG_LAST_MODIFIED ? r.str() : undefined;
  const url = flags & FLAG_URL_IN_KEY ? key.slice(key.length - r.uint()) : r.str();
  const host = r.atomic();
  const vary = r.list(true);
  const tags = r.list(false);
  const deps = flags & FLAG_DEPS ? r.list(false) : undefined;
  const loadMs = flags & FLAG_LOAD_MS ? r.num(0) : undefined;
  const count = r.uint();
  const headers = count === 0 ? EMPTY_HEADERS : new Array<[string, string]>(count);
  for (let k = 0; k < count; k++) {
    const v = r.uint();
    headers[k] = v % 2 === 1 ? pairAt((v - 1) / 2) : [r.atomic(), r.str()];
  }
  const length = packed.length - r.i;
  const body = length === 0 ? EMPTY_BODY : bodySlice(length);
  if (length > 0) (body as unknown as Latin1Writer).latin1Write(packed.slice(r.i), 0, length);
  const entry: Entry = { status, headers, body, storedAt, initialAge, staleAt, swrUntil, sieUntil, expiresAt, etag, lastModified, shared: (flags & FLAG_SHARED) !== 0, url, host, vary, tags };
  if (deps !== undefined) entry.deps = deps;
  if (loadMs !== undefined) entry.loadMs = loadMs;
  if (flags & FLAG_ESI) entry.esi = true;
  return entry;
}

/** Heap bytes of a packed string: V8's one-byte string, header included, rounded to 8. */
export function packedBytes(packed: string): number {
  return (16 + packed.length + 7) & ~7;
}
