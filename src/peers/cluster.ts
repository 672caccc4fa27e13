/**
 * The cluster as seen from one node: membership (a fixed list, a function re-read on an interval,
 * or a discovery {@link MembershipSource}), the rendezvous ring, one {@link PeerClient} per other node, bounded concurrency
 * (p-limit) and the lookup strategies. Like groupcache's `PeerPicker`: an instance is passed to
 * the engine, there is no global registry.
 */
import createDebug from 'debug';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Entry } from '../entry.js';
import { PeerError, PeerTimeoutError } from '../errors.js';
import type { Grant, BreakerState } from './breaker.js';
import { PeerClient, type FetchOutcome } from './client.js';
import type { MembershipChange, MembershipCounters, MembershipSource } from './membership.js';
import type { ResolvedPeersOptions } from './options.js';
import { normalizeNodeUrl } from './options.js';
import { MAX_TARGET_LENGTH, lookupTarget, type LookupQuery } from './protocol.js';
import { Rendezvous, type HashFunction } from './ring.js';
import { traced, tracing, type PeerCallContext } from '../observe/tracing.js';

const debug = createDebug('stratacache:peers');

/** Peer counters, named like groupcache's Stats. */
export interface PeerCounters {
  /** Lookups sent to peers (one per peer asked). */
  peerLoads: number;
  /** Lookups that brought back an entry this node accepted. */
  peerHits: number;
  /** Lookups answered "not here", or with an entry refused by local rules (stale, other variant, invalidated). */
  peerMisses: number;
  /** Lookups that failed: connection error, bad status, unsigned, oversized, truncated or undecodable reply. */
  peerErrors: number;
  /** Lookups that timed out (`queryTimeout` for the answer, `fetchTimeout` for the bytes). */
  peerTimeouts: number;
  /** Of `peerLoads`: owner-fetch requests (`strategy: 'owner-fetch'`: the owner may render the page). */
  ownerFetches: number;
}

/** Fresh peer counters, all zero. */
export function peerCounters(): PeerCounters {
  return { peerLoads: 0, peerHits: 0, peerMisses: 0, peerErrors: 0, peerTimeouts: 0, ownerFetches: 0 };
}

/** One peer's breaker and lookup outcomes, as reported by `cache.stats().peers`. */
export interface PeerState {
  url: string;
  state: BreakerState;
  /** Consecutive failures counted by its breaker. */
  failures: number;
  /** Lookups this peer answered with an accepted entry (response and data caches together). */
  hits: number;
  /** Lookups this peer failed (connection, status, bad reply), timeouts excluded. */
  errors: number;
  /** Lookups this peer did not answer in time. */
  timeouts: number;
  /** The last failure: when (epoch ms) and its message. */
  lastError?: { at: number; message: string };
}

/** Per-peer outcomes kept beside each client (both caches' lookups). */
type PeerTally = Pick<PeerState, 'hits' | 'errors' | 'timeouts' | 'lastError'>;

/** A peer's accepted entry. */
export interface PeerHit {
  entry: Entry;
  /** Base URL of the peer that had it. */
  peer: string;
}

/** Dependencies of {@link PeerCluster}, injectable for tests. */
export interface PeerClusterHooks {
  /** A lookup failed or timed out (already counted). */
  onPeerError?: (error: PeerError) => void;
  /** The membership function or source failed, or returned something else than URLs. */
  onMembershipError?: (error: PeerError) => void;
  /** Peers joined or left (not called when a read changes nothing). */
  onMembership?: (change: MembershipChange) => void;
  /** Discovered members (`options.peers.discover`), read every `source.interval` instead of `options.nodes`. */
  source?: MembershipSource | undefined;
  /** Rendezvous hash. @default MD5-based {@link defaultHash} */
  hash?: HashFunction;
  /** Current time in epoch ms. @default Date.now */
  now?: () => number;
}

/** Abort reason of the lookups a strategy-'all' race no longer needs (one object: no DOMException per race). */
const CANCELLED = Object.freeze({ reason: 'another peer answered first, or the lookup ended' });

