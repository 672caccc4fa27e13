/**
 * Members found through heartbeats in a real redis-server (started here): nodes sharing the Redis
 * tier announce themselves and see each other; one whose heartbeats stop (its connection cut) is
 * dropped once its TTL ran out; one that closes is withdrawn at once; Redis restarted empty keeps
 * the last members meanwhile, then the nodes announce again and see each other again; the same
 * heartbeats on a three-master Redis Cluster.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createCache, type StrataCache } from '../../src/index.js';
import { redisStore, type RedisStore } from '../../src/stores/redis.js';
import type { RedisDiscoveryOptions } from '../../src/peers/discovery-options.js';
import type { MembershipChange } from '../../src/peers/membership.js';
import { HOST, SECRET, countingOrigin, kill, lateServer } from '../helpers/cluster.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/origin.js';
import { peersOf, untilPeers } from '../helpers/membership.js';
import { NO_REDIS, startRedis } from '../helpers/redis.js';
import { NO_REDIS_CLUSTER, startRedisCluster } from '../helpers/redis-cluster.js';

const redis = await startRedis();
const origin = countingOrigin();
const running: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const r of running.reverse()) await r.close();
});

let prefixes = 0;

/** Node i's store under `prefix`: by default on the test's Redis. */
type StoreFor = (i: number, prefix: string) => Promise<RedisStore>;
const onRedis: StoreFor = (_i, prefix) => redisStore({ url: redis!.url, prefix, commandTimeout: 200, coolDown: 100 });

/** `count` nodes (servers and caches) sharing one Redis prefix. */
async function nodes(count: number, discover: Omit<RedisDiscoveryOptions, 'redis'>, storeFor: StoreFor = onRedis): Promise<{ urls: string[]; caches: StrataCache[]; prefix: string }> {
  const prefix = `m${++prefixes}:`;
  const servers = await Promise.all(Array.from({ length: count }, () => lateServer()));
  const caches = await Promise.all(
    servers.map(async (s, i) => {
      const store = await storeFor(i, prefix);
      const cache = createCache({ stores: [store], peers: { self: s.url, secret: SECRET, queryTimeout: 2_000, discover: { redis: true, ...discover } } });
      cache.on('error', () => undefined); // Redis is cut and restarted here on purpose
      s.bind(cache.wrap(origin.handler));
      running.push({ close: () => kill(s.server) }, cache);
      return cache;
    }),
  );
  return { urls: servers.map((s) => s.url), caches, prefix };
}

describe('peers.discover: { redis: true }', { skip: redis === undefined ? NO_REDIS : false }, () => {
  test('three nodes announce and see each other; one whose heartbeats stop leaves once its TTL ran out', async () => {
    const cut = new Redis(redis!.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    cut.on('error', () => undefined);
    await new Promise((resolve) => cut.once('ready', resolve));
    const { urls, caches } = await nodes(3, { interval: 100, ttl: 1_000 }, (i, prefix) => (i === 2 ? redisStore({ client: cut, prefix, commandTimeout: 200, coolDown: 100 }) : onRedis(i, prefix)));
    const [a, b, c] = caches as [StrataCache, StrataCache, StrataCache];
    await untilPeers(a, [urls[1]!, urls[2]!]);
    await untilPeers(b, [urls[0]!, urls[2]!]);
    await untilPeers(c, [urls[0]!, urls[1]!]);
    assert.equal(a.stats().members, 3);
    // The cluster works: a page rendered on one node is a peer hit on another.
    assert.equal((await request(`${urls[0]}/r1`, { headers: { host: HOST } })).headers['x-cache'], 'MISS');
    assert.equal(origin.renders.get('/r1'), 1);

    // Node c loses Redis (its heartbeats fail; it does not withdraw): the others drop it after its TTL.
    const left = new Promise<MembershipChange>((resolve) => a.once('membership', resolve));
    cut.disconnect();
    assert.deepEqual((await left).left, [urls[2]]);
    await untilPeers(b, [urls[0]!]);
    // Node c cannot read the members either: it keeps the last ones it knew.
    assert.deepEqual(peersOf(c), [urls[0], urls[1]].sort());
    assert.equal(a.stats().peerLeaves, 1);
  });

  test('a node that closes is withdrawn at once, well before its TTL', async () => {
    const { urls, caches } = await nodes(2, { interval: 100, ttl: 60_000 });
    const [a, b] = caches as [StrataCache, StrataCache];
    await untilPeers(a, [urls[1]!]);
    await untilPeers(b, [urls[0]!]);
    const left = new Promise<MembershipChange>((resolve) => a.once('membership', resolve));
    await b.close();
    // A 60 s TTL: only the withdrawal explains the leave within the 10 s bound.
    assert.deepEqual(await left, { joined: [], left: [urls[1]], nodes: [urls[0]] });
  });

  test('Redis restarted empty: the last members are kept meanwhile, then every node announces again', async () => {
    const { urls, caches, prefix } = await nodes(3, { interval: 100, ttl: 1_000 });
    for (const [i, cache] of caches.entries()) await untilPeers(cache, urls.filter((_, j) => j !== i));
    await redis!.kill();
    // Down: heartbeats fail, then the breaker skips them; nobody loses its peers.
    const failures = new Promise<void>((resolve) => caches[0]!.once('error', () => resolve()));
    await failures;
    for (const [i, cache] of caches.entries()) assert.deepEqual(peersOf(cache), urls.filter((_, j) => j !== i).sort());
    await redis!.restart();
    const raw = new Redis(redis!.url);
    raw.on('error', () => undefined);
    running.push({ close: async () => void raw.disconnect() });
    // Back, empty: each node announces itself again (its client reconnects, its breaker lets a
    // heartbeat through), and every node sees the others.
    const announced = async (): Promise<string[]> => (await raw.zrange(`${prefix}{members}:nodes`, 0, -1).catch(() => [])).sort();
    assert.ok(await until(async () => (await announced()).length === 3, 15_000), `announced: ${JSON.stringify(await announced())}`);
    assert.deepEqual(await announced(), [...urls].sort());
    for (const [i, cache] of caches.entries()) await untilPeers(cache, urls.filter((_, j) => j !== i));
  });

  test('on a three-master Redis Cluster: the heartbeats (one key, one slot) list the nodes; a node that closes leaves', async (t) => {
    const cluster = await startRedisCluster();
    if (cluster === undefined) return t.skip(NO_REDIS_CLUSTER);
    const { urls, caches } = await nodes(3, { interval: 100, ttl: 1_000 }, (_i, prefix) => redisStore({ cluster: cluster.urls, prefix, commandTimeout: 500, coolDown: 100 }));
    for (const [i, cache] of caches.entries()) await untilPeers(cache, urls.filter((_, j) => j !== i));
    const left = new Promise<MembershipChange>((resolve) => caches[0]!.once('membership', resolve));
    await caches[2]!.close();
    assert.deepEqual((await left).left, [urls[2]]);
  });
});
