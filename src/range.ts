/**
 * Byte ranges served from a stored full body (RFC 9110 §14): which part of the body a `Range`
 * request gets, and whether its `If-Range` still matches the stored representation. Pure.
 */

/** What to send for a Range request on a body of `length` bytes. */
export type RangeAnswer =
  /** Send the whole representation (no Range, an ignored Range, or an If-Range that does not match). */
  | { kind: 'full' }
  /** 206 with bytes `start`..`end` inclusive. */
  | { kind: 'partial'; start: number; end: number }
  /** 416: the range does not overlap the body. */
  | { kind: 'unsatisfiable' };

const FULL: RangeAnswer = { kind: 'full' };
const SINGLE_RANGE = /^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i;

/**
 * Answers one `Range` header on a body of `length` bytes. Only a single `bytes` range is served
 * partially; several ranges, other units and invalid syntax get the full body (a server may
 * ignore Range, RFC 9110 §14.2).
 */
export function rangeOf(range: string, length: number): RangeAnswer {
  const m = SINGLE_RANGE.exec(range);
  if (m === null) return FULL;
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return FULL;
  if (first === '') {
    // Suffix range: the last N bytes (§14.1.2).
    const n = Number(last);
    if (n === 0 || length === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, length - n), end: length - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return FULL; // invalid range-spec: ignore the header
  if (start >= length) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: last === '' ? length - 1 : Math.min(Number(last), length - 1) };
}

/**
 * RFC 9110 §13.1.5: true when `If-Range` matches the stored representation, so the range may be
 * sent. An entity-tag must match strongly (a weak tag never does); a date must equal the stored
 * Last-Modified exactly.
 */
export function ifRangeMatches(ifRange: string, stored: { etag?: string | undefined; lastModified?: string | undefined }): boolean {
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return !v.startsWith('W/') && stored.etag !== undefined && !stored.etag.startsWith('W/') && stored.etag === v;
  if (stored.lastModified === undefined) return false;
  const since = Date.parse(v);
  return Number.isFinite(since) && since === Date.parse(stored.lastModified);
}
