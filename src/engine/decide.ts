/**
 * The next action for a request, as a pure function (Varnish's `vcl-step`: each step names the
 * next): from the entry found, what is known about the request and the key, the clock, and the
 * invalidation verdict on the entry. No I/O, no clock, no state: `handle.ts` gathers the inputs
 * and acts on the answer.
 */
import type { Entry } from '../entry.js';
import type { EpochVerdict } from '../invalidation/epochs.js';

/**
 * - `hit`: serve the fresh entry.
 * - `stale`: serve the stale entry; a refresh is already on its way (refetch, peer refetch, flight).
 * - `revalidate`: serve the stale entry and start one background refresh.
 * - `lead`: render it here (the flight leader, or alone for an Authorization request).
 * - `peer`: lead, asking the peers before rendering.
 * - `wait`: wait for a render in progress (`on: 'flight'`) or for the peer refetching it
 *   (`on: 'peer-refetch'`), then look again.
 * - `miss`: render alone, with no flight (hit-for-miss: the key's last response was not storable,
 *   so nobody waits for this one, but it is stored if it is storable). What one request carried
 *   (a cookie, Authorization, its own no-store) never turns a URL into a pass for everyone.
 */
export type Action = 'hit' | 'stale' | 'revalidate' | 'lead' | 'wait' | 'peer' | 'miss';

/** What is known about the request and its key when the decision is taken. */
export interface RequestFlags {
  /** It carries Authorization: only `shared` entries serve it, and it neither waits for nor leads a shared flight. */
  authorized: boolean;
  /** A refetch of its primary key is queued here (that render will replace the entry). */
  refetchPending: boolean;
  /** Another node refetches its primary key for the cluster (its copy will replace the entry). */
  peerRefetch: boolean;
  /** A background refresh can run (some adapter gave a way to render without a client). */
  canRefresh: boolean;
  /** A render of its key is in flight. */
  inFlight: boolean;
  /** Why its primary key is remembered as uncacheable (hit-for-miss), when it is. */
  passReason: string | undefined;
  /** A leader would ask the peers (a cluster is configured, the request carries no peer signature). */
  askPeers: boolean;
  /** It may still wait and look again (a request looks up a bounded number of times). */
  mayWait: boolean;
  /** A render of its primary key failed within `errorBackoff` (a stale copy answered it). */
  originFailing: boolean;
}

/** The clock, the verdict on the entry, and the rules from the options. */
export interface DecideContext {
  /** Epoch ms. */
  now: number;
  /** The newest invalidation that reaches the entry, if any. */
  verdict: EpochVerdict | undefined;
  /** `options.gracePeriod` (ms). */
  gracePeriod: number;
  /** Stale-on-error is on (`options.staleOnErrorStatuses` not empty). */
  staleOnError: boolean;
}

/** The action and what it needs. */
export interface Decision {
  action: Action;
  /** Why (stale, revalidate, miss). */
  reason?: string;
  /** What a `wait` waits for. */
  on?: 'flight' | 'peer-refetch';
  /** For `lead`/`peer`: the old copy to serve if the render fails (RFC 5861 §4 stale-if-error). */
  fallback?: Entry;
  /**
   * For `lead`/`peer`: the stored copy whose own validators the render sends (RFC 9111 §4.3.1),
   * so a 304 keeps its body. Set when it has an ETag or Last-Modified.
   */
  revalidate?: Entry;
  /** The entry was hard-invalidated (deactivated or deleted content): remove it everywhere. */
  drop?: boolean;
  /** For `stale`: served because the origin is failing (counted as stale-on-error). */
  rescue?: boolean;
}

/** The reason of a `stale` decision taken because the key's last render failed (errorBackoff). */
export const ORIGIN_FAILING = 'origin failing';

const HIT: Decision = Object.freeze({ action: 'hit' });

/** A fresh entry this request may be served (the hit path's whole test). */
export function isFreshHit(entry: Entry, authorized: boolean, now: number, verdict: EpochVerdict | undefined): boolean {
  return now < entry.staleAt && (entry.shared || !authorized) && verdict === undefined;
}

