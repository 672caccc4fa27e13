/**
 * How a flight ends, and what each of its waiters does then. Every render a flight leads settles
 * with exactly one named outcome; the table below is the only place a waiter's next step is
 * chosen (`RequestPath`'s loop reads it), and docs/ARCHITECTURE.md shows the same table (a test
 * checks they agree).
 */
import type { Entry } from '../entry.js';
import type { Deferred } from '../flight.js';

/** Every way a flight ends. */
export const FLIGHT_OUTCOMES = [
  'stored',
  'peer',
  'stale',
  'uncacheable',
  'personal',
  'error',
  'failed',
  'timed-out',
  'abandoned',
  'invalidated',
] as const;

export type FlightOutcome = (typeof FLIGHT_OUTCOMES)[number];

/**
 * What a waiter does with an outcome:
 * - `serve`: serve the flight's entry (HIT, or PEER, or STALE for `stale`); a waiter whose own
 *   variant differs looks again under its own key;
 * - `answer`: serve the origin's own response the leader kept (an error status, not stored);
 * - `render`: render its own response with no flight (hit-for-miss, or a response that was only
 *   the leader's);
 * - `retry`: look again once (the first waiter leads a new flight, the others wait for it); after
 *   one retry, answer `500` (or the stale copy where stale-on-error applies);
 * - `504`: answer 504 Gateway Timeout (the stale copy, if any, was already the outcome `stale`);
 * - `lookup`: look again with no limit on retries beyond the request's own bound: the entry
 *   stored meanwhile (stale by the invalidation, served only where grace allows) or a new flight.
 */
export type WaiterAction = 'serve' | 'answer' | 'render' | 'retry' | '504' | 'lookup';

/** Outcome -> what its waiters do. */
export const WAITER_ACTIONS: Readonly<Record<FlightOutcome, WaiterAction>> = Object.freeze({
  /** The response was stored: serve it. */
  stored: 'serve',
  /** A peer's copy was taken: serve it (PEER). */
  peer: 'serve',
  /** The render failed and the old copy answered the leader (stale-if-error): serve it STALE. */
  stale: 'serve',
  /** Not storable for anyone (no-store, Vary *, ...): remembered as hit-for-miss, each waiter renders its own. */
  uncacheable: 'render',
  /** Not storable for the leader's request only (private, Set-Cookie, its cookie or Authorization): each waiter renders its own. */
  personal: 'render',
  /** The origin answered an error status that is not stored: the waiters get the origin's own status and body. */
  error: 'answer',
  /** The handler threw or the response broke off: one retry between the waiters, then 500. */
  failed: 'retry',
  /** No headers within originTimeout and no old copy: 504. */
  'timed-out': '504',
  /** The leader's client left and its handler stopped (or the leader never rendered): one waiter leads a new render. */
  abandoned: 'lookup',
  /** It settled after an invalidation that covers it: never served as fresh; hard: not stored, soft: stored stale. */
  invalidated: 'lookup',
});

/** What a flight resolves to, for its waiters: one named outcome (see `outcome.ts`). */
export interface FlightResult {
  outcome: FlightOutcome;
  /**
   * `stored`, `peer`: the entry to serve; `stale`: the old copy served instead of the failed
   * render; `error`: the origin's own response, kept for the waiters but never stored.
   */
  entry?: Entry | undefined;
  /** The variant key `entry` is (or would be) stored under. */
  key?: string | undefined;
}

/** A render in flight: its waiters await `promise`. */
export interface Flight extends Deferred<FlightResult> {
  /** When its render began, on the invalidation clock: an invalidation after it covers it. */
  readonly startedAt: number;
  /** Set once it settled (a second settle does nothing). */
  settled: boolean;
}

