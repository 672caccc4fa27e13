/**
 * The Redis store against a real redis-server (started here on a free loopback port): the store
 * contract, keys under the prefix, TTL from the entry's lifetime, the entry bound, timeouts and
 * the breaker when Redis dies, reconnection when it comes back, shared invalidations (with
 * catch-up), render leases, and the error when ioredis is missing.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { makeEntry, storeContract } from '../../src/testing.js';
import { redisStore, type RedisStore } from '../../src/stores/redis.js';
import { INSTALL_HINT } from '../../src/stores/redis-client.js';
import type { SharedInvalidation } from '../../src/stores/store.js';
import { NO_REDIS, startRedis } from '../helpers/redis.js';
import { sleep } from '../helpers/http.js';

const redis = await startRedis();
const stores: RedisStore[] = [];
const clients: Redis[] = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const c of clients) c.disconnect();
});

let prefixes = 0;
/** A store under its own prefix, closed after the file. */
async function open(options: Partial<Parameters<typeof redisStore>[0]> = {}): Promise<RedisStore> {
  const store = await redisStore({ url: redis!.url, prefix: `t${++prefixes}:`, ...options });
  stores.push(store);
  return store;
}
function raw(): Redis {
  const c = new Redis(redis!.url);
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

storeContract('RedisStore', () => open(), { budget: 'server', ...(redis === undefined ? { skip: NO_REDIS } : {}) });

describe('RedisStore', () => {
  test('keys live under the prefix; the TTL is the entry lifetime (stale windows included); bodies stay binary', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const store = await open({ prefix: 'site-a:' });
    const now = Date.now();
    const body = Buffer.from([0, 255, 0xc3, 0x28, 10, 13]);
    await store.set('example.test/p', makeEntry({ body, staleAt: now + 1000, swrUntil: now + 5000, sieUntil: now + 30_000, expiresAt: now + 30_000 }));
    const c = raw();
    assert.deepEqual(await c.keys('site-a:*'), ['site-a:e:example.test/p']);
    const ttl = await c.pttl('site-a:e:example.test/p');
    assert.ok(ttl > 28_000 && ttl <= 30_000, `PTTL ${ttl} follows expiresAt, not staleAt`);
    assert.deepEqual([...(await store.get('example.test/p'))!.body], [...body]);
    assert.equal(await (await open({ prefix: 'site-b:' })).get('example.test/p'), undefined, 'another prefix shares nothing');
  });

  test('an entry over maxEntrySize is not written and removes the older one', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const store = await open({ maxEntrySize: 4096 });
    await store.set('k', makeEntry({ body: Buffer.alloc(100, 'a') }));
    await store.set('k', makeEntry({ body: Buffer.alloc(10_000, 'b') }));
    assert.equal(await store.get('k'), undefined);
  });

  test('Redis killed: commands time out or fail, the breaker opens and skips Redis; after a restart it reconnects', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const store = await open({ commandTimeout: 200, failureThreshold: 2, coolDown: 2000 });
    await store.set('k', makeEntry());
    assert.ok(await store.get('k'));
    await redis.kill();
    let restarted = false;
    t.after(async () => {
      if (!restarted) await redis.restart();
    });
    const failures: unknown[] = [];
    for (let i = 0; i < 2; i++) await store.get('k').catch((e: unknown) => failures.push(e));
    assert.equal(failures.length, 2);
    assert.match(String((failures[0] as Error).message), /redis get (failed|timed out)/);
    assert.equal(store.stats().breaker, 'open');
    const started = Date.now();
    assert.equal(await store.get('k'), undefined, 'skipped while open: a miss, not an error');
    assert.ok(Date.now() - started < 50, 'a skipped command costs nothing');
    assert.ok(store.stats().skipped >= 1);
    await redis.restart();
    restarted = true;
    await until('the store to reconnect', async () => {
      await store.set('k2', makeEntry({ etag: '"back"' })).catch(() => undefined);
      return (await store.get('k2').catch(() => undefined))?.etag === '"back"';
    });
    assert.equal(store.stats().breaker, 'closed');
  });

  test('a missing ioredis package gives an error saying what to install', async () => {
    const missing = async (): Promise<never> => {
      const error = new Error("Cannot find package 'ioredis'") as NodeJS.ErrnoException;
      error.code = 'ERR_MODULE_NOT_FOUND';
      throw error;
    };
    await assert.rejects(redisStore({ url: 'redis://127.0.0.1:1' }, missing), { message: INSTALL_HINT });
    assert.match(INSTALL_HINT, /npm install ioredis/);
  });

  test('bad options are refused naming the option', async () => {
    await assert.rejects(redisStore({}), { name: 'TypeError', message: /exactly one of options\.client, options\.url and options\.cluster, got none/ });
    await assert.rejects(redisStore({ url: 'redis://x', cluster: ['redis://y'] }), { name: 'TypeError', message: /got url and cluster/ });
    await assert.rejects(redisStore({ cluster: [] }), { name: 'TypeError', message: /options\.cluster to be a non-empty array of redis:\/\/ URLs, got an array/ });
    await assert.rejects(redisStore({ cluster: ['redis://a:7000', 'redis://b:7001/2'] }), { name: 'TypeError', message: /options\.cluster\[1\] to be a redis:\/\/ or rediss:\/\/ URL without a database number .* got 'redis:\/\/b:7001\/2'/ });
    await assert.rejects(redisStore({ cluster: ['redis://a:7000'], prefix: 'app{1}:' }), { name: 'RangeError', message: /options\.prefix to contain no \{ or \} on a Redis Cluster .* got 'app\{1\}:'/ });
    await assert.rejects(redisStore({ url: 'http://x' }), { name: 'TypeError', message: /options\.url to be a redis:\/\/ or rediss:\/\/ URL, got 'http:\/\/x'/ });
    await assert.rejects(redisStore({ url: 'redis://x', commandTimeout: 0 }), { name: 'RangeError', message: /options\.commandTimeout .* got 0/ });
    await assert.rejects(redisStore({ url: 'redis://x', colour: 1 } as never), { name: 'TypeError', message: 'unknown option options.colour' });
    await assert.rejects(redisStore({ client: {} as never }), { name: 'TypeError', message: /options\.client to be an ioredis or iovalkey client/ });
  });

  test('a client passed in is used and left open', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const client = raw();
    const store = await redisStore({ client, prefix: 'own:' });
    await store.set('k', makeEntry());
    assert.ok(await store.get('k'));
    await store.close();
    assert.equal(await client.exists('own:e:k'), 1, 'still connected after the store closed');
  });
});

