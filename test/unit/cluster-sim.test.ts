/**
 * The cluster simulation of `npm run bench:sim` (bench/sim), run small: its invariants hold, so
 * the table in docs/cluster.md can be trusted as a model of what the code does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rendezvousOwner, simulate, type SimConfig, type Strategy } from '../../bench/sim/model.js';
import { benchClusterConfig, checkRow } from '../../bench/sim/scenarios.js';

/** Per-hop latencies, ms (fixed here: the figures in scenarios.ts may be measured again). */
const LATENCY = { localHit: 0.125, peerHop: 0.61, redisCommand: 0.08, render: 50 };

/** N = 3, 10,000 requests, Zipf(1.0) over 2,000 URLs, every URL fits in every node's memory. */
function small(strategy: Strategy, over: Partial<SimConfig> = {}): SimConfig {
  return {
    nodes: 3,
    strategy,
    balancer: 'round-robin',
    urls: 2_000,
    zipf: 1,
    ttl: 2_000,
    memoryEntries: 2_000,
    entryBytes: 20_000,
    requests: 10_000,
    arrivals: { rate: 1_000 },
    measureFrom: 0,
    flushRate: 0,
    down: 0,
    latency: LATENCY,
    seed: 7,
    ...over,
  };
}

test('the same seed gives the same numbers; another seed gives others', () => {
  for (const strategy of ['all', 'owner-fetch', 'redis+owner-fetch'] as const) {
    const a = simulate(small(strategy, { flushRate: 2 }));
    const b = simulate(small(strategy, { flushRate: 2 }));
    assert.deepEqual(a, b);
    const c = simulate(small(strategy, { flushRate: 2, seed: 8 }));
    assert.notDeepEqual({ ...c, config: a.config }, a);
  }
});

test("'owner-fetch' renders each URL at most once per hit window when no node fails", () => {
  for (const balancer of ['round-robin', 'key-hash'] as const) {
    for (const strategy of ['owner-fetch', 'redis+owner-fetch'] as const) {
      const r = simulate(small(strategy, { balancer }));
      assert.ok(r.renders > 0 && r.peerHits > 0, `${strategy} ${balancer}: ${r.renders} renders, ${r.peerHits} peer hits`);
      assert.equal(r.rendersWithinWindow, 0, `${strategy} behind ${balancer}`);
      // At most one render per URL per window: 10 s of traffic, 2 s windows.
      assert.ok(r.renders <= r.distinctUrls * Math.ceil(r.measuredMs / 2_000));
    }
  }
  // Not vacuous: the other strategies, or a node down (its keys rendered by each asker), break it.
  assert.ok(simulate(small('owner')).rendersWithinWindow > 0);
  assert.ok(simulate(small('none')).rendersWithinWindow > 0);
  assert.ok(simulate(small('owner-fetch', { nodes: 4, down: 1 })).rendersWithinWindow > 0);
});

test("'all' sends N - 1 peer requests per local miss that asks, 16 at a time (peers.maxConcurrent)", () => {
  for (const nodes of [3, 10, 17]) {
    const r = simulate(small('all', { nodes }));
    assert.ok(r.askingLeaders > 0);
    assert.equal(r.peerRequests, (nodes - 1) * r.askingLeaders);
    assert.equal(r.askingLeaders, r.leaders);
  }
  const down = simulate(small('all', { nodes: 5, down: 2 }));
  assert.equal(down.peerRequests, 2 * down.askingLeaders, 'nodes whose breaker is open are not asked');
  // Beyond 17 nodes a hit in the first 16 answers stops the asks still queued: a miss nobody has
  // costs N - 1, one found in the first wave 16.
  const wide = simulate(small('all', { nodes: 30 }));
  const misses = wide.askingLeaders - wide.peerHits;
  assert.ok(wide.peerRequests >= 29 * misses + 16 * wide.peerHits && wide.peerRequests < 29 * wide.askingLeaders, `${wide.peerRequests} for ${wide.askingLeaders}`);
});

