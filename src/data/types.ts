/**
 * The data cache's types: the public options, answers and counters of `cache.data`, and what
 * its parts hand each other (a load's outcome, a resolved fetch target, a get's lifetimes).
 */
import type { IncomingMessage } from 'node:http';
import type { Entry } from '../entry.js';
import type { Milliseconds } from '../options/units.js';
import type { PeerCounters } from '../peers/cluster.js';

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
}

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
  tags: string[];
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
}

/** The data cache's own counters (`DataStats` without the peer counters and the tier size). */
export type Counters = Omit<DataStats, keyof PeerCounters | 'entries' | 'bytes'>;