interface Ask {
  peer: PeerClient;
  grant: Grant;
}

/** A peer call inside a `stratacache:peer` span whose context ends with the outcome. */
function tracedFetch(peer: string, key: string, fetch: () => Promise<FetchOutcome>): Promise<FetchOutcome> {
  const context: PeerCallContext = { peer, key };
  return traced(tracing.peer, context, () =>
    fetch().then((outcome) => {
      context.outcome = outcome.kind;
      if (outcome.kind === 'error') context.error = outcome.error;
      return outcome;
    }),
  );
}

/** Membership, ring, clients and strategies of one node's cluster. */
export class PeerCluster {
  readonly counters: PeerCounters = peerCounters();
  readonly #options: ResolvedPeersOptions;
  readonly #hooks: PeerClusterHooks;
  readonly #now: () => number;
  readonly #limit: LimitFunction;
  #peers = new Map<string, PeerClient>();
  readonly #tallies = new WeakMap<PeerClient, PeerTally>();
  #ring: Rendezvous;
  #timer: NodeJS.Timeout | undefined;
  /** Reads the members again (a function's or a source's), or undefined for a fixed list. */
  readonly #read: (() => Promise<readonly unknown[] | undefined>) | undefined;
  readonly #joins = { peerJoins: 0, peerLeaves: 0 };
  #refreshing: Promise<void> | undefined;
  #closed = false;

  constructor(options: ResolvedPeersOptions, hooks: PeerClusterHooks = {}) {
    this.#options = options;
    this.#hooks = hooks;
    this.#now = hooks.now ?? Date.now;
    this.#limit = pLimit(options.maxConcurrent);
    this.#ring = new Rendezvous([], hooks.hash);
    const nodes = options.nodes;
    const source = hooks.source;
    this.#read = source !== undefined ? () => source.read() : typeof nodes === 'function' ? async () => nodes() : undefined;
    if (this.#read !== undefined) {
      void this.refresh();
      this.#timer = setInterval(() => void this.refresh(), source?.interval ?? options.refreshInterval);
      this.#timer.unref();
    } else this.#setNodes(nodes as readonly string[]);
  }

