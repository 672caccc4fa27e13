/**
 * Integrity of the Redis tier against a real redis-server: a value under the prefix that does not
 * decode, or another URL's valid entry copied under a key, is never served: it is removed,
 * counted (`corrupt`) and reported (`error`), and the page is rendered; a value of an older
 * version is a counted miss. A node cut off from Redis while Redis restarted empty (and a page
 * was invalidated meanwhile) comes back with everything stale, never serving that page as a
 * fresh HIT.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createCache, redisStore } from '../../src/index.js';
import { encodeEntry } from '../../src/entry.js';
import { makeEntry } from '../../src/testing.js';
import { closedAfterFile, listen, request, sleep } from '../helpers/http.js';
import { NO_REDIS, startRedis } from '../helpers/redis.js';

const redis = await startRedis();
const tracked = closedAfterFile();
const HOST = { host: 'site.test' };
const clients: Redis[] = [];
after(() => {
  for (const c of clients) c.disconnect();
});

async function until(check: () => boolean | Promise<boolean>, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

function raw(): Redis {
  const c = new Redis(redis!.url);
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

/** Counts renders per path; each says which render it was. */
function origin(): { renders: Map<string, number>; handler: (req: IncomingMessage, res: ServerResponse) => void } {
  const renders = new Map<string, number>();
  return {
    renders,
    handler: (req, res) => {
      const n = (renders.get(req.url ?? '') ?? 0) + 1;
      renders.set(req.url ?? '', n);
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.setHeader('cache-control', 'public, max-age=60');
      res.end(`<p>${req.url} render ${n}</p>`);
    },
  };
}

let prefixes = 0;
/** A node: a cache with its own memory over Redis (at `url`, default the server) under `prefix`. */
async function node(prefix: string, handler: (req: IncomingMessage, res: ServerResponse) => void, url = redis!.url, cacheOptions = {}) {
  const store = await redisStore({ url, prefix });
  const cache = createCache({ stores: [store], ...cacheOptions });
  tracked.caches.push(cache);
  const server = await listen(cache.wrap(handler));
  tracked.servers.push(server);
  const errors: Error[] = [];
  cache.on('error', (e) => errors.push(e as Error));
  return { url: server.url, store, cache, errors };
}

describe('values under the prefix are checked on read', () => {
  test('a value that does not decode: removed, counted, reported; the page is rendered', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const prefix = `integrity${++prefixes}:`;
    await raw().set(`${prefix}e:site.test/g`, 'garbage, not an entry');
    const o = origin();
    const n = await node(prefix, o.handler);
    const r = await request(`${n.url}/g`, { headers: HOST });
    assert.equal(r.status, 200);
    assert.equal(r.body, '<p>/g render 1</p>');
    assert.equal(n.store.stats().corrupt, 1);
    assert.equal(n.errors.length, 1);
    assert.match(String((n.errors[0]!.cause as Error | undefined)?.message ?? n.errors[0]!.message), /does not decode/);
    assert.ok(n.cache.stats().errors >= 1);
    assert.equal(await until(async () => (await raw().getBuffer(`${prefix}e:site.test/g`))?.toString() !== 'garbage, not an entry'), true, 'the garbage is gone');
  });

  test("another URL's valid entry copied under a key is never served as that key's page", async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const prefix = `integrity${++prefixes}:`;
    const o = origin();
    const a = await node(prefix, o.handler);
    for (const path of ['/a', '/b']) assert.equal((await request(`${a.url}${path}`, { headers: HOST })).body, `<p>${path} render 1</p>`);
    const c = raw();
    assert.equal(await until(async () => (await c.exists(`${prefix}e:site.test/a`, `${prefix}e:site.test/b`)) === 2), true);
    const pttl = await c.pttl(`${prefix}e:site.test/a`);
    await c.set(`${prefix}e:site.test/b`, (await c.getBuffer(`${prefix}e:site.test/a`))!, 'PX', pttl);
    // A node with an empty memory reads /b from Redis.
    const b = await node(prefix, o.handler);
    const r = await request(`${b.url}/b`, { headers: HOST });
    assert.equal(r.body, '<p>/b render 2</p>', 'rendered, not /a');
    assert.equal(b.store.stats().corrupt, 1);
    assert.equal(b.errors.length, 1);
    assert.match(String((b.errors[0]!.cause as Error | undefined)?.message), /another key/);
    // Its own copy of /a is still good.
    assert.equal((await request(`${b.url}/a`, { headers: HOST })).body, '<p>/a render 1</p>');
    assert.equal(b.store.stats().corrupt, 1);
  });

  test('a value written by an older version is a counted miss, not an error', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const prefix = `integrity${++prefixes}:`;
    const old = encodeEntry(makeEntry({ body: Buffer.from('<p>old format</p>'), url: '/o', host: 'site.test' }));
    await raw().set(`${prefix}e:site.test/o`, old, 'PX', 60_000);
    const o = origin();
    const n = await node(prefix, o.handler);
    assert.equal((await request(`${n.url}/o`, { headers: HOST })).body, '<p>/o render 1</p>');
    assert.equal(n.store.stats().outdated, 1);
    assert.equal(n.store.stats().corrupt, 0);
    assert.deepEqual(n.errors, []);
  });
});

/** A TCP relay to Redis that can be cut (every connection dropped, none accepted) and reopened on the same port. */
async function relay(target: number): Promise<{ port: number; cut(): Promise<void>; reopen(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const start = (port: number): Promise<number> => {
    server = createServer((client) => {
      const upstream = connect(target, '127.0.0.1');
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    return new Promise((resolve) => server!.listen(port, '127.0.0.1', () => resolve((server!.address() as { port: number }).port)));
  };
  const port = await start(0);
  const cut = async (): Promise<void> => {
    const closed = new Promise((r) => server?.close(r));
    for (const s of sockets) s.destroy();
    await closed;
    server = undefined;
  };
  return { port, cut, reopen: async () => void (await start(port)), close: cut };
}

describe('a node cut off while Redis restarted empty', () => {
  test('comes back with everything stale: a page invalidated meanwhile is never a fresh HIT', { timeout: 60_000 }, async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const prefix = `integrity${++prefixes}:`;
    const o = origin();
    const a = await node(prefix, o.handler, redis.url, { gracePeriod: 0 });
    const link = await relay(redis.port);
    t.after(() => link.close());
    const b = await node(prefix, o.handler, `redis://127.0.0.1:${link.port}`, { gracePeriod: 0 });
    assert.equal((await request(`${b.url}/p`, { headers: HOST })).body, '<p>/p render 1</p>');
    assert.equal((await request(`${b.url}/p`, { headers: HOST })).headers['x-cache'], 'HIT');
    // b reads the stream (an invalidation of another page reaches it).
    await a.cache.invalidate('/other');
    assert.equal(await until(() => b.store.stats().invalidationsApplied >= 1), true);
    const appliedBefore = b.store.stats().invalidationsApplied;

    await link.cut();
    // Invalidated while b cannot hear it; then Redis restarts empty, and the record is gone.
    await a.cache.invalidate('/p');
    assert.equal(await until(() => a.store.stats().invalidationsPublished >= 2), true);
    await redis.restart();
    await link.reopen();

    assert.equal(await until(() => b.store.stats().invalidationsApplied > appliedBefore), true, 'b took the reset stream for lost invalidations');
    const r = await request(`${b.url}/p`, { headers: HOST });
    assert.notEqual(r.headers['x-cache'], 'HIT');
    assert.equal(r.body, '<p>/p render 2</p>');
  });
});
