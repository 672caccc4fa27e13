/**
 * The counters of the response cache (named like groupcache's Stats) and the shape of
 * `cache.stats()`, which adds the peer, propagation and publication counters kept by their areas.
 */
import type { PeerCounters, PeerState } from './peers/cluster.js';
import type { MembershipCounters } from './peers/membership.js';
import type { CdnCounters } from './cdn/purger.js';
import type { PropagationCounters } from './peers/propagation.js';

/** The response cache's own counters, incremented by the engine's parts. */
export interface ResponseCounters {
  /** Cacheable GET/HEAD requests looked up. */
  gets: number;
  /** Served from a fresh stored entry (memory or an extra store), including coalesced waiters. */
  hits: number;
  /** Rendered by the handler to fill the cache (one per flight leader). */
  misses: number;
  /** Sent to the handler without the cache (method, bypass, hit-for-pass, uncacheable). */
  passes: number;
  /** Entries stored. */
  stores: number;
  /** Requests that waited for another request's render instead of rendering. */
  loadsDeduped: number;
  /** Served stale while a background refresh ran. */
  stale: number;
  /** Background renders started (refresh, refetch, priming). */
  regenerations: number;
  /** Renders this node led for a peer's owner-fetch (`peers.strategy: 'owner-fetch'`; joined renders not counted). */
  rendersForPeers: number;
  /** Internal failures (store, handler, regeneration); each also emitted as `error`. */
  errors: number;
  /** Of `errors`: store operations that failed (`ERR_STORE`); the request went on without the store. */
  storeErrors: number;
  /** Of `stale`: served stale because the origin threw, timed out or answered an error status. */
  staleOnError: number;
  /**
   * Stale entries revalidated with the origin: a render (for a client or in the background) sent
   * the entry's own validators (`If-None-Match`, `If-Modified-Since`; RFC 9111 §4.3.1).
   */
  revalidations: number;
  /** Of `revalidations`: answered 304, so the stored body was kept with updated headers (§4.3.4). */
  notModified: number;
  /** Invalidations applied (API, flush endpoint, tags). */
  invalidations: number;
  /** Background refetches (flush refetch lists, priming) that stored a new entry. */
  refetches: number;
  /** Background refetches that failed or stored nothing (the old copy stayed). */
  refetchErrors: number;
  /** Flush endpoint requests accepted. */
  flushes: number;
  /** Flush endpoint requests refused (403, 400, 405, 413). */
  flushRejected: number;
  /** Stored entries given compressed variants (`options.compress`), each once, in the background. */
  compressions: number;
}

/** Counters of cluster publications (see `invalidation/publications.ts`). */
export interface PublicationCounters {
  /**
   * Invalidations recognised as the same publication already applied from another node within
   * the duplicate window (a flush sent to every node): no new epoch, no second refetch.
   */
  invalidationDuplicates: number;
  /** Refetched pages this node took from the peer that refetched them instead of rendering them. */
  peerRefetches: number;
}

/** Counters, named like groupcache's Stats: what `cache.stats()` returns. */
export interface CacheStats extends ResponseCounters, PeerCounters, MembershipCounters, PropagationCounters, PublicationCounters, CdnCounters {
  /** Entries in the memory tier. */
  entries: number;
  /** Bytes charged in the memory tier. */
  bytes: number;
  /** Each peer's circuit breaker: `closed`, `open` (skipped) or `half-open` (one probe allowed). */
  peers: PeerState[];
  /**
   * What each lower tier that keeps counters reports, by its `name`: for Redis `commands`,
   * `errors`, `timeouts`, `skipped` (breaker open), `breaker`, invalidations published and
   * applied, leases taken and waits that ended with another node's entry.
   */
  tiers: Array<{ name: string } & Record<string, unknown>>;
}

/** Fresh response counters, all zero. */
export function responseCounters(): ResponseCounters {
  return {
    gets: 0,
    hits: 0,
    misses: 0,
    passes: 0,
    stores: 0,
    loadsDeduped: 0,
    stale: 0,
    regenerations: 0,
    rendersForPeers: 0,
    errors: 0,
    storeErrors: 0,
    staleOnError: 0,
    revalidations: 0,
    notModified: 0,
    invalidations: 0,
    refetches: 0,
    refetchErrors: 0,
    flushes: 0,
    flushRejected: 0,
    compressions: 0,
  };
}