  /** Re-reads the members from `peers.nodes` when it is a function, or from the discovery source (also run every interval). */
  refresh(): Promise<void> {
    const read = this.#read;
    if (read === undefined || this.#closed) return Promise.resolve();
    // One refresh at a time: a slow membership function is not called again until it answers.
    if (this.#refreshing !== undefined) return this.#refreshing;
    const running = (async () => {
      try {
        const list = await read();
        if (list === undefined) return; // the source is skipped (its store is down): keep the members
        if (!Array.isArray(list)) throw new TypeError('expected an array of base URLs');
        const urls = list.map((n: unknown) => {
          const url = normalizeNodeUrl(n);
          if (url === undefined) throw new TypeError(`not an http(s) base URL: ${String(n)}`);
          return url;
        });
        if (!this.#closed) this.#setNodes(urls);
      } catch (error) {
        if (this.#closed) return; // a read cancelled by close() is no failure
        const from = this.#hooks.source?.name ?? 'options.peers.nodes';
        debug('membership: %s failed, keeping %d peers', from, this.#peers.size);
        this.#hooks.onMembershipError?.(new PeerError(`${from} failed; keeping the previous members`, { peer: '', cause: error }));
      }
    })();
    // Cleared once settled (not inside the async body: a function that throws synchronously
    // would settle it before the assignment below and leave a stale promise behind).
    const settled: Promise<void> = running.finally(() => {
      if (this.#refreshing === settled) this.#refreshing = undefined;
    });
    this.#refreshing = settled;
    return settled;
  }

  #setNodes(urls: readonly string[]): void {
    const self = this.#options.self;
    const next = new Map<string, PeerClient>();
    for (const url of urls) {
      if (url === self || next.has(url)) continue;
      next.set(
        url,
        this.#peers.get(url) ??
          new PeerClient(url, {
            secret: this.#options.secret,
            fetchTimeout: this.#options.fetchTimeout,
            maxEntrySize: this.#options.maxEntrySize,
            maxSockets: this.#options.maxConcurrent,
            failureThreshold: this.#options.failureThreshold,
            coolDown: this.#options.coolDown,
            now: this.#now,
          }),
      );
    }
    const left = [...this.#peers].filter(([url]) => !next.has(url));
    for (const [, peer] of left) peer.close();
    const joined = [...next.keys()].filter((url) => !this.#peers.has(url));
    this.#peers = next;
    // The ring includes this node, so every member computes the same owner for a key.
    this.#ring = new Rendezvous(self === undefined ? [...next.keys()] : [self, ...next.keys()], this.#hooks.hash);
    debug('membership: %d peers', next.size);
    if (joined.length === 0 && left.length === 0) return;
    this.#joins.peerJoins += joined.length;
    this.#joins.peerLeaves += left.length;
    // Rendezvous hashing moves only the keys a joining node now owns, or a leaving node owned.
    this.#hooks.onMembership?.({ joined, left: left.map(([url]) => url), nodes: [...this.#ring.nodes].sort() });
  }

  /** Cluster size (this node included) and the joins and leaves counted so far. */
  membership(): MembershipCounters {
    return { members: this.#ring.nodes.length, ...this.#joins };
  }

  /** Base URLs of the other nodes. */
  get peers(): string[] {
    return [...this.#peers.keys()];
  }

  /** The node owning `key` by rendezvous hashing (this node included), or undefined when alone. */
  owner(key: string): string | undefined {
    return this.#ring.owner(key);
  }

  /**
   * The owner of `key` among the nodes that look alive: this node and the peers whose breaker
   * is not open. Every node computes the same answer while they agree on who is alive; used to
   * pick the one node that refetches a URL for the whole cluster.
   */
  liveOwner(key: string): string | undefined {
    const self = this.#options.self;
    return this.#ring.owner(key, (node) => node === self || this.#peers.get(node)?.breaker.state !== 'open');
  }

  /** Breaker state of every peer. */
  states(): PeerState[] {
    return [...this.#peers.values()].map((p) => ({ url: p.url, state: p.breaker.state, failures: p.breaker.failures, ...this.#tally(p) }));
  }

  #tally(peer: PeerClient): PeerTally {
    let tally = this.#tallies.get(peer);
    if (tally === undefined) this.#tallies.set(peer, (tally = { hits: 0, errors: 0, timeouts: 0 }));
    return tally;
  }

  /** The peers to ask for `key` now: by strategy, minus those whose breaker is open. */
  #pick(key: string): Ask[] {
    let candidates: PeerClient[];
    if (this.#options.strategy !== 'all') {
      const owner = this.#ring.owner(key);
      const peer = owner === undefined ? undefined : this.#peers.get(owner);
      candidates = peer === undefined ? [] : [peer]; // this node owns it: nobody to ask
    } else candidates = [...this.#peers.values()];
    const asks: Ask[] = [];
    for (const peer of candidates) {
      const grant = peer.breaker.allow();
      if (grant !== false) asks.push({ peer, grant });
    }
    return asks;
  }

  /** Whether a miss here asks the key's owner to render it (`strategy: 'owner-fetch'`). */
  get ownerFetch(): boolean {
    return this.#options.strategy === 'owner-fetch';
  }

  /**
   * Asks the chosen peers for `query` and resolves with the first entry `accept` takes, or
   * undefined (nobody has it, every peer failed or timed out, or no peer may be asked). Never
   * rejects. The wait for an answer is bounded by `queryTimeout` (`ownerTimeout` for an
   * owner-fetch, a `query` with `fill`: the owner may render), a transfer by `fetchTimeout`.
   * Outcomes are counted in `counters` (default: this cluster's own, the response cache's), so
   * another cache sharing the cluster (the data cache, namespace `d`) keeps its own counts while
   * sharing the connections, the breakers and the `maxConcurrent` limit.
   */
  find(query: LookupQuery, accept: (entry: Entry) => boolean, counters: PeerCounters = this.counters): Promise<PeerHit | undefined> {
    if (this.#closed || this.#peers.size === 0) return Promise.resolve(undefined);
    const target = lookupTarget(this.#options.path, query);
    if (target.length > MAX_TARGET_LENGTH) {
      // A peer would refuse the request line (431), which would count against its breaker.
      debug('lookup skipped: target of %d characters', target.length);
      return Promise.resolve(undefined);
    }
    const asks = this.#pick(query.key);
    if (asks.length === 0) return Promise.resolve(undefined);
    const controller = new AbortController();
    const wait = query.fill === undefined ? this.#options.queryTimeout : this.#options.ownerTimeout;
    const deadline = this.#now() + wait;
    return new Promise((resolve) => {
      let open = asks.length;
      let settled = false;
      const finish = (hit: PeerHit | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(queueTimer);
        controller.abort(CANCELLED); // the others are cancelled: no verdict, no counters
        resolve(hit);
      };
      const done = (): void => {
        if (--open === 0) finish(undefined);
      };
      const queued = new Set<Ask>(asks);
      // Asks still queued behind maxConcurrent (other lookups' transfers) at the deadline are
      // dropped unsent, so the wait for "have it / don't have it" never exceeds queryTimeout.
      const queueTimer = setTimeout(() => {
        for (const ask of queued) {
          ask.peer.breaker.release(ask.grant);
          done();
        }
        queued.clear();
      }, this.#options.queryTimeout);
      for (const ask of asks) {
        void this.#limit(async () => {
          if (!queued.delete(ask)) return; // dropped at the deadline
          if (settled || this.#now() >= deadline) {
            ask.peer.breaker.release(ask.grant);
            return done();
          }
          counters.peerLoads++;
          if (query.fill !== undefined) counters.ownerFetches++;
          const fetch = (): Promise<FetchOutcome> => ask.peer.fetch(target, { signal: controller.signal, deadline });
          const outcome = await (tracing.peer.hasSubscribers ? tracedFetch(ask.peer.url, query.key, fetch) : fetch());
          // Another peer won while this answer was in its last tick: it is not needed.
          const hit = this.#judge(ask, settled ? { kind: 'aborted' } : outcome, { accept, counters });
          if (hit !== undefined) finish(hit);
          done();
        });
      }
    });
  }

  /** Counts one outcome, feeds the breaker, and returns the hit when it is accepted. */
  #judge(ask: Ask, outcome: FetchOutcome, by: { accept: (entry: Entry) => boolean; counters: PeerCounters }): PeerHit | undefined {
    const { peer } = ask;
    const { accept, counters } = by;
    switch (outcome.kind) {
      case 'aborted':
        peer.breaker.release(ask.grant);
        return undefined;
      case 'miss':
        peer.breaker.success();
        counters.peerMisses++;
        return undefined;
      case 'error': {
        peer.breaker.failure();
        const tally = this.#tally(peer);
        if (outcome.error instanceof PeerTimeoutError) {
          counters.peerTimeouts++;
          tally.timeouts++;
        } else {
          counters.peerErrors++;
          tally.errors++;
        }
        tally.lastError = { at: this.#now(), message: outcome.error.message };
        debug('%s: %s (breaker %s)', peer.url, outcome.error.message, peer.breaker.state);
        this.#hooks.onPeerError?.(outcome.error);
        return undefined;
      }
      case 'hit': {
        peer.breaker.success();
        let accepted: boolean;
        try {
          accepted = accept(outcome.entry);
        } catch (error) {
          debug('%s: judging the entry threw, refused: %O', peer.url, error);
          accepted = false;
        }
        if (!accepted) {
          counters.peerMisses++;
          debug('%s: entry refused by local rules', peer.url);
          return undefined;
        }
        counters.peerHits++;
        this.#tally(peer).hits++;
        return { entry: outcome.entry, peer: peer.url };
      }
    }
  }

  /**
   * Stops the membership timer and closes every connection; settles once the discovery source
   * stopped (with Redis heartbeats: this node withdrawn). Never rejects.
   */
  close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const peer of this.#peers.values()) peer.close();
    this.#peers.clear();
    return this.#hooks.source?.close() ?? Promise.resolve();
  }
}
