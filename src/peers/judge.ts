/**
 * The two pure decisions of a response lookup on peers: which request headers to send so the
 * peer can pick the `Vary` variant, and whether an entry a peer sent may be used here. Plain
 * values in, plain values out: testable without sockets.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Entry } from '../entry.js';
import { variantKey } from '../key.js';
import { HOP_BY_HOP } from '../policy.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from './auth.js';

/**
 * Request headers never sent to a peer for variant selection: credentials (a request carrying
 * Authorization never asks peers; Cookie is sent only when a known Vary names it), the host
 * (already in the key), hop-by-hop and body headers, validators and Range (the full entry is
 * wanted; conditionals are answered locally), and the peer protocol's own headers.
 */
const NOT_FORWARDED = new Set([
  'host',
  'authorization',
  'proxy-authorization',
  'cookie',
  ...HOP_BY_HOP,
  'expect',
  'content-length',
  'content-type',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-match',
  'if-range',
  'range',
  TIMESTAMP_HEADER,
  SIGNATURE_HEADER,
]);

/** Budget in characters (names plus values) of the request headers sent with one lookup. */
export const FORWARDED_BUDGET = 3072;

/**
 * The headers sent with a lookup. `view` is the request's headers as a render would see them
 * (unkeyed headers removed). `knownVary`: the Vary names this node has seen for the key, when
 * it has: exactly those are sent (Cookie included if named). Otherwise everything a Vary
 * commonly names, within {@link FORWARDED_BUDGET}; a header left out only makes a variant that
 * depends on it a miss (see {@link acceptPeerEntry}).
 */
export function forwardedHeaders(view: IncomingHttpHeaders, knownVary: readonly string[] | undefined): Record<string, string> {
  const sent: Record<string, string> = {};
  let budget = FORWARDED_BUDGET;
  const names = knownVary ?? Object.keys(view).filter((name) => !NOT_FORWARDED.has(name));
  for (const name of names) {
    const v = view[name];
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v.join(',') : v;
    budget -= name.length + value.length;
    if (budget < 0) break;
    sent[name] = value;
  }
  return sent;
}

/** What {@link acceptPeerEntry} checks an entry against. */
export interface PeerEntryContext {
  primary: string;
  /** The headers the lookup sent ({@link forwardedHeaders}). */
  sent: Record<string, string>;
  /** The request's own headers as a render would see them. */
  view: IncomingHttpHeaders;
  /** The request carries Authorization. */
  authorized: boolean;
  /** This node's stored statuses and largest body. */
  cacheStatuses: ReadonlySet<number>;
  maxEntrySize: number;
  /** Local invalidation: true when the entry predates an invalidation of `primary`. */
  isInvalidated: (entry: Entry) => boolean;
  /** Now, epoch ms on this node's clock. */
  now: number;
  /**
   * `'fresh'`: the entry must be fresh now. `'stale-if-error'`: it may be stale but must still
   * be inside its stale-if-error window (RFC 5861 §4), to answer for a failing origin.
   * @default 'fresh'
   */
  window?: 'fresh' | 'stale-if-error';
}

/**
 * May an entry a peer sent be served and stored here? Judged by this node's rules, whatever
 * the peer thought: fresh now (RFC 9111 §4.2, by this node's clock), a status this node
 * stores, a body within its size limit, `shared` when the request has Authorization
 * (RFC 9111 §3.5), the same variant for this request (§4.1: the variant the peer chose from the
 * sent headers must be the one this request's own headers select; a header that was not sent,
 * such as Cookie, must be absent here too), and not older than a local invalidation.
 */
export function acceptPeerEntry(entry: Entry, ctx: PeerEntryContext): boolean {
  return (
    ctx.now < (ctx.window === 'stale-if-error' ? entry.sieUntil : entry.staleAt) &&
    ctx.now < entry.expiresAt &&
    (entry.shared || !ctx.authorized) &&
    ctx.cacheStatuses.has(entry.status) &&
    entry.body.length <= ctx.maxEntrySize &&
    variantKey(ctx.primary, entry.vary, ctx.sent) === variantKey(ctx.primary, entry.vary, ctx.view) &&
    !ctx.isInvalidated(entry)
  );
}
