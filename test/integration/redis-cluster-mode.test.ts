/**
 * The Redis tier on a real three-master Redis Cluster (started here: `redis-server
 * --cluster-enabled yes` on three free ports, joined by `redis-cli --cluster create`): the store
 * contract, caches on two nodes sharing entries, a cold page rendered once over three nodes
 * (leases), an invalidation reaching the other node through the stream, keys spread over the
 * slots with a key's entry and lease in one slot, and a master killed without a failed response.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { redisStore, type RedisStore } from '../../src/index.js';
import { makeEntry, storeContract } from '../../src/testing.js';
import { serveCli, startCli } from '../helpers/bin.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';
import { NO_REDIS_CLUSTER, startRedisCluster } from '../helpers/redis-cluster.js';
import { countingOrigin, invalidationReachesOther, sharedNodes, until, type CountingOrigin } from '../helpers/shared-nodes.js';

const cluster = await startRedisCluster();
const tracked = closedAfterFile();
const stores: RedisStore[] = [];
const clients: Array<Redis | Cluster> = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const c of clients) c.disconnect();
});
const HOST = { host: 'site.test' };


let prefixes = 0;
/** A store on the cluster under its own prefix, closed after the file. */
async function open(options: Omit<Parameters<typeof redisStore>[0], 'cluster' | 'url' | 'client'> = {}): Promise<RedisStore> {
  const store = await redisStore({ cluster: cluster!.urls, prefix: `rc${++prefixes}:`, ...options });
  stores.push(store);
  return store;
}

