/**
 * Content-coding negotiation (RFC 9110 §12.5.3): which stored encoding of an entry a request's
 * `Accept-Encoding` prefers. Pure; the hit path memoizes it per header value.
 */

import type { Coding } from '../entry.js';

/** A content coding the cache can store. */
export type { Coding };

/** What a request accepts: q-value per coding, `*`, and whether identity may be sent. */
interface Accepted {
  q: Map<string, number>;
  star: number | undefined;
}

function parse(header: string): Accepted {
  const q = new Map<string, number>();
  let star: number | undefined;
  for (const part of header.split(',')) {
    const [rawName, ...params] = part.split(';');
    const name = rawName!.trim().toLowerCase();
    if (name === '') continue;
    let value = 1;
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k?.trim().toLowerCase() !== 'q' || v === undefined) continue;
      const n = Number(v.trim());
      value = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
    }
    // "x-gzip" is gzip (RFC 9110 §8.4.1.3).
    const coding = name === 'x-gzip' ? 'gzip' : name;
    if (coding === '*') star = value;
    else q.set(coding, Math.max(q.get(coding) ?? 0, value));
  }
  return { q, star };
}

/**
 * The coding to send: the available one with the highest q-value above 0 (ties go to the order
 * of `available`, the server's preference), unless the client rates identity higher; else
 * `'identity'`. No header: identity (clients that decode say so). Identity is excluded by
 * `identity;q=0`, or `*;q=0` without an `identity` entry: then any acceptable stored coding is
 * sent; when none is, identity is still what there is to send. `available` may name codings the
 * cache does not make (an origin's own `deflate`): they are compared by name.
 */
export function chooseCoding<C extends string = Coding>(header: string | undefined, available: readonly C[]): C | 'identity' {
  if (header === undefined || header === '' || available.length === 0) return 'identity';
  const { q, star } = parse(header);
  let best: C | undefined;
  let bestQ = 0;
  for (const coding of available) {
    const value = q.get(coding) ?? star ?? 0;
    if (value > bestQ) {
      best = coding;
      bestQ = value;
    }
  }
  if (best === undefined) return 'identity';
  // Identity not named: acceptable, at the lowest preference (as the `negotiator` package does),
  // unless `*` names it.
  const identity = q.get('identity') ?? star ?? 0;
  // A coding is sent when the client likes it at least as much as identity.
  return bestQ >= identity ? best : 'identity';
}
