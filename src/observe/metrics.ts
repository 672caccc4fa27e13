/**
 * Prometheus metrics: every counter and gauge of `cache.stats()`, `cache.data.stats()` and the
 * tiers, as the text exposition format 0.0.4 (`cache.metricsHandler()`), or registered on a
 * prom-client `Registry` the user passes. prom-client is never imported: a registry accepts any
 * object with `name`, `help`, `type` and `get()`, which is what {@link registerMetrics} gives it.
 * One table of definitions ({@link METRICS}) feeds both, so the two never disagree.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DataStats } from '../data/cache.js';
import type { CacheStats } from '../stats.js';
import type { BreakerState } from '../peers/breaker.js';
import type { PeerCounters } from '../peers/cluster.js';
import type { MetricsRegistry } from './options.js';
import type { CacheStore } from '../stores/store.js';

/** Entries and bytes one storage tier holds. */
export interface TierStats {
  /** `memory`, the store's `name` (`disk`, ...) or `data` (the data cache's memory tier). */
  tier: string;
  entries: number;
  bytes: number;
}

/** Everything the metrics read, taken once per scrape. */
export interface ObservedState {
  stats: CacheStats;
  data: DataStats;
  tiers: TierStats[];
}

/** The state the metrics read: the two caches' stats and every tier that can tell its size. */
export function observedState(stats: CacheStats, data: DataStats, stores: readonly CacheStore[]): ObservedState {
  const tiers: TierStats[] = [{ tier: 'memory', entries: stats.entries, bytes: stats.bytes }];
  for (const store of stores) {
    const size = store.size?.();
    if (size !== undefined) tiers.push({ tier: store.name, ...size });
  }
  tiers.push({ tier: 'data', entries: data.entries, bytes: data.bytes });
  return { stats, data, tiers };
}

type Labels = Record<string, string>;
/** One sample of a metric: its labels and value. */
export interface Sample {
  labels: Labels;
  value: number;
}
/** One metric: name, help, type and how to read its samples from a snapshot. */
export interface MetricDefinition {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples(state: ObservedState): Sample[];
}

const P = 'stratacache_';
const BREAKER_STATES: readonly BreakerState[] = ['closed', 'open', 'half-open'];

/** A metric with one unlabelled sample. */
function one(name: string, type: MetricDefinition['type'], help: string, read: (s: ObservedState) => number | undefined): MetricDefinition {
  return {
    name: P + name,
    help,
    type,
    samples: (s) => {
      const value = read(s);
      return value === undefined ? [] : [{ labels: {}, value }];
    },
  };
}

/** A metric with one sample per value of one label. */
function by(name: string, type: MetricDefinition['type'], help: string, label: string, read: (s: ObservedState) => Record<string, number>): MetricDefinition {
  return {
    name: P + name,
    help,
    type,
    samples: (s) => Object.entries(read(s)).map(([value, n]) => ({ labels: { [label]: value }, value: n })),
  };
}

/** A metric with one sample per peer. */
function perPeer(name: string, type: MetricDefinition['type'], help: string, read: (p: CacheStats['peers'][number]) => number): MetricDefinition {
  return { name: P + name, help, type, samples: (s) => s.stats.peers.map((p) => ({ labels: { peer: p.url }, value: read(p) })) };
}

/** A metric with one sample per tier. */
function perTier(name: string, help: string, read: (t: TierStats) => number): MetricDefinition {
  return { name: P + name, help, type: 'gauge', samples: (s) => s.tiers.map((t) => ({ labels: { tier: t.tier }, value: read(t) })) };
}

/** Peer lookup outcomes as label values (the response and the data cache count the same ones). */
function peerResults(c: PeerCounters): Record<string, number> {
  return { hit: c.peerHits, miss: c.peerMisses, error: c.peerErrors, timeout: c.peerTimeouts };
}

/** Every metric stratacache exposes, in exposition order. */
export const METRICS: readonly MetricDefinition[] = Object.freeze([
  by('requests_total', 'counter', 'Requests answered, by cache status (X-Cache): hit, stale, peer, miss (rendered for the client), pass (not cached).', 'status', ({ stats: s }) => ({
    hit: s.hits,
    stale: s.stale,
    peer: s.peerHits,
    miss: s.misses,
    pass: s.passes,
  })),
  one('lookups_total', 'counter', 'Cacheable GET/HEAD requests looked up.', (s) => s.stats.gets),
  by('renders_total', 'counter', "Origin renders: for a waiting client (request), in the background (refresh, refetch, priming), or for a peer's owner-fetch (peer).", 'kind', ({ stats: s }) => ({
    request: s.misses,
    background: s.regenerations,
    peer: s.rendersForPeers,
  })),
  one('coalesced_requests_total', 'counter', "Requests that waited for another request's render instead of rendering (single flight).", (s) => s.stats.loadsDeduped),
  one('stores_total', 'counter', 'Entries stored.', (s) => s.stats.stores),
  one('stale_on_error_total', 'counter', 'Stale copies served because the origin failed (of requests_total{status="stale"}).', (s) => s.stats.staleOnError),
  one('revalidations_total', 'counter', "Stale entries revalidated with the origin (a render sent the entry's validators).", (s) => s.stats.revalidations),
  one('revalidations_not_modified_total', 'counter', 'Revalidations answered 304: the stored body was kept with updated headers.', (s) => s.stats.notModified),
  one('errors_total', 'counter', 'Internal failures (store, handler, regeneration); none failed a response.', (s) => s.stats.errors),
  one('store_errors_total', 'counter', 'Store operations that failed (of errors_total).', (s) => s.stats.storeErrors),
  perTier('tier_entries', 'Entries held per storage tier.', (t) => t.entries),
  perTier('tier_bytes', 'Bytes held per storage tier.', (t) => t.bytes),
  one('invalidations_total', 'counter', 'Invalidations applied (API, flush endpoint, tags, peers).', (s) => s.stats.invalidations),
  one('invalidation_duplicates_total', 'counter', 'Invalidations recognised as a publication already applied from another node.', (s) => s.stats.invalidationDuplicates),
  by('refetches_total', 'counter', 'Background refetches by outcome: stored a new entry, or failed (the old copy stayed).', 'outcome', ({ stats: s }) => ({
    stored: s.refetches,
    failed: s.refetchErrors,
  })),
  one('peer_refetches_total', 'counter', 'Refetched pages taken from the peer that refetched them instead of rendering.', (s) => s.stats.peerRefetches),
  by('flushes_total', 'counter', 'Flush endpoint requests by outcome.', 'outcome', ({ stats: s }) => ({ accepted: s.flushes, rejected: s.flushRejected })),
  one('peer_lookups_total', 'counter', 'Lookups sent to peers by the response cache (one per peer asked).', (s) => s.stats.peerLoads),
  one('peer_owner_fetches_total', 'counter', "Of peer_lookups_total: owner-fetch requests, which the key's owner may answer by rendering.", (s) => s.stats.ownerFetches),
  by('peer_lookup_results_total', 'counter', 'Outcomes of response-cache peer lookups.', 'result', ({ stats }) => peerResults(stats)),
  one('peers', 'gauge', 'Other nodes of the cluster this node knows.', (s) => s.stats.peers.length),
  one('peers_members', 'gauge', 'Nodes of the cluster as this node knows them, itself included (0 without a cluster).', (s) => s.stats.members),
  one('peer_joins_total', 'counter', 'Nodes that became peers (the first member list included; discovery and membership functions add more).', (s) => s.stats.peerJoins),
  one('peer_leaves_total', 'counter', 'Nodes that stopped being peers (gone from DNS, heartbeats ran out, withdrawn, or dropped from the list).', (s) => s.stats.peerLeaves),
  perPeer('peer_hits_total', 'counter', 'Lookups this peer answered with an accepted entry (response and data caches).', (p) => p.hits),
  perPeer('peer_errors_total', 'counter', 'Lookups this peer failed (timeouts excluded).', (p) => p.errors),
  perPeer('peer_timeouts_total', 'counter', 'Lookups this peer did not answer in time.', (p) => p.timeouts),
  {
    name: `${P}peer_breaker_state`,
    help: "Each peer's circuit breaker: 1 for its current state (closed, open, half-open), 0 for the others.",
    type: 'gauge',
    samples: (s) => s.stats.peers.flatMap((p) => BREAKER_STATES.map((state) => ({ labels: { peer: p.url, state }, value: p.state === state ? 1 : 0 }))),
  },
  perPeer('peer_consecutive_failures', 'gauge', "Consecutive failures counted by each peer's breaker.", (p) => p.failures),
  one('invalidations_sent_total', 'counter', 'Invalidation records a peer acknowledged (one per record per peer).', (s) => s.stats.invalidationsSent),
  one('invalidations_received_total', 'counter', "Peers' invalidation records applied here.", (s) => s.stats.invalidationsReceived),
  one('propagation_errors_total', 'counter', 'Invalidation sends to peers that failed (each retried).', (s) => s.stats.propagationErrors),
  by('cdn_purge_requests_total', 'counter', 'Purge requests to the CDN (options.cdn) by outcome: accepted, or failed (retried while retryable).', 'outcome', ({ stats: s }) => ({
    accepted: s.cdnPurges,
    failed: s.cdnPurgeErrors,
  })),
  one('cdn_purged_tags_total', 'counter', 'Tags named in purge requests the CDN accepted.', (s) => s.stats.cdnPurgedTags),
  one('cdn_purge_tags_dropped_total', 'counter', 'Tags never purged at the CDN: queue full, refused, or failing after every attempt.', (s) => s.stats.cdnPurgesDropped),
  one('propagation_resets_total', 'counter', 'Peers that fell behind the invalidation log and got a soft invalidation of / instead.', (s) => s.stats.propagationResets),
  by('data_requests_total', 'counter', 'Data cache get/fetch calls by status.', 'status', ({ data: d }) => ({ hit: d.hits, stale: d.stale, miss: d.misses })),
  one('data_loads_total', 'counter', 'Data cache loader calls and requests made.', (s) => s.data.loads),
  one('data_coalesced_total', 'counter', "Data cache calls that waited for another call's load.", (s) => s.data.loadsDeduped),
  one('data_errors_total', 'counter', 'Data cache loads, refreshes and includes that failed.', (s) => s.data.errors),
  by('data_peer_lookup_results_total', 'counter', 'Outcomes of data-cache peer lookups.', 'result', ({ data }) => peerResults(data)),
]);

/** The content type of the text exposition format this module writes. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

// Exposition format 0.0.4: HELP escapes backslash and newline; label values also the double quote.
const escapeHelp = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** The text exposition (format 0.0.4) of `definitions` read from `state`. */
export function renderMetrics(state: ObservedState, definitions: readonly MetricDefinition[] = METRICS): string {
  const lines: string[] = [];
  for (const m of definitions) {
    const samples = m.samples(state);
    // No series (no peers, or a counter this build does not keep): nothing to write.
    if (samples.length === 0) continue;
    lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
    for (const s of samples) lines.push(`${m.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A `(req, res)` handler answering GET/HEAD with the exposition of `read()`; other methods get 405. */
export function metricsHandler(read: () => ObservedState): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8', 'content-length': 18 });
      res.end('Method Not Allowed');
      return;
    }
    const body = renderMetrics(read());
    res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/**
 * Registers every metric on a prom-client `Registry` as a collector read at scrape time. A scrape
 * calls every metric's `get()` in one tick: the state is read once for them all. Returns a
 * function that removes them again (when the registry can: `removeSingleMetric`).
 * @throws TypeError when the registry already has one of these names (one cache per registry).
 */
export function registerMetrics(registry: MetricsRegistry, read: () => ObservedState): () => void {
  let memo: ObservedState | undefined;
  const snapshot = (): ObservedState => {
    if (memo === undefined) {
      memo = read();
      queueMicrotask(() => (memo = undefined));
    }
    return memo;
  };
  const registered: string[] = [];
  const unregister = (): void => {
    const remove = (registry as { removeSingleMetric?: (name: string) => void }).removeSingleMetric;
    if (typeof remove === 'function') for (const name of registered) remove.call(registry, name);
  };
  for (const m of METRICS) {
    try {
      registry.registerMetric({
        name: m.name,
        help: m.help,
        type: m.type,
        aggregator: 'sum',
        get: () => ({ name: m.name, help: m.help, type: m.type, aggregator: 'sum', values: m.samples(snapshot()) }),
        reset: () => undefined,
      });
    } catch (error) {
      unregister();
      throw new TypeError(`options.metrics.registry already has ${m.name}: register one cache per registry`, { cause: error });
    }
    registered.push(m.name);
  }
  return unregister;
}
