/**
 * Where a cluster's members come from when they are found rather than listed
 * (`options.peers.discover`): a {@link MembershipSource} the {@link PeerCluster} reads every
 * `interval`, built here from the options (DNS) or the shared store (Redis heartbeats); and the
 * shapes membership changes are reported in (the `membership` event, the join/leave counters).
 */
import type { CacheStore } from '../stores/store.js';
import type { Count, Milliseconds } from '../options/units.js';
import { DnsMembers } from './dns.js';
import type { ResolvedPeersOptions } from './options.js';

/** A change of the member list: the payload of the cache's `membership` event. */
export interface MembershipChange {
  /** Nodes that became peers (base URLs). */
  joined: string[];
  /** Nodes that are peers no more. */
  left: string[];
  /** Every member now, this node included, sorted. */
  nodes: string[];
}

/** Membership figures of `cache.stats()`. */
export interface MembershipCounters {
  /** Nodes of the cluster as this node knows them, itself included (0 without a cluster). */
  members: Count;
  /** Nodes that became peers (the first list included). */
  peerJoins: Count;
  /** Nodes that stopped being peers. */
  peerLeaves: Count;
}

/** A source of members the cluster reads on an interval. */
export interface MembershipSource {
  /** What it is, for errors and logs (`dns web.shop.svc`, `redis heartbeats`). */
  readonly name: string;
  /** How often it is read, in ms. */
  readonly interval: Milliseconds;
  /**
   * The members now (`self` may be among them); undefined to keep the last list without an error
   * (the store is skipped while down). Rejects on failure: the last list is kept and it is reported.
   */
  read(): Promise<readonly string[] | undefined>;
  /** Stops: this node leaves at once (Redis), queries in flight are cancelled (DNS). Never rejects. */
  close(): Promise<void>;
}

/**
 * The source `options.peers.discover` names, or undefined without discovery. `stores` are the
 * cache's tiers: `{ redis: true }` uses the first that carries members (a `redisStore`).
 * @throws TypeError when `{ redis: true }` finds no such store.
 */
export function membershipSource(options: ResolvedPeersOptions, stores: readonly CacheStore[]): MembershipSource | undefined {
  const discover = options.discover;
  const self = options.self;
  if (discover === undefined || self === undefined) return undefined;
  if (discover.kind === 'dns') {
    const dns = new DnsMembers(discover);
    return {
      name: `dns ${discover.dns}`,
      interval: discover.interval,
      read: () => dns.read(),
      close: async () => dns.cancel(),
    };
  }
  const members = stores.find((s) => s.members !== undefined)?.members;
  if (members === undefined) {
    throw new TypeError(`expected options.stores to hold a redisStore for options.peers.discover.redis (its heartbeats list the nodes), got ${stores.length === 0 ? 'no store' : stores.map((s) => s.name).join(', ')}`);
  }
  return {
    name: 'redis heartbeats',
    interval: discover.interval,
    read: () => members.announce(self, discover.ttl),
    close: () => members.leave(self),
  };
}
