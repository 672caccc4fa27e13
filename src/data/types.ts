/**
 * The data cache's types: the public options, answers and counters of `cache.data`, and what
 * its parts hand each other (a load's outcome, a resolved fetch target, a get's lifetimes).
 */
import type { IncomingMessage } from 'node:http';
import type { Entry } from '../entry.js';
import type { Fraction, Milliseconds } from '../options/units.js';
import type { PeerCounters } from '../peers/cluster.js';
import type { GetDefaults } from './options.js';

/** Options of one `cache.data.get` call. */
export interface DataGetOptions {
  /** Freshness lifetime of the loaded value in ms. @default options.data.defaultTtl */
  ttl?: Milliseconds;
  /**
   * After `ttl`, for this many ms the old value is returned at once while one background call
   * of the loader refreshes it (RFC 5861's stale-while-revalidate, for values). @default 0
   */
  staleWhileRevalidate?: Milliseconds;
  /**
   * After `ttl`, for this many ms the old value is returned when the loader throws; outside
   * the window the loader's error reaches the caller unchanged. @default 0
   */
  staleIfError?: Milliseconds;
  /** Tags stored with the value (for tag invalidation). @default [] */
  tags?: readonly string[];
  /**
   * After this many ms of waiting for a load, the caller gets the stale value at once when one
   * is at hand (inside its `staleIfError` window); the load goes on in the background and is
   * stored. No stale value at hand: no effect. `0`: none. Must be less than `hardTimeout`.
   * @default options.data.softTimeout
   */
  softTimeout?: Milliseconds;
  /**
   * After this many ms of waiting for a load, the caller gets a `DataTimeoutError`; the load goes
   * on and its value is stored when it settles. `0`: none.
   * @default options.data.hardTimeout
   */
  hardTimeout?: Milliseconds;
  /**
   * Fraction of `ttl` after which a get of the fresh value also starts one background load.
   * `0`: none. @default options.data.refreshAhead
   */
  refreshAhead?: Fraction;
  /** XFetch factor of the probabilistic early refresh; `0`: none. @default options.data.earlyRefresh */
  earlyRefresh?: number;
  /** Up to this fraction of `ttl` is cut at random from the stored lifetime; `0`: none. @default options.data.ttlJitter */
  ttlJitter?: Fraction;
}

/**
 * What a `cache.data.get` loader is called with. A loader written as `() => value` ignores it.
 * Event trace: get(key) misses -> the loader runs with `ctx.options` set to the call's lifetimes
 * -> it may change them from what it loaded (an API's own `Cache-Control`, a record's
 * `updatedAt`) or call `ctx.skip()` -> its value is answered to every caller of the load and
 * stored with the lifetimes as they are when it returns (unless skipped).
 */
export interface DataLoaderContext {
  /** The key being loaded (inside a namespace: the key as the namespace was given it). */
  readonly key: string;
  /**
   * The lifetimes this answer is stored with; writable. Checked when the loader returns: an
   * invalid one fails the load with a TypeError naming `ctx.options.<field>`.
   */
  readonly options: {
    /** Freshness lifetime in ms. */
    ttl: Milliseconds;
    /** Stale-while-revalidate window in ms after `ttl`. */
    staleWhileRevalidate: Milliseconds;
    /** Stale-if-error window in ms after `ttl`. */
    staleIfError: Milliseconds;
    /** Tags stored with the value. */
    tags: string[];
  };
  /** Answer this value to the callers of the load but do not store it (the stored one, if any, stays). */
  skip(): void;
}

/** A loader of `cache.data.get`: `() => value` loaders keep working. */
export type DataLoader<T> = (ctx: DataLoaderContext) => T | Promise<T>;

/** Options of one `cache.data.fetch` call. */
export interface DataFetchOptions {
  /**
   * The request being rendered: a relative URL is requested from its `Host`. Inside a render
   * the cache knows it already; pass it when calling from elsewhere.
   */
  req?: IncomingMessage;
  /**
   * Request headers to send. They are part of the cache key: calls sending other values get
   * their own entries (the data cache keeps no Vary map). @default {}
   */
  headers?: Record<string, string>;
  /** Give up after this many ms (DataTimeoutError). @default options.data.fetch.timeout */
  timeout?: Milliseconds;
}

