/**
 * The stored entry and its byte encoding (disk files and peer replies). Times are absolute epoch
 * milliseconds computed once at store time, so a hit compares numbers and never re-parses headers.
 */
import type { Readable } from 'node:stream';
import { EntryDecodeError } from './errors.js';

/** One stored response: what a hit writes, plus the times freshness needs. */
export interface Entry {
  /** HTTP status code. */
  status: number;
  /** Stored response headers as `[lower-case name, value]` pairs, in order (repeats allowed). */
  headers: Array<[string, string]>;
  /** The whole body. */
  body: Buffer;
  /**
   * When the render that produced it started (epoch ms; RFC 9111 §4.2.3 request_time; never before
   * the newest invalidation already applied). Invalidation compares it with invalidation times, so
   * a render that straddled an invalidation is stale.
   */
  storedAt: number;
  /** `Age` the origin or an upstream cache reported when it was stored, in seconds. */
  initialAge: number;
  /** Fresh until this instant (epoch ms). */
  staleAt: number;
  /** May be served stale while one background refresh runs until this instant (RFC 5861). */
  swrUntil: number;
  /** May be served stale when the origin fails until this instant (RFC 5861). */
  sieUntil: number;
  /** Storage deadline: after it the entry is useless and may be dropped. */
  expiresAt: number;
  /** Validators, for conditional requests. */
  etag: string | undefined;
  lastModified: string | undefined;
  /** May be served to a request carrying `Authorization` (RFC 9111 §3.5). */
  shared: boolean;
  /** Request target (path and query) that produced it: what a regeneration requests. */
  url: string;
  /** Request host that produced it (`''` when none). */
  host: string;
  /** Lower-case names from the response's `Vary` (empty when none). */
  vary: string[];
  /** Surrogate keys / tags of the entry. */
  tags: string[];
  /**
   * Data-cache keys the render read (`cache.data.get`, `cache.data.fetch`): when one of them is
   * deleted or changes, this entry becomes stale. Absent when the render read none.
   */
  deps?: string[];
  /**
   * Milliseconds the data cache's loader took to produce it (early refresh weighs it). Absent
   * for pages and when unknown; not kept in disk files or peer replies.
   */
  loadMs?: number;
  /** The body is an HTML template with `<esi:include>` tags, assembled at serve time. Absent when not. */
  esi?: boolean;
  /**
   * Compressed copies of `body` by content coding (`options.compress`), made once when the entry
   * was stored. A hit sends the one the client prefers (`compress/negotiate.ts`). Absent when none.
   */
  encoded?: Partial<Record<'br' | 'gzip' | 'zstd', Buffer>>;
  /**
   * A large body left in its store's medium (a disk file) until it is sent: `body` is then empty
   * and `encoded` absent. Only the response cache's lookup holds such an entry (a store's
   * `open`), from finding it to sending it (or reading it whole); it is never stored.
   */
  source?: BodySource;
}

/**
 * The bodies of an entry that stay in a store's medium until sent. Single use: exactly one of
 * `stream`, `load` or `release` is called, once, on an entry's source and its views (`as`);
 * the medium (an open file) is let go when that is done.
 */
export interface BodySource {
  /** Bytes of this body. */
  readonly length: number;
  /** The codings of the compressed bodies held beside the identity body. */
  readonly codings: readonly Coding[];
  /** The compressed body in `coding` (one of `codings`), from the same medium. */
  as(coding: Coding): BodySource;
  /**
   * Bytes `start` to `end` (inclusive) of this body. A stream of the whole body is checked against
   * the digest stored with it and fails at the end when the bytes differ.
   */
  stream(start?: number, end?: number): Readable;
  /** The entry with every body read into memory and checked (for work that needs the bytes). */
  load(): Promise<Entry>;
  /** Lets the medium go without reading. */
  release(): void;
}

/** The first value of header `name` (lower-case) among stored header pairs, or undefined. */
export function headerOf(headers: readonly (readonly [string, string])[], name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}

/**
 * True when `a` and `b` are the same stored response: the same render (store time, freshness,
 * validator, body length). Entries are compared this way, not by identity: the memory tier
 * hands out a new object for an entry it kept packed.
 */
