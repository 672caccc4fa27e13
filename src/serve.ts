/**
 * Writes an entry to a response: status, stored headers, Age, the cache status header(s), 304 for
 * a matching conditional request, HEAD without a body. The hit path: one header array per entry
 * built once, reused for every hit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { ageOf, headerOf, type BodySource, type Entry } from './entry.js';
import { noteStatus } from './observe/tracing.js';
import type { StatusHeaderMode } from './options/types.js';
import { ifRangeMatches, rangeOf, type RangeAnswer } from './range.js';

/**
 * Where a response came from. `REVALIDATED`: a stale entry the origin confirmed with a 304 (the
 * stored body was sent); `EXPIRED`: a stale entry the origin replaced with a new response.
 */
export type CacheStatus = 'HIT' | 'MISS' | 'PASS' | 'STALE' | 'PEER' | 'REVALIDATED' | 'EXPIRED';

/** RFC 9211 `Cache-Status` parameters for each status. */
const CACHE_STATUS_PARAMS: Record<CacheStatus, string> = {
  HIT: 'hit',
  STALE: 'hit; detail=stale',
  PEER: 'hit; detail=peer',
  MISS: 'fwd=uri-miss',
  PASS: 'fwd=bypass',
  REVALIDATED: 'fwd=stale; fwd-status=304',
  EXPIRED: 'fwd=stale',
};

/** The `X-Cache` value of each status (a replaced stale entry is a MISS there). */
const X_CACHE: Record<CacheStatus, string> = {
  HIT: 'HIT',
  STALE: 'STALE',
  PEER: 'PEER',
  MISS: 'MISS',
  PASS: 'PASS',
  REVALIDATED: 'REVALIDATED',
  EXPIRED: 'MISS',
};

/** The status header names and values one cache sends, precomputed from its options. */
export interface StatusHeaders {
  readonly names: readonly string[];
  readonly values: Readonly<Record<CacheStatus, readonly string[]>>;
}

/** Precomputes the cache-status header pairs for a status-header mode. */
export function statusHeaders(mode: StatusHeaderMode, cacheName: string): StatusHeaders {
  const names: string[] = [];
  if (mode === 'x-cache' || mode === 'both') names.push('x-cache');
  if (mode === 'cache-status' || mode === 'both') names.push('cache-status');
  const values = {} as Record<CacheStatus, string[]>;
  for (const status of Object.keys(CACHE_STATUS_PARAMS) as CacheStatus[]) {
    values[status] = names.map((n) => (n === 'x-cache' ? X_CACHE[status] : `${cacheName}; ${CACHE_STATUS_PARAMS[status]}`));
  }
  return { names, values };
}

/** Sets the status header(s) on a response whose headers are not sent yet. */
export function setStatusHeaders(res: ServerResponse, headers: StatusHeaders, status: CacheStatus): void {
  if (res.headersSent) return;
  noteStatus(res, status);
  const values = headers.values[status];
  for (let i = 0; i < headers.names.length; i++) res.setHeader(headers.names[i]!, values[i]!);
}

/**
 * Stored headers as a flat writeHead list. Repeated names are grouped into one array value:
 * Node's writeHead may apply the list through setHeader (when earlier middleware set a header),
 * which would keep only the last of a repeat.
 */
function flatHeaders(headers: Entry['headers'], keep?: (name: string) => boolean): Array<string | string[]> {
  const grouped = new Map<string, string | string[]>();
  for (const [name, value] of headers) {
    if (keep !== undefined && !keep(name)) continue;
    const prev = grouped.get(name);
    grouped.set(name, prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value]);
  }
  const flat: Array<string | string[]> = [];
  for (const [name, value] of grouped) flat.push(name, value);
  return flat;
}

/**
 * The header list a hit writes for `entry`: stored headers, content-length, then the age slot and
 * the status header slots, last (their values are overwritten for each response).
 */
function buildHead(entry: Entry, status: StatusHeaders): Array<string | string[]> {
  const headers = entry.headers;
  // Most entries repeat no header name: then the list is written at its exact length in one pass
  // (the memory tier builds it each time it unpacks an entry).
  const grouped = repeatsAName(headers) ? flatHeaders(headers) : undefined;
  const stored = grouped === undefined ? 2 * headers.length : grouped.length;
  const flat = new Array<string | string[]>(stored + 4 + 2 * status.names.length);
  if (grouped === undefined) {
    for (let i = 0; i < headers.length; i++) (flat[2 * i] = headers[i]![0]), (flat[2 * i + 1] = headers[i]![1]);
  } else for (let i = 0; i < stored; i++) flat[i] = grouped[i]!;
  let at = stored;
  flat[at++] = 'content-length';
  flat[at++] = String(lengthOf(entry));
  flat[at++] = 'age';
  flat[at++] = '0';
  for (const name of status.names) (flat[at++] = name), (flat[at++] = '');
  return flat;
}

