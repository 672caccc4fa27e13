/**
 * Caches sharing one real redis-server (started here on a free loopback port): a thundering herd
 * over three nodes renders once (render lease), an invalidation on one node reaches the others,
 * and killing Redis mid-run never fails a response; the tier comes back by itself.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createCache, redisStore } from '../../src/index.js';
import { closedAfterFile, listen, request, sleep } from '../helpers/http.js';
import { NO_REDIS, startRedis } from '../helpers/redis.js';
import { countingOrigin, invalidationReachesOther, sharedNodes, until, type CountingOrigin } from '../helpers/shared-nodes.js';

const redis = await startRedis();
const tracked = closedAfterFile();
const HOST = { host: 'site.test' };


const origin = countingOrigin;

let prefixes = 0;
/** `count` nodes, each a cache with its own memory over the same Redis prefix, on its own server. */
async function nodes(count: number, handler: CountingOrigin['handler'], options: Parameters<typeof redisStore>[0] = {}, cacheOptions = {}) {
  const prefix = `cluster${++prefixes}:`;
  return sharedNodes(count, () => redisStore({ url: redis!.url, prefix, ...options }), handler, cacheOptions);
}

describe('caches sharing Redis', () => {
  test('a thundering herd spread over 3 nodes renders once', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const o = origin(300);
    const cluster = await nodes(3, o.handler);
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => request(`${cluster[i % 3]!.url}/herd`, { headers: HOST })));
    for (const r of replies) {
      assert.equal(r.status, 200);
      assert.equal(r.body, '<p>/herd render 1</p>');
    }
    assert.equal(o.renders.get('/herd'), 1, 'one render for the three nodes');
    assert.equal(cluster.reduce((n, c) => n + c.store.stats().leasesAcquired, 0), 1);
    assert.ok(cluster.some((c) => c.store.stats().leaseWaitHits > 0), 'the other nodes waited for the lease holder');
  });

  test('redisStore() not awaited: the herd over 3 nodes still renders once', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const o = origin(300);
    const prefix = `cluster${++prefixes}:`;
    const urls: string[] = [];
    for (let i = 0; i < 3; i++) {
      // The promise itself in `stores`: the cache waits for the connection.
      const cache = createCache({ stores: [redisStore({ url: redis!.url, prefix })] });
      tracked.caches.push(cache);
      const server = await listen(cache.wrap(o.handler));
      tracked.servers.push(server);
      urls.push(server.url);
    }
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => request(`${urls[i % 3]}/lazy`, { headers: HOST })));
    for (const r of replies) assert.equal(r.body, '<p>/lazy render 1</p>');
    assert.equal(o.renders.get('/lazy'), 1, 'one render for the three nodes');
  });

  test('a lease taken just after the holder stored and released: the entry is read again, not rendered twice', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const o = origin(0);
    const [a, b] = await nodes(2, o.handler);
    const prefix = `cluster${prefixes}:`;
    assert.equal((await request(`${a!.url}/late`, { headers: HOST })).body, '<p>/late render 1</p>');
    await until('the entry to reach Redis', async () => (await b!.store.get('site.test/late')) !== undefined);
    // Node C's first read of the page misses, as if it ran before A's write reached Redis; its
    // lease is then free (A released it): the interleaving a render lease alone cannot see.
    const real = await redisStore({ url: redis!.url, prefix });
    let early = true;
    const late = new Proxy(real, {
      get(target, prop) {
        if (prop === 'get' && early) {
          return (key: string) => {
            early = false;
            return key === 'site.test/late' ? undefined : target.get(key);
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const c = createCache({ stores: [late] });
    tracked.caches.push(c);
    const server = await listen(c.wrap(o.handler));
    tracked.servers.push(server);
    const reply = await request(`${server.url}/late`, { headers: HOST });
    assert.equal(early, false, 'the first read missed');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, '<p>/late render 1</p>', 'the entry A rendered, read again after the lease');
    assert.equal(o.renders.get('/late'), 1, 'rendered once for the nodes');
    assert.equal(real.stats().leasesAcquired, 1);
    assert.equal(real.stats().leaseWaitHits, 1);
    const check = new Redis(redis!.url);
    t.after(() => check.disconnect());
    await until('the lease to be given back', async () => (await check.exists(real.keys.lease('site.test/late'))) === 0);
  });

  test('a node missing a page takes it from Redis instead of rendering', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const o = origin(0);
    const [a, b] = await nodes(2, o.handler);
    assert.equal((await request(`${a!.url}/shared`, { headers: HOST })).headers['x-cache'], 'MISS');
    await until('the entry to reach Redis', async () => (await b!.store.get('site.test/shared')) !== undefined);
    const fromB = await request(`${b!.url}/shared`, { headers: HOST });
    assert.equal(fromB.body, '<p>/shared render 1</p>');
    assert.equal(fromB.headers['x-cache'], 'HIT');
    assert.equal(o.renders.get('/shared'), 1);
  });

  test('a stale page served by 3 nodes is refreshed once between them, and each node then serves the new copy', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    let renders = 0;
    const cluster = await nodes(3, async (_req, res) => {
      const n = ++renders;
      await sleep(200);
      res.setHeader('cache-control', 'public, max-age=1, stale-while-revalidate=60');
      res.end(`render ${n}`);
    });
    // One render for the three nodes (A renders, B and C wait for its lease), then stale.
    await Promise.all(cluster.map((c) => request(`${c.url}/swr`, { headers: HOST })));
    assert.equal(renders, 1);
    await sleep(1100);
    const stale = await Promise.all(Array.from({ length: 9 }, (_, i) => request(`${cluster[i % 3]!.url}/swr`, { headers: HOST })));
    for (const r of stale) {
      assert.equal(r.headers['x-cache'], 'STALE');
      assert.equal(r.body, 'render 1');
    }
    for (const c of cluster) await until('every node to hold the refreshed copy', async () => (await request(`${c.url}/swr`, { headers: HOST })).body === 'render 2');
    assert.equal(renders, 2, 'one background refresh for the three nodes');
    for (const c of cluster) assert.equal((await request(`${c.url}/swr`, { headers: HOST })).headers['x-cache'], 'HIT');
  });

  test('an invalidation on one node is seen by every node sharing Redis', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const o = origin(0);
    const [a, b] = await nodes(2, o.handler, {}, { gracePeriod: 0 });
    await invalidationReachesOther(a!, b!, HOST);
  });

  test('Redis killed mid-run: every response still comes (body, status, renders); the tier reconnects after a restart', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const o = origin(0);
    const [node] = await nodes(1, o.handler, { commandTimeout: 100, failureThreshold: 2, coolDown: 200 });
    const errors: unknown[] = [];
    node!.cache.on('error', (e) => errors.push(e));
    assert.equal((await request(`${node!.url}/warm`, { headers: HOST })).status, 200);
    await redis.kill();
    // Whatever this test finds, the next tests get a running server.
    let restarted = false;
    t.after(async () => {
      if (!restarted) await redis.restart();
    });
    for (let i = 0; i < 20; i++) {
      const path = i % 2 === 0 ? '/warm' : `/cold/${i}`;
      const r = await request(`${node!.url}${path}`, { headers: HOST });
      assert.equal(r.status, 200, `${path} during the outage`);
      assert.equal(r.body, `<p>${path} render 1</p>`);
    }
    assert.equal(o.renders.get('/warm'), 1, 'the warm page is served from memory');
    for (let i = 1; i < 20; i += 2) assert.equal(o.renders.get(`/cold/${i}`), 1, 'each cold page rendered once, locally');
    assert.ok(errors.length > 0 && node!.cache.stats().errors > 0, 'the outage is counted and reported');
    // Open, or half-open once coolDown has passed (its probe fails while Redis is down).
    assert.notEqual(node!.store.stats().breaker, 'closed');
    await redis.restart();
    restarted = true;
    const check = new Redis(redis.url);
    check.on('error', () => undefined);
    t.after(() => check.disconnect());
    await until('the tier to write to Redis again', async () => {
      await request(`${node!.url}/after/${Date.now()}`, { headers: HOST });
      return (await check.keys(`cluster${prefixes}:e:*`)).length > 0;
    });
    assert.equal(node!.store.stats().breaker, 'closed');
  });
});