export function sameRender(a: Entry, b: Entry): boolean {
  return a.storedAt === b.storedAt && a.staleAt === b.staleAt && a.etag === b.etag && a.status === b.status && a.body.length === b.body.length;
}

/** The `Age` of `entry` at `now`, in seconds (RFC 9111 §4.2.3): what it had when stored plus the time since. */
export function ageOf(entry: Entry, now: number): number {
  return entry.initialAge + Math.max(0, Math.floor((now - entry.storedAt) / 1000));
}

const CODINGS = new Set(['br', 'gzip', 'zstd']);

/** The content codings a stored entry may hold a compressed body in. */
export type Coding = 'br' | 'gzip' | 'zstd';

const EMPTY = Buffer.alloc(0);

const MAGIC = 0x53434531; // 'SCE1'
/** Upper bound on the encoded metadata, so a hostile peer reply cannot make us parse megabytes of JSON. */
const MAX_META = 256 * 1024;

type Meta = Omit<Entry, 'body' | 'encoded'>;

/**
 * Encodes an entry as bytes: magic, meta length, JSON metadata, raw body (no base64), then the
 * compressed bodies in the order `meta.encoded` lists them. The metadata records every length, so
 * a truncated file or peer reply is refused, not served short.
 */
export function encodeEntry(entry: Entry): Buffer {
  // Its bodies are elsewhere: encoding it would store an empty body.
  if (entry.source !== undefined) throw new TypeError('an entry with a source is never encoded: load() it first');
  const meta: Meta & { bodyLength: number; encoded?: Array<[string, number]> } = {
    status: entry.status,
    headers: entry.headers,
    storedAt: entry.storedAt,
    initialAge: entry.initialAge,
    staleAt: entry.staleAt,
    swrUntil: entry.swrUntil,
    sieUntil: entry.sieUntil,
    expiresAt: entry.expiresAt,
    etag: entry.etag,
    lastModified: entry.lastModified,
    shared: entry.shared,
    url: entry.url,
    host: entry.host,
    vary: entry.vary,
    tags: entry.tags,
    bodyLength: entry.body.length,
  };
  // Optional fields are written only when present, so entries without them encode as before.
  if (entry.deps !== undefined && entry.deps.length > 0) meta.deps = entry.deps;
  if (entry.esi === true) meta.esi = true;
  const extra = entry.encoded === undefined ? [] : (Object.entries(entry.encoded) as Array<[string, Buffer]>);
  if (extra.length > 0) meta.encoded = extra.map(([coding, bytes]) => [coding, bytes.length]);
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const out = Buffer.allocUnsafe(8 + json.length + entry.body.length + extra.reduce((n, [, b]) => n + b.length, 0));
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(json.length, 4);
  json.copy(out, 8);
  let at = 8 + json.length;
  at += entry.body.copy(out, at);
  for (const [, bytes] of extra) at += bytes.copy(out, at);
  return out;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isOptStr = (v: unknown): v is string | undefined => v === undefined || typeof v === 'string';
const isStrArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);

/** Where the bodies of encoded entry bytes lie: offsets from the start of the encoding. */
export interface EntryLayout {
  /** Every field but the bodies (`body` empty, no `encoded`). */
  head: Entry;
  /** Bytes of metadata: magic, length, JSON. The identity body starts here. */
  metaEnd: number;
  /** The identity body's length. */
  bodyLength: number;
  /** Each compressed body, in the order of the encoding: coding, start, length. */
  encoded: Array<[Coding, number, number]>;
}

/**
 * The metadata length of encoded entry bytes from their first 8 bytes (so a reader can fetch
 * just the metadata of a large entry).
 * @throws EntryDecodeError
 */
export function metaLengthOf(first: Buffer): number {
  if (first.length < 8 || first.readUInt32BE(0) !== MAGIC) throw new EntryDecodeError('not an entry (bad magic)');
  const metaLength = first.readUInt32BE(4);
  if (metaLength > MAX_META) throw new EntryDecodeError(`bad metadata length ${metaLength}`);
  return metaLength;
}