/** A connection to one node (for the commands a cluster client cannot route: CLUSTER ...). */
function node(port: number): Redis {
  const c = new Redis(port, '127.0.0.1');
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

const origin = countingOrigin;

/** `count` caches, each with its own memory over the same prefix on the cluster, each on its own server. */
async function nodes(count: number, handler: CountingOrigin['handler'], options: Parameters<typeof open>[0] = {}, cacheOptions = {}) {
  const prefix = `rcn${++prefixes}:`;
  return sharedNodes(count, () => open({ prefix, ...options }), handler, cacheOptions);
}

/** The port of the master serving `slot`. */
async function ownerOf(slot: number): Promise<number> {
  const slots = (await node(cluster!.ports[0]!).call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
  const range = slots.find(([from, to]) => slot >= from && slot <= to);
  assert.ok(range, `slot ${slot} is served`);
  return range[2][1];
}

const keyslot = async (name: string): Promise<number> => Number(await node(cluster!.ports[0]!).call('CLUSTER', 'KEYSLOT', name));

storeContract('RedisStore on a Redis Cluster', () => open(), { budget: 'server', ...(cluster === undefined ? { skip: NO_REDIS_CLUSTER } : {}) });

describe('the Redis tier on a three-master Redis Cluster', () => {
  test('a page rendered on one node is a hit on the other, from the cluster', async (t) => {
    if (!cluster) return t.skip(NO_REDIS_CLUSTER);
    const o = origin(0);
    const [a, b] = await nodes(2, o.handler);
    for (let i = 0; i < 6; i++) {
      const miss = await request(`${a!.url}/shared/${i}`, { headers: HOST });
      assert.equal(miss.headers['x-cache'], 'MISS');
      await until('the entry to reach the cluster', async () => (await b!.store.get(`site.test/shared/${i}`)) !== undefined);
      const hit = await request(`${b!.url}/shared/${i}`, { headers: HOST });
      assert.equal(hit.status, 200);
      assert.equal(hit.headers['x-cache'], 'HIT');
      assert.equal(hit.body, `<p>/shared/${i} render 1</p>`);
      assert.equal(o.renders.get(`/shared/${i}`), 1, 'rendered once for both nodes');
    }
    assert.equal(a!.store.stats().errors + b!.store.stats().errors, 0);
  });

  test('a cold page requested on three nodes at once is rendered once (render leases across nodes)', async (t) => {
    if (!cluster) return t.skip(NO_REDIS_CLUSTER);
    const o = origin(300);
    const three = await nodes(3, o.handler);
    for (const path of ['/herd/a', '/herd/b']) {
      const replies = await Promise.all(Array.from({ length: 15 }, (_, i) => request(`${three[i % 3]!.url}${path}`, { headers: HOST })));
      for (const r of replies) {
        assert.equal(r.status, 200);
        assert.equal(r.body, `<p>${path} render 1</p>`);
      }
      assert.equal(o.renders.get(path), 1, `${path}: one render for the three nodes`);
    }
    assert.equal(three.reduce((n, c) => n + c.store.stats().leasesAcquired, 0), 2, 'one lease per page');
    assert.ok(three.some((c) => c.store.stats().leaseWaitHits > 0), 'the other nodes waited for the lease holder');
  });

  test('an invalidation on one node reaches the other through the stream (XREAD on the cluster)', async (t) => {
    if (!cluster) return t.skip(NO_REDIS_CLUSTER);
    const o = origin(0);
    const [a, b] = await nodes(2, o.handler, {}, { gracePeriod: 0 });
    await invalidationReachesOther(a!, b!, HOST);
  });

  test('keys spread over slots and masters; an entry and its lease share a slot, the stream and its epoch another', async (t) => {
    if (!cluster) return t.skip(NO_REDIS_CLUSTER);
    const store = await open();
    const keys = Array.from({ length: 30 }, (_, i) => `site.test/spread/${i}`);
    for (const key of keys) await store.set(key, makeEntry());
    const slots = await Promise.all(keys.map((key) => keyslot(store.keys.entry(key))));
    assert.ok(new Set(slots).size > 10, `30 entries in ${new Set(slots).size} slots`);
    const owners = new Set(await Promise.all(slots.map(ownerOf)));
    assert.equal(owners.size, 3, 'every master holds entries');
    for (const [i, key] of keys.entries()) {
      assert.equal(await keyslot(store.keys.lease(key)), slots[i], `the lease of ${key} is in the slot of its entry`);
      const count = Number(await node(await ownerOf(slots[i]!)).call('CLUSTER', 'COUNTKEYSINSLOT', slots[i]!));
      assert.ok(count >= 1, `slot ${slots[i]} holds the entry of ${key}`);
    }
    // A key whose characters would make a hash tag of their own still keeps entry and lease together.
    for (const odd of ['}x', '{a}b', '{}', 'a}{b']) assert.equal(await keyslot(store.keys.lease(odd)), await keyslot(store.keys.entry(odd)));
    assert.equal(await keyslot(store.keys.stream), await keyslot(store.keys.epoch));
    assert.match(store.keys.entry('k'), /^rc\d+:\{[0-9a-f]{16}\}e:k$/);

    // A lease taken during a render is in its entry's slot, on its entry's master.
    const o = origin(300);
    const [a] = await nodes(1, o.handler);
    const pending = request(`${a!.url}/leased`, { headers: HOST });
    const reader = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    reader.on('error', () => undefined);
    clients.push(reader);
    await until('the lease to be taken', async () => (await reader.exists(a!.store.keys.lease('site.test/leased'))) === 1);
    assert.equal((await pending).status, 200);
    assert.equal(await reader.exists(a!.store.keys.entry('site.test/leased')), 1);
    assert.equal(await keyslot(a!.store.keys.lease('site.test/leased')), await keyslot(a!.store.keys.entry('site.test/leased')));
  });

  test('an ioredis Cluster passed as client is used, hash-tagged, and left open', async (t) => {
    if (!cluster) return t.skip(NO_REDIS_CLUSTER);
    const client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })), { enableOfflineQueue: false });
    client.on('error', () => undefined);
    clients.push(client);
    await until('the client to be ready', () => client.status === 'ready');
    const store = await redisStore({ client, prefix: 'own:' });
    await store.set('k', makeEntry());
    assert.ok(await store.get('k'));
    assert.equal(store.keys.entry('k'), `own:{${store.keys.entry('k').slice(5, 21)}}e:k`);
    await store.close();
    assert.equal(await client.exists(store.keys.entry('k')), 1, 'still connected after the store closed');
  });

  test('serve --redis-cluster and a config file\'s redis.cluster: two nodes share pages; the startup line names the cluster', async (t) => {
    if (!cluster) return t.skip(NO_REDIS_CLUSTER);
    let renders = 0;
    const up = await listen((_req, res) => {
      renders++;
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=600' });
      res.end(`<p>render ${renders}</p>`);
    });
    tracked.servers.push(up);
    const dir = mkdtempSync(join(tmpdir(), 'stratacache-cluster-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'stratacache.config.json'), JSON.stringify({ upstream: up.url, port: 0, redis: { cluster: cluster.urls.slice(1), prefix: 'cli:', commandTimeout: '500ms' } }));
    // One node by the flag (it wins over its config file's cluster), the other by the file alone.
    const a = await serveCli(['--upstream', up.url, '--redis-cluster', cluster.urls.slice(0, 2).join(','), '--config', join(dir, 'stratacache.config.json')]);
    const b = startCli([], { cwd: dir });
    const bUrl = (await b.waitFor(/listening on (http:\/\/[^/\s]+)\//))[1]!;
    assert.match(a.output().stdout, new RegExp(`redis cluster ${cluster.urls.slice(0, 2).join(' ').replace(/[.]/g, '\\.')};`));
    assert.match(b.output().stdout, new RegExp(`tiers: memory 64 MiB, redis cluster ${cluster.urls.slice(1).join(' ').replace(/[.]/g, '\\.')}; peers: none`));
    assert.equal((await request(`${a.url}/cli`, { headers: HOST })).headers['x-cache'], 'MISS');
    const reader = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    reader.on('error', () => undefined);
    clients.push(reader);
    await until('the entry to reach the cluster', async () => (await reader.exists((await open({ prefix: 'cli:' })).keys.entry('site.test/cli'))) === 1);
    const hit = await request(`${bUrl}/cli`, { headers: HOST });
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.body, '<p>render 1</p>');
    assert.equal(renders, 1);
    for (const s of [a, b]) s.child.kill('SIGTERM');
    for (const s of [a, b]) assert.equal((await s.exited).code, 0);
  });

  test('examples/redis-cluster.ts --check: a miss, then a hit, one render, no Redis error', async (t) => {
    if (!cluster) return t.skip(NO_REDIS_CLUSTER);
    const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(tsx, ['examples/redis-cluster.ts', '--check'], { timeout: 60_000, env: { ...process.env, REDIS_CLUSTER: cluster.urls.join(',') } });
    const lines = stdout.trim().split('\n');
    assert.equal(lines[1], '200 MISS');
    assert.equal(lines[2], '200 HIT');
    assert.match(stdout, /redis: \{"name":"redis","commands":[1-9]\d*,"errors":0,"timeouts":0,"skipped":0,"breaker":"closed"/);
    assert.equal(lines.at(-1), 'renders: 1');
  });

  // Last: it leaves the cluster with a dead master.
  test('one master killed: every response still comes (200), the store errors are counted', async (t) => {
    if (!cluster) return t.skip(NO_REDIS_CLUSTER);
    const o = origin(0);
    const [a, b] = await nodes(2, o.handler, { commandTimeout: 1000, failureThreshold: 1000 });
    const errors: unknown[] = [];
    for (const n of [a!, b!]) n.cache.on('error', (e) => errors.push(e));
    // A page on a master that stays, and one on the master that goes.
    const victim = await ownerOf(await keyslot(a!.store.keys.entry('site.test/doomed')));
    let alive = '';
    for (let i = 0; alive === ''; i++) if ((await ownerOf(await keyslot(a!.store.keys.entry(`site.test/alive/${i}`)))) !== victim) alive = `/alive/${i}`;
    for (const path of [alive, '/doomed']) {
      assert.equal((await request(`${a!.url}${path}`, { headers: HOST })).status, 200);
      await until(`${path} to reach the cluster`, async () => (await b!.store.get(`site.test${path}`)) !== undefined);
    }
    await cluster.kill(victim);

    const kept = await request(`${b!.url}${alive}`, { headers: HOST });
    assert.equal(kept.status, 200);
    assert.equal(kept.headers['x-cache'], 'HIT', 'a page on a surviving master still comes from the cluster');
    assert.equal(o.renders.get(alive), 1);
    for (let i = 0; i < 6; i++) {
      const r = await request(`${b!.url}/doomed`, { headers: HOST });
      assert.equal(r.status, 200, 'a page on the dead master is rendered here instead');
      assert.match(r.body, /^<p>\/doomed render \d<\/p>$/);
      const c = await request(`${[a, b][i % 2]!.url}/cold/${i}`, { headers: HOST });
      assert.equal(c.status, 200);
      assert.equal(c.body, `<p>/cold/${i} render 1</p>`);
    }
    const failed = b!.store.stats().errors + b!.store.stats().timeouts;
    assert.ok(failed > 0 && errors.length > 0 && b!.cache.stats().errors > 0, `the dead master is counted (${failed} failed commands) and reported`);
  });
});
