/**
 * Building what the data cache stores and answers: entries with absolute times, and the
 * `DataResponse` a caller gets.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Entry } from '../entry.js';
import { STALE_ON_ERROR_STATUSES } from '../options/defaults.js';
import type { RawResponse } from './fetch.js';
import type { DataResponse, DataStatus } from './types.js';

/** RFC 5861 §4: the errors stale-if-error covers. */
export const SERVER_ERRORS: ReadonlySet<number> = new Set(STALE_ON_ERROR_STATUSES);

/** An entry for a value or a fetched response, with absolute times. */
export function newEntry(
  what: { status: number; headers: Array<[string, string]>; body: Buffer; url: string; tags: string[] },
  times: { now: number; storedAt?: number; staleAt: number; swrUntil: number; sieUntil: number; initialAge?: number },
): Entry {
  return {
    status: what.status,
    headers: what.headers,
    body: what.body,
    storedAt: times.storedAt ?? times.now,
    initialAge: times.initialAge ?? 0,
    staleAt: times.staleAt,
    swrUntil: times.swrUntil,
    sieUntil: times.sieUntil,
    expiresAt: Math.max(times.staleAt, times.swrUntil, times.sieUntil),
    etag: undefined,
    lastModified: undefined,
    shared: true,
    url: what.url,
    host: '',
    vary: [],
    tags: what.tags,
  };
}

/** Every header of a response not stored, as pairs (for the caller, not the cache). */
export function headerPairs(headers: OutgoingHttpHeaders | RawResponse['headers']): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else out.push([name, String(value)]);
  }
  return out;
}

export function toResponse(source: { status: number; headers: Array<[string, string]>; body: Buffer }, cache: DataStatus): DataResponse {
  const headers: Record<string, string> = {};
  for (const [name, value] of source.headers) headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  const body = source.body;
  return {
    status: source.status,
    headers,
    body,
    cache,
    json: () => Promise.resolve().then(() => JSON.parse(body.toString('utf8')) as unknown),
    text: () => body.toString('utf8'),
  };
}