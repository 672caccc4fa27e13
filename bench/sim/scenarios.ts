/**
 * The simulation's scenarios: the size table (N = 3, 10, 30, 100 behind round-robin and key-hashed
 * balancing, Zipf(1.0) over one million URLs) and the check against `npm run bench:cluster`
 * (its workload: 300 URLs, each requested once on every one of 3 nodes, sequentially).
 */
import { simulate, type Balancer, type Latencies, type SimConfig, type SimResult, type Strategy } from './model.js';

/**
 * Per-step latencies, ms. localHit and peerHop: `npm run bench:cluster` (docs/performance.md#cluster:
 * local HIT p50 125 µs, a peer hit adds p50 +610 µs). redisCommand: `npx tsx bench/sim/redis-get.ts`
 * (GET of a 20 KB entry over loopback, p50 81 µs). render: an assumption (a server-rendered page), a parameter.
 */
export const MEASURED: Latencies = Object.freeze({ localHit: 0.125, peerHop: 0.61, redisCommand: 0.08, render: 50 });

/** The bench's page: a 20 KB body and its encoded metadata. */
export const ENTRY_BYTES = 20_480 + 512;
/** The default memory tier (`maxSize` 64 MiB) in such entries. */
export const MEMORY_ENTRIES = Math.floor((64 * 1024 * 1024) / ENTRY_BYTES);

/** The knobs of the size table (all overridable from the command line). */
export interface SizeOptions {
  nodes: number[];
  strategies: Strategy[];
  balancers: Balancer[];
  /** Client requests per second for the whole cluster. */
  rate: number;
  /** Simulated seconds measured, after one hit window of warm-up. */
  seconds: number;
  /** Hit window, ms. */
  ttl: number;
  urls: number;
  memoryEntries: number;
  flushRate: number;
  latency: Latencies;
  seed: number;
}

export const SIZE_DEFAULTS: SizeOptions = Object.freeze({
  nodes: [3, 10, 30, 100],
  strategies: ['none', 'all', 'owner', 'owner-fetch', 'redis', 'redis+owner-fetch'] as Strategy[],
  balancers: ['round-robin', 'key-hash'] as Balancer[],
  rate: 1000,
  seconds: 60,
  ttl: 60_000,
  urls: 1_000_000,
  memoryEntries: MEMORY_ENTRIES,
  flushRate: 1,
  latency: MEASURED,
  seed: 1,
});

/** One size-table configuration. */
export function sizeConfig(o: SizeOptions, nodes: number, strategy: Strategy, balancer: Balancer): SimConfig {
  const warmup = o.ttl;
  return {
    nodes,
    strategy,
    balancer,
    urls: o.urls,
    zipf: 1,
    ttl: o.ttl,
    memoryEntries: o.memoryEntries,
    entryBytes: ENTRY_BYTES,
    requests: Math.round((o.rate * (warmup + o.seconds * 1000)) / 1000),
    arrivals: { rate: o.rate },
    measureFrom: warmup,
    flushRate: o.flushRate,
    down: 0,
    latency: o.latency,
    seed: o.seed,
  };
}

/** bench/cluster.ts part 1: URL i is requested on node (i + j) % N for j = 0..N-1, one request at a time. */
export function benchClusterConfig(strategy: Strategy, seed: number, shape: { nodes?: number; urls?: number } = {}): SimConfig {
  const { nodes = 3, urls = 300 } = shape;
  return {
    nodes,
    strategy,
    balancer: 'round-robin',
    urls,
    zipf: 1,
    ttl: 600_000, // the bench's origin sends max-age=600
    memoryEntries: MEMORY_ENTRIES,
    entryBytes: ENTRY_BYTES,
    requests: urls * nodes,
    arrivals: { concurrency: 1 },
    measureFrom: 0,
    flushRate: 0,
    down: 0,
    latency: MEASURED,
    seed,
    sequence: { url: (i) => Math.floor(i / nodes), node: (i) => (Math.floor(i / nodes) + (i % nodes)) % nodes },
  };
}

/** The check's figures for one strategy over several seeds (the ring's hash differs per seed, as the bench's ports do). */
export interface CheckRow {
  strategy: Strategy;
  rendersPerUrl: { mean: number; min: number; max: number };
  peerRequestsPerRequest: { mean: number; min: number; max: number };
  /** Per request a node could not answer from its own memory (bench:cluster's "local miss"). */
  peerRequestsPerLocalMiss: { mean: number; min: number; max: number };
}

const spread = (xs: number[]): { mean: number; min: number; max: number } => ({
  mean: xs.reduce((a, b) => a + b, 0) / xs.length,
  min: Math.min(...xs),
  max: Math.max(...xs),
});

/** Runs the bench's workload on `nodes` nodes for `strategy` over `seeds` seeds (1..seeds). */
export function checkRow(strategy: Strategy, seeds: number, nodes = 3): CheckRow {
  const runs: SimResult[] = [];
  for (let s = 1; s <= seeds; s++) runs.push(simulate(benchClusterConfig(strategy, s, { nodes })));
  return {
    strategy,
    rendersPerUrl: spread(runs.map((x) => x.renders / x.distinctUrls)),
    peerRequestsPerRequest: spread(runs.map((x) => x.peerRequests / x.requests)),
    peerRequestsPerLocalMiss: spread(runs.map((x) => x.peerRequests / (x.requests - x.localHits))),
  };
}
