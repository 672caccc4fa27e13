/**
 * The cluster one cache asks, built from its options: none without a secret or members; else a
 * {@link PeerCluster} over `peers.nodes` or the discovery source `peers.discover` names (DNS, or
 * the heartbeats of the Redis store in `stores`), reporting through the cache's reporter.
 */
import type { PeerError } from '../errors.js';
import type { CacheStore } from '../stores/store.js';
import { PeerCluster } from './cluster.js';
import { membershipSource } from './membership.js';
import type { ResolvedPeersOptions } from './options.js';

export type { MembershipChange } from './membership.js';

/** What the cluster reports through: the cache's events and failure counting. */
export interface ClusterReport {
  emit(event: 'peer-error' | 'membership', payload: unknown): void;
  fail(error: PeerError): void;
}

/**
 * The cluster, or undefined when this node asks nobody (no secret, or no members configured).
 * @throws TypeError when `peers.discover.redis` finds no Redis store among `stores`.
 */
export function clusterOf(options: ResolvedPeersOptions, stores: readonly CacheStore[], report: ClusterReport): PeerCluster | undefined {
  const members = typeof options.nodes === 'function' || options.nodes.length > 0 || options.discover !== undefined;
  if (!options.enabled || !members) return undefined;
  return new PeerCluster(options, {
    onPeerError: (error) => report.emit('peer-error', error),
    onMembershipError: (error) => report.fail(error),
    onMembership: (change) => report.emit('membership', change),
    source: membershipSource(options, stores),
  });
}