describe('RedisStore shared invalidations', () => {
  test('a record published on one node reaches the others, not itself; a node started later catches up', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const prefix = `inv${++prefixes}:`;
    const a = await open({ prefix });
    const b = await open({ prefix });
    const seenA: SharedInvalidation[] = [];
    const seenB: Array<[SharedInvalidation, string]> = [];
    a.invalidations.start((r) => seenA.push(r));
    b.invalidations.start((r, node) => seenB.push([r, node]));
    a.invalidations.publish({ paths: ['/news'], tags: [], scope: 'tree', hard: false, at: 1000 });
    await until('b to see the record', () => seenB.length === 1);
    assert.deepEqual(seenB[0], [{ paths: ['/news'], tags: [], scope: 'tree', hard: false, at: 1000 }, a.node]);
    const late = await open({ prefix });
    const seenLate: SharedInvalidation[] = [];
    late.invalidations.start((r) => seenLate.push(r));
    await until('a node started later to catch up', () => seenLate.length === 1);
    await sleep(100);
    assert.equal(seenA.length, 0, 'a node does not apply its own records');
  });

  test('records published while Redis is down are sent when it is back; a reader that was cut off reads on, everything stale', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const prefix = `inv${++prefixes}:`;
    const a = await open({ prefix, commandTimeout: 200, failureThreshold: 1, coolDown: 100 });
    const b = await open({ prefix });
    const seen: string[] = [];
    let restarted = false;
    t.after(async () => {
      if (!restarted) await redis.restart();
    });
    b.invalidations.start((r) => seen.push(r.paths[0]!));
    a.invalidations.publish({ paths: ['/before'], tags: [], scope: 'tree', hard: false, at: 1 });
    await until('the first record', () => seen.length === 1);
    await redis.kill();
    a.invalidations.publish({ paths: ['/during'], tags: [], scope: 'tree', hard: false, at: 2 });
    await sleep(300);
    await redis.restart();
    restarted = true;
    await until('the record queued during the outage', () => seen.includes('/during'), 20_000);
    // Redis came back empty: what the stream held is lost, so everything went stale ('/') too.
    assert.equal(seen[0], '/before');
    assert.ok(seen.includes('/'), `the reset stream is a soft invalidation of everything: ${seen.join(' ')}`);
  });
});

describe('RedisStore render leases', () => {
  test('one node leads, the others wait for its entry; a dead holder’s lease expires', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const prefix = `lease${++prefixes}:`;
    const a = await open({ prefix, leaseTtl: 300, leaseWait: 5000 });
    const b = await open({ prefix, leaseTtl: 300, leaseWait: 5000 });
    assert.equal(await a.leases.acquire('k'), 'lead');
    assert.equal(await b.leases.acquire('k'), 'held');
    const waiting = b.leases.waitFor('k', 'k', (e) => e.etag === '"new"');
    await sleep(50);
    await a.set('k', makeEntry({ etag: '"new"' }));
    await a.leases.release('k');
    assert.equal((await waiting)?.etag, '"new"');
    assert.equal(b.stats().leaseWaitHits, 1);

    // A holder that dies never releases: the lease expires and the waiter renders itself.
    assert.equal(await a.leases.acquire('dead'), 'lead');
    const started = Date.now();
    assert.equal(await b.leases.waitFor('dead', 'dead', () => true), undefined);
    assert.ok(Date.now() - started < 2000, 'gave up when the lease expired, not at leaseWait');
    assert.equal(await b.leases.acquire('dead'), 'lead');
  });
});