/** Where a data answer came from. */
export type DataStatus = 'HIT' | 'MISS' | 'STALE' | 'REVALIDATED' | 'PEER';

/** A response from `cache.data.fetch`. */
export interface DataResponse {
  status: number;
  /** Response headers, lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The whole body. Shared with the cache: read it, do not modify it. */
  body: Buffer;
  /**
   * HIT, MISS, STALE (served stale: revalidating, or the origin failed), REVALIDATED (a 304
   * refreshed it), PEER (a fresh copy from another node of the cluster, `options.peers`).
   */
  cache: DataStatus;
  /** The body parsed as JSON. */
  json(): Promise<unknown>;
  /** The body as UTF-8 text. */
  text(): string;
}

/**
 * Counters of the data cache. The `peer*` counters are this cache's lookups in the cluster
 * (namespace `d`), counted apart from the response cache's in `cache.stats()`.
 */
export interface DataStats extends PeerCounters {
  /** Calls of get and fetch (includes too). */
  gets: number;
  /** Answered from a fresh entry. */
  hits: number;
  /** Not fresh (or absent): the caller waited for a load. */
  misses: number;
  /** Loader calls and requests made (foreground and background); not peer lookups. */
  loads: number;
  /** Calls that waited for another call's load (or peer lookup) instead of loading. */
  loadsDeduped: number;
  /** Answered with a stale entry (revalidating, or the load failed within stale-if-error). */
  stale: number;
  /** Failed loads, background refreshes and includes; each also emitted as `error`. */
  errors: number;
  /** Callers answered the stale value at their soft timeout while the load went on. */
  softTimeouts: number;
  /** Callers that got a `DataTimeoutError` at their hard timeout. */
  hardTimeouts: number;
  /** Background loads started by `refreshAhead` or `earlyRefresh` while the value was still fresh. */
  earlyRefreshes: number;
  /**
   * Loads that settled after a delete, tag invalidation or dependency change covering their key:
   * their value was not stored (hard) or stored already stale (soft).
   */
  invalidatedLoads: number;
  /** Loads whose loader called `ctx.skip()` (answered, not stored). */
  skipped: number;
  /** Entries in the data memory tier. */
  entries: number;
  /** Bytes charged in the data memory tier. */
  bytes: number;
}

/** How one load ended, shared by every caller that joined it. */
export type Outcome = { ok: true; res: LoadedResponse } | { ok: false; error: unknown };

export interface LoadedResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  cache: DataStatus;
  /** The peer's entry, when it came from a peer (a stale one is revalidated with its validators). */
  entry?: Entry;
}

/** The lifetimes of one get() call, validated before anything runs. */
export interface Lifetimes {
  ttl: number;
  swr: number;
  sie: number;
  tags: readonly string[];
}

/** One get() call's options after validation (lifetimes, timeouts, early refresh). */
export interface GetPlan {
  /** Timeouts and early refresh: `options.data`'s own object when the call sets none. */
  timing: GetDefaults;
  life: Lifetimes;
  /** Tags added to the value and hidden from its loader (its namespaces'). */
  scopeTags: readonly string[];
}

/** A fetch target, resolved once per call. */
export interface Target {
  /** Data key. */
  key: string;
  /** For messages and the policy: the absolute URL or the path. */
  display: string;
  /** Absolute URL (network), or undefined for an internal path. */
  url: URL | undefined;
  /** Internal path (sub-request), or undefined for the network. */
  path: string | undefined;
  host: string;
  headers: Record<string, string>;
  /** Tags its stored response carries (its namespaces'). */
  tags: readonly string[];
}

/** The data cache's own counters (`DataStats` without the peer counters and the tier size). */
export type Counters = Omit<DataStats, keyof PeerCounters | 'entries' | 'bytes'>;
