/**
 * Types shared by the engine's parts: what an adapter hands in ({@link Exchange}), what a flight
 * resolves to, the tickets of background renders, and the context every part is built with.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Entry } from '../entry.js';
import type { Flight } from './outcome.js';
import type { KeyRecords } from './records.js';
import type { ResolvedOptions } from '../options/types.js';
import type { Reporter } from '../report.js';
import type { EngineHooks, IncludeHooks, Runner } from '../seam.js';
import type { CacheStatus, HitSink, StatusHeaders } from '../serve.js';
import type { ResponseCounters } from '../stats.js';
import type { StatusDetailer } from '../observe/cache-status.js';

export type { Runner } from '../seam.js';
export type { Flight, FlightResult } from './outcome.js';

/** How an adapter hands a request to the engine. */
export interface Exchange {
  /** Runs what the cache wraps (the handler, or the rest of the middleware chain). */
  run: Runner;
  /**
   * Runs the whole app from the top for a background render; the engine recognises its own
   * synthetic request when it comes back through `handle`. Undefined when the adapter cannot
   * reach the app (background refresh then falls back to a foreground miss).
   */
  regen?: Runner | undefined;
  /** Rethrow handler errors to the caller (Koa) instead of answering 500 here. */
  rethrow?: boolean;
}

/** What adapters drive. */
export interface Engine {
  /**
   * Handles one request. Returns true when the response was served from the cache (the handler
   * did not run), false when the handler ran; a promise of that when it could not answer at once.
   */
  handle(req: IncomingMessage, res: ServerResponse, ex: Exchange): boolean | Promise<boolean>;
  /**
   * Names the app to run for background renders and sub-requests until a request brings its
   * own adapter (called when a handler is wrapped, so they work before the first request).
   */
  useRunner(runner: Runner): void;
  /**
   * Writes a fresh memory hit of a plain entry to `sink` at once and returns true; false, having
   * written and counted nothing, for any other request (then `handle` it). For adapters whose
   * client is not a ServerResponse (see `RequestPath.serveFresh`).
   */
  serveFresh(req: IncomingMessage, sink: HitSink): boolean;
}

/** Payload of the `hit`, `miss`, `store`, `pass` and `stale` events. */
export interface CacheEvent {
  key: string;
  url: string;
  status?: CacheStatus;
  reason?: string;
  /** Base URL of the peer that supplied the entry (`peer-hit` only). */
  peer?: string;
}

/** A synthetic request's instructions: render for this flight. */
export interface RenderTicket {
  kind: 'render';
  flight: Flight;
  key: string;
  primary: string;
  used: boolean;
}

/** A synthetic request's instructions: render for a flight, or run untouched (a sub-request). */
export type Ticket = RenderTicket | { kind: 'sub' };

/** Where a miss is being rendered: the keys, its flight and the old copy to rescue it with. */
export interface Lead {
  primary: string;
  key: string;
  /** Set for a background render (no client, no peers, no stale rescue). */
  ticket: RenderTicket | undefined;
  /** Undefined for a request with Authorization (its response may be its own). */
  flight: Flight | undefined;
  /** The old copy to serve if the render fails (RFC 5861 §4 stale-if-error). */
  fallback: Entry | undefined;
  /** The stored copy to revalidate: the render sends its validators, and a 304 refreshes it. */
  revalidate?: Entry | undefined;
  /**
   * A key remembered as uncacheable (hit-for-miss, Varnish's model): rendered with no flight, so
   * nobody queues behind it, reading `PASS`; stored if its response is storable, which ends it.
   */
  solo?: boolean;
}

/** What every part of one engine is built with. */
export interface EngineContext {
  readonly options: ResolvedOptions;
  readonly counters: ResponseCounters;
  readonly report: Reporter;
  /** Everything known of each key: flights, hit-for-miss, failing backoff, refreshes. */
  readonly records: KeyRecords;
  readonly statusHeaders: StatusHeaders;
  /** Cache-Status detail (`cacheStatusDetail`); undefined when off, so the plain paths stay as they are. */
  readonly statusDetail: StatusDetailer | undefined;
  /** The data cache's hooks. */
  readonly hooks: EngineHooks;
  /** ESI includes: the data cache's, with `options.includes`; undefined (no include work at all) without. */
  readonly includes: IncludeHooks | undefined;
  /** The last adapter's way to render in the background (for refresh, refetch, priming, sub-requests). */
  runner: Runner | undefined;
  /** Set by close(): no new background work starts. */
  closed: boolean;
}