/** True when some header name appears twice in `headers`. */
function repeatsAName(headers: Entry['headers']): boolean {
  for (let i = 1; i < headers.length; i++) for (let j = 0; j < i; j++) if (headers[i]![0] === headers[j]![0]) return true;
  return false;
}

/** True when `flat` (built by {@link buildHead}) ends with the age slot and the status header names of `sh`. */
function fits(flat: Array<string | string[]>, sh: StatusHeaders): boolean {
  const names = sh.names;
  const at = flat.length - 2 * names.length;
  if (flat[at - 2] !== 'age') return false;
  for (let i = 0; i < names.length; i++) if (flat[at + 2 * i] !== names[i]) return false;
  return true;
}

/** Appends the cache-status header pairs to a flat header list built for one response. */
function pushStatusHeaders(flat: Array<string | string[]>, sh: StatusHeaders, status: CacheStatus): void {
  const values = sh.values[status];
  for (let i = 0; i < sh.names.length; i++) flat.push(sh.names[i]!, values[i]!);
}

/**
 * Where a plain entry is written: a ServerResponse, or anything taking a status with a flat
 * header list, then the body (the Fetch adapter turns that into a Response without one).
 */
export interface HitSink {
  writeHead(status: number, headers: Array<string | string[]>): unknown;
  end(body?: Buffer): unknown;
}

/** Seconds of `Age` (RFC 9111 §5.1) for an entry at `now`. */
export { ageOf };

/** The bodies (and reason phrases) of the bare error statuses the cache and its proxy answer themselves. */
export const ERROR_TEXT = Object.freeze({ 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' });

/**
 * Answers a bare error status (plain text, nothing of the origin's) when the headers were not
 * sent yet; returns false, writing nothing, when they were (the caller then cuts the response).
 */
export function answerError(res: ServerResponse, status: 500 | 504): boolean {
  if (res.headersSent) return false;
  const text = ERROR_TEXT[status];
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
  return true;
}

/**
 * RFC 9110 §13.1.2 / §13.1.3: true when the client's validators match the entry, so a 304 answers.
 * If-None-Match takes precedence over If-Modified-Since.
 */
export function notModified(req: IncomingMessage, entry: Entry): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) {
    if (entry.etag === undefined) return false;
    if (inm.trim() === '*') return true;
    const want = weak(entry.etag);
    return inm.split(',').some((tag) => weak(tag.trim()) === want);
  }
  const ims = req.headers['if-modified-since'];
  // RFC 9111 §4.3.2: without Last-Modified, the stored response's Date stands in for it.
  const lastModified = ims === undefined ? undefined : (entry.lastModified ?? headerOf(entry.headers, 'date'));
  if (ims !== undefined && lastModified !== undefined) {
    const since = Date.parse(ims);
    const modified = Date.parse(lastModified);
    return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
  }
  return false;
}