test("'owner' and 'owner-fetch' ask one peer per local miss at most", () => {
  for (const strategy of ['owner', 'owner-fetch'] as const) {
    const r = simulate(small(strategy, { nodes: 10 }));
    assert.equal(r.peerRequests, r.askingLeaders);
    assert.ok(r.askingLeaders < r.leaders, 'a node that owns the key asks nobody');
  }
});

test('the bench:cluster workload: every URL once on each of 3 nodes, one request at a time', () => {
  const none = simulate(benchClusterConfig('none', 1));
  assert.equal(none.renders, 900);
  assert.equal(none.distinctUrls, 300);
  const all = simulate(benchClusterConfig('all', 1));
  assert.equal(all.renders, 300);
  assert.equal(all.peerRequests / all.requests, 2);
  const fetch = simulate(benchClusterConfig('owner-fetch', 1));
  assert.equal(fetch.renders, 300);
  // 'owner': rendered once when the first node asked is the owner, twice or three times otherwise.
  const owner = checkRow('owner', 10);
  assert.ok(owner.rendersPerUrl.mean > 1.9 && owner.rendersPerUrl.mean < 2.1, String(owner.rendersPerUrl.mean));
  assert.ok(Math.abs(owner.peerRequestsPerRequest.mean - 2 / 3) < 0.01);
});

test('a flush costs N - 1 peer messages, and 1 + N through Redis (XADD, one XREAD reply per node)', () => {
  const peers = simulate(small('owner-fetch', { nodes: 10, flushRate: 5 }));
  assert.ok(peers.flushes > 0);
  assert.equal(peers.invalidationMessages, 9 * peers.flushes);
  const redis = simulate(small('redis', { nodes: 10, flushRate: 5 }));
  assert.equal(redis.invalidationMessages, 11 * redis.flushes);
  const both = simulate(small('redis+owner-fetch', { nodes: 10, flushRate: 5 }));
  assert.equal(both.invalidationMessages, 20 * both.flushes);
});

test('a Redis tier alone renders a cold key once for every node (render lease), but for one race', () => {
  const r = simulate(small('redis', { nodes: 10 }));
  assert.equal(r.peerRequests, 0);
  assert.ok(r.redisCommands >= r.leaders, 'at least one GET per local miss');
  // The race: a node's GET misses, the lease holder then stores and releases, and the node's
  // SET NX takes the free lease and renders again (the lease is taken without reading the entry
  // once more). Its window is one Redis round trip: rare, and gone when that costs nothing.
  assert.ok(r.rendersWithinWindow > 0 && r.rendersWithinWindow < r.renders / 500, `${r.rendersWithinWindow} of ${r.renders}`);
  const instant = simulate(small('redis', { nodes: 10, latency: { ...LATENCY, redisCommand: 0 } }));
  assert.equal(instant.rendersWithinWindow, 0);
});

test('no strategy renders fewer times than one cache with unbounded memory would', () => {
  for (const strategy of ['none', 'all', 'owner', 'owner-fetch', 'redis', 'redis+owner-fetch'] as const) {
    const r = simulate(small(strategy, { nodes: 10, memoryEntries: 200, flushRate: 2 }));
    assert.ok(r.minimumRenders > 0 && r.renders >= 0.98 * r.minimumRenders, `${strategy}: ${r.renders} renders, least possible ${r.minimumRenders}`);
  }
});

test('the rendezvous owner moves only the keys of a node that leaves', () => {
  let moved = 0;
  for (let url = 0; url < 5_000; url++) {
    const before = rendezvousOwner(url, 10, 3);
    const after = rendezvousOwner(url, 9, 3); // node 9 left
    if (before === 9) moved++;
    else assert.equal(after, before);
  }
  assert.ok(moved > 350 && moved < 650, `node 9 owned ${moved} of 5000`);
});