/** Whether `entry` may answer a failed render (inside stale-if-error, not hard-invalidated). */
export function canRescue(entry: Entry | undefined, at: Pick<DecideContext, 'now' | 'verdict' | 'staleOnError'>): entry is Entry {
  return entry !== undefined && at.staleOnError && at.now < entry.sieUntil && at.verdict?.hard !== true;
}

/** Whether `entry` carries a validator a conditional request can send (RFC 9110 §8.8). */
export function hasValidators(entry: Entry): boolean {
  return entry.etag !== undefined || entry.lastModified !== undefined;
}

/** The next action for a request whose lookup found `entry` (or nothing). */
export function decide(entry: Entry | undefined, req: RequestFlags, at: DecideContext): Decision {
  let fallback: Entry | undefined;
  let revalidate: Entry | undefined;
  let drop = false;
  if (entry !== undefined && (entry.shared || !req.authorized)) {
    if (at.verdict?.hard) {
      // Deactivated or deleted content: gone, not even an error fallback.
      drop = true;
    } else {
      if (isFreshHit(entry, req.authorized, at.now, at.verdict)) return HIT;
      const reason = staleReason(entry, req, at);
      if (reason !== undefined) {
        // One background refresh per key however many requests arrive; none while a refetch
        // of it is queued or a render is in flight (that one will replace the entry).
        // Nor while the origin just failed for it (errorBackoff).
        const refreshing = req.refetchPending || req.peerRefetch || req.inFlight || req.originFailing;
        return { action: refreshing ? 'stale' : 'revalidate', reason };
      }
      if (canRescue(entry, at)) {
        // The origin failed for this key moments ago: the old copy answers without asking it
        // again (RFC 5861 §4), so an outage costs the origin one request per key per errorBackoff.
        if (req.originFailing) return { action: 'stale', reason: ORIGIN_FAILING, rescue: true };
        fallback = entry;
      }
      // Stale, invalidated past grace, or stored with no-cache: ask the origin with its validators.
      if (hasValidators(entry)) revalidate = entry;
    }
  }
  const decision = next(req, fallback);
  if (drop) decision.drop = true;
  if (revalidate !== undefined && (decision.action === 'lead' || decision.action === 'peer')) decision.revalidate = revalidate;
  return decision;
}

/** What a request does that no stored entry can answer now. */
function next(req: RequestFlags, fallback: Entry | undefined): Decision {
  if (req.passReason !== undefined) return { action: 'miss', reason: req.passReason, fallback };
  // Nothing servable here while another node refetches this page for the cluster: wait for its
  // copy rather than render it a second time.
  if (fallback === undefined && !req.authorized && req.mayWait && req.peerRefetch) return { action: 'wait', on: 'peer-refetch' };
  // Authorization requests neither wait for nor lead a shared flight: their response may be theirs alone.
  if (req.authorized) return { action: 'lead', fallback };
  // A request that already looked up as often as it may renders alone rather than wait again.
  if (req.inFlight) return req.mayWait ? { action: 'wait', on: 'flight' } : { action: 'miss', reason: 'waited enough', fallback };
  return { action: req.askPeers ? 'peer' : 'lead', fallback };
}

/**
 * Why a stale (or invalidated) entry may be served right now, or undefined when the request
 * must wait for a fresh copy.
 */
function staleReason(entry: Entry, req: RequestFlags, at: DecideContext): string | undefined {
  // A refetch will replace it: serve the old copy until then, past grace too.
  if (req.refetchPending) return 'refetch pending';
  // Another node refetches it for the cluster: serve the old copy until its copy arrives here.
  if (req.peerRefetch) return 'refetch pending on a peer';
  if (!req.canRefresh) return undefined;
  // Invalidated: servable during the grace period after the invalidation, whatever its freshness.
  // (Epoch times sit a fraction of a millisecond after the wall-clock millisecond of the invalidation.)
  if (at.verdict !== undefined) return at.now < Math.floor(at.verdict.at) + at.gracePeriod ? 'grace' : undefined;
  // RFC 5861 §3: serve stale while one background refresh runs.
  return at.now < entry.swrUntil ? 'stale-while-revalidate' : undefined;
}