/** Weak comparison (RFC 9110 §8.8.3.2): `W/"x"` matches `"x"`. */
function weak(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/** Headers a 304 carries (RFC 9110 §15.4.5). */
const NOT_MODIFIED_HEADERS = new Set(['cache-control', 'content-location', 'etag', 'expires', 'vary', 'last-modified']);

/**
 * Each entry's header list, built on its first serve (the stored entry stays plain data; the
 * memory tier's `entrySize` counts this list in an entry's overhead).
 */
const heads = new WeakMap<Entry, Array<string | string[]>>();

/** Heap bytes of an entry's hit header list besides its slots: the list's objects, its WeakMap slot, the Content-Length string. */
const HEAD_OVERHEAD = 128;

/**
 * Builds the header list a hit writes for `entry` ahead of its first hit (the memory tier calls
 * it as it stores an entry, so the list's memory is there from the start and counted in the
 * entry's size). Returns the heap bytes the list takes.
 */
export function prepareHead(entry: Entry, sh: StatusHeaders): number {
  let flat = heads.get(entry);
  if (flat === undefined || !fits(flat, sh)) heads.set(entry, (flat = buildHead(entry, sh)));
  return HEAD_OVERHEAD + 8 * flat.length;
}

/**
 * Writes `entry` to `res` as `status`. Synchronous; allocation-light on the 200 path: the header
 * list is built once per entry and its age and status slots are overwritten in place (writeHead
 * copies them into the header block before returning).
 */
export function serveEntry(req: IncomingMessage, res: HitSink, entry: Entry, context: ServeContext): void {
  const { status, now, statusHeaders: sh } = context;
  noteStatus(res, status);
  let flat = heads.get(entry);
  if (flat === undefined || !fits(flat, sh)) heads.set(entry, (flat = buildHead(entry, sh)));
  const age = String(ageOf(entry, now));
  if ((req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined) && notModified(req, entry)) {
    const kept = flatHeaders(entry.headers, (name) => NOT_MODIFIED_HEADERS.has(name));
    kept.push('age', age);
    pushStatusHeaders(kept, sh, status);
    res.writeHead(304, kept);
    res.end();
    entry.source?.release();
    return;
  }
  // RFC 9110 §14.2: a Range on a GET is answered from the stored full body, unless If-Range says
  // the client's copy is another representation.
  const range = req.headers.range;
  if (range !== undefined && req.method === 'GET' && entry.status === 200) {
    const ifRange = req.headers['if-range'] as string | undefined;
    const answer = ifRange === undefined || ifRangeMatches(ifRange, entry) ? rangeOf(range, lengthOf(entry)) : undefined;
    if (answer !== undefined && answer.kind !== 'full') return servePart(res, entry, answer, { age, status, sh, onBodyError: context.onBodyError });
  }
  const values = sh.values[status];
  const slots = flat.length - 2 * values.length;
  flat[slots - 1] = age;
  for (let i = 0; i < values.length; i++) flat[slots + 2 * i + 1] = values[i]!;
  res.writeHead(entry.status, flat);
  // HEAD: Node's ServerResponse knows the request method and sends no body.
  if (entry.source === undefined) res.end(req.method === 'HEAD' ? undefined : entry.body);
  else sendSource(res, entry.source, req.method === 'HEAD' ? undefined : [0, entry.source.length - 1], context.onBodyError);
}

/** How {@link serveEntry} writes: the status it reports, the clock, the status headers. */
export interface ServeContext {
  status: CacheStatus;
  now: number;
  statusHeaders: StatusHeaders;
  /** Hears why a body streamed from its store failed (the response is then cut off). */
  onBodyError?: (error: Error) => void;
}

/** How a pipe ends when the client went away: not a failure of the store. */
const CLIENT_GONE = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END', 'ECONNRESET', 'EPIPE']);

/** The length of an entry's body, in memory or in its source. */
function lengthOf(entry: Entry): number {
  return entry.source === undefined ? entry.body.length : entry.source.length;
}

/**
 * Sends bytes `range` of a body left in its store's medium, or none (then lets the medium go).
 * The stream is piped with back-pressure; a client that leaves closes it, and a read or digest
 * failure cuts the response off (its Content-Length is then never reached, so no client takes a
 * short body for the whole). Only a ServerResponse is given an entry with a source: the memory
 * hit path (the Fetch adapter's sink) never holds one.
 */
function sendSource(res: HitSink, source: BodySource, range: [number, number] | undefined, onError: ServeContext['onBodyError']): void {
  const out = res as ServerResponse;
  if (range === undefined) {
    source.release();
    out.end();
    return;
  }
  pipeline(source.stream(range[0], range[1]), out, (error) => {
    if (error !== undefined && error !== null && !CLIENT_GONE.has((error as NodeJS.ErrnoException).code ?? '')) onError?.(error);
  });
}

/** Writes a 206 (one range of the stored body, with the stored headers) or a 416. */
function servePart(
  res: HitSink,
  entry: Entry,
  answer: Exclude<RangeAnswer, { kind: 'full' }>,
  at: { age: string; status: CacheStatus; sh: StatusHeaders; onBodyError: ServeContext['onBodyError'] },
): void {
  const length = lengthOf(entry);
  if (answer.kind === 'unsatisfiable') {
    const flat: Array<string | string[]> = ['content-range', `bytes */${length}`, 'content-length', '0', 'age', at.age];
    pushStatusHeaders(flat, at.sh, at.status);
    res.writeHead(416, flat);
    res.end();
    entry.source?.release();
    return;
  }
  const { start, end } = answer;
  const flat = flatHeaders(entry.headers);
  flat.push('content-range', `bytes ${start}-${end}/${length}`, 'content-length', String(end - start + 1), 'age', at.age);
  pushStatusHeaders(flat, at.sh, at.status);
  res.writeHead(206, flat);
  if (entry.source === undefined) res.end(entry.body.subarray(start, end + 1));
  else sendSource(res, entry.source, [start, end], at.onBodyError);
}

/** Stored headers an assembled page does not repeat: its body is not the stored body. */
const NOT_ASSEMBLED = new Set(['etag', 'last-modified', 'content-length']);

/**
 * Writes a template entry (ESI) with the body assembled for this request. The assembled bytes
 * differ from the stored template, so the template's validators are not sent and no 304 is
 * answered (RFC 9110 §8.8: a validator names one representation's bytes).
 */
export function serveAssembled(
  req: IncomingMessage,
  res: ServerResponse,
  entry: Entry,
  body: Buffer,
  context: { status: CacheStatus; now: number; statusHeaders: StatusHeaders },
): void {
  const { status, now, statusHeaders: sh } = context;
  noteStatus(res, status);
  const flat = flatHeaders(entry.headers, (name) => !NOT_ASSEMBLED.has(name));
  flat.push('content-length', String(body.length), 'age', String(ageOf(entry, now)));
  pushStatusHeaders(flat, sh, status);
  res.writeHead(entry.status, flat);
  res.end(req.method === 'HEAD' ? undefined : body);
}