test('Redis hanging (SIGSTOP): responses still come, each delayed at most by the command timeouts', async (t) => {
  if (!redis) return t.skip(NO_REDIS);
  const o = origin(0);
  const [node] = await nodes(1, o.handler, { commandTimeout: 150, failureThreshold: 2, coolDown: 60_000 });
  node!.cache.on('error', () => undefined);
  assert.equal((await request(`${node!.url}/before`, { headers: HOST })).status, 200);
  redis.pause();
  t.after(() => redis.resume());
  const started = Date.now();
  for (let i = 0; i < 10; i++) {
    const r = await request(`${node!.url}/hung/${i}`, { headers: HOST });
    assert.equal(r.status, 200);
    assert.equal(r.body, `<p>/hung/${i} render 1</p>`);
  }
  const elapsed = Date.now() - started;
  // Two timed-out lookups open the breaker; after that Redis costs nothing (a loaded machine gets slack).
  assert.ok(elapsed < 5000, `10 cold pages with Redis hung took ${elapsed} ms`);
  assert.ok(node!.store.stats().timeouts >= 2);
  assert.equal(node!.store.stats().breaker, 'open');
  redis.resume();
});

test('examples/tiers.ts --check: memory, disk and Redis tiers with compression', async (t) => {
  if (!redis) return t.skip(NO_REDIS);
  const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(tsx, ['examples/tiers.ts', '--check'], { timeout: 60_000, env: { ...process.env, REDIS_URL: redis.url } });
  const lines = stdout.trim().split('\n');
  assert.match(lines[1] ?? '', /^200 MISS identity$/);
  assert.match(lines[2] ?? '', /^200 HIT br \d+ bytes$/);
  assert.match(stdout, /redis: \{"name":"redis","commands":[1-9]\d*,"errors":0,"timeouts":0,"skipped":0,"breaker":"closed"/);
  assert.equal(lines.at(-1), 'renders: 1');
});