/**
 * Decodes the metadata of encoded entry bytes, given at least their first `8 + metaLength` bytes
 * and the length of the whole encoding, and checks that the recorded body lengths add up to it.
 * Every field is checked: bytes from a disk or a peer are untrusted.
 * @throws EntryDecodeError
 */
export function decodeLayout(start: Buffer, total: number): EntryLayout {
  const metaLength = metaLengthOf(start);
  if (8 + metaLength > start.length || 8 + metaLength > total) throw new EntryDecodeError(`bad metadata length ${metaLength}`);
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(start.toString('utf8', 8, 8 + metaLength)) as Record<string, unknown>;
  } catch (cause) {
    throw new EntryDecodeError('metadata is not JSON', { cause });
  }
  if (meta === null || typeof meta !== 'object') throw new EntryDecodeError('metadata is not an object');
  const { status, headers } = meta;
  if (!isNum(status) || !Number.isInteger(status) || status < 100 || status > 599) throw new EntryDecodeError('bad status');
  if (!Array.isArray(headers) || !headers.every((h) => Array.isArray(h) && h.length === 2 && isStr(h[0]) && isStr(h[1]))) {
    throw new EntryDecodeError('bad headers');
  }
  for (const f of ['storedAt', 'initialAge', 'staleAt', 'swrUntil', 'sieUntil', 'expiresAt'] as const) {
    if (!isNum(meta[f])) throw new EntryDecodeError(`bad ${f}`);
  }
  if (!isOptStr(meta.etag) || !isOptStr(meta.lastModified) || !isStr(meta.url) || !isStr(meta.host)) {
    throw new EntryDecodeError('bad validators or url');
  }
  if (typeof meta.shared !== 'boolean' || !isStrArray(meta.vary) || !isStrArray(meta.tags)) throw new EntryDecodeError('bad flags');
  if (meta.deps !== undefined && !isStrArray(meta.deps)) throw new EntryDecodeError('bad deps');
  if (meta.esi !== undefined && meta.esi !== true) throw new EntryDecodeError('bad esi flag');
  const { bodyLength, encoded: encodedMeta, ...fields } = meta;
  const lengths = encodedMeta ?? [];
  if (!Array.isArray(lengths) || !lengths.every((e) => Array.isArray(e) && e.length === 2 && CODINGS.has(e[0]) && Number.isInteger(e[1]) && e[1] >= 0)) {
    throw new EntryDecodeError('bad encoded bodies');
  }
  const extraLength = (lengths as Array<[string, number]>).reduce((n, [, l]) => n + l, 0);
  const rest = total - 8 - metaLength;
  if (typeof bodyLength !== 'number' || !Number.isInteger(bodyLength) || bodyLength < 0 || bodyLength + extraLength !== rest) {
    throw new EntryDecodeError(`bad body length: ${rest} bytes, expected ${String(bodyLength)} + ${extraLength}`);
  }
  const encoded: EntryLayout['encoded'] = [];
  let at = 8 + metaLength + bodyLength;
  for (const [coding, length] of lengths as Array<[Coding, number]>) {
    encoded.push([coding, at, length]);
    at += length;
  }
  return { head: { ...(fields as unknown as Meta), body: EMPTY }, metaEnd: 8 + metaLength, bodyLength, encoded };
}

/**
 * Decodes bytes produced by {@link encodeEntry}. Every field is checked: bytes from a disk or a
 * peer are untrusted, and a malformed entry must never be served.
 * @throws EntryDecodeError
 */
export function decodeEntry(bytes: Uint8Array): Entry {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return bodiesOf(decodeLayout(buf, buf.length), buf);
}

/** The entry of `layout` with its bodies taken from `payload`, the encoding it was decoded from (not copied). */
export function bodiesOf(layout: EntryLayout, payload: Buffer): Entry {
  const { metaEnd, bodyLength } = layout;
  const entry: Entry = { ...layout.head, body: payload.subarray(metaEnd, metaEnd + bodyLength) };
  if (layout.encoded.length > 0) {
    entry.encoded = {};
    for (const [coding, at, length] of layout.encoded) entry.encoded[coding] = payload.subarray(at, at + length);
  }
  return entry;
}
