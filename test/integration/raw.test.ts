/**
 * Raw Node handlers behind `cache.wrap(handler)`: the shared adapter scenarios, plus what only a
 * raw handler shows (sync handlers, status header options, events and stats, handler errors
 * counted and reported).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { createCache, type CacheEvent, type StrataCache } from '../../src/index.js';
import { adapterSuite, assertHit, assertStatus, scenario } from '../helpers/adapter-suite.js';
import { listen, request } from '../helpers/http.js';
import { runNodePlan, until, type Origin } from '../helpers/origin.js';

const start = (cache: StrataCache, origin: Origin) => listen(cache.wrap((req, res) => runNodePlan(origin, req, res)));

adapterSuite('raw', start);

describe('raw: wrap specifics', { timeout: 15_000 }, () => {
  test('a synchronous handler is cached too', async (t) => {
    const cache = createCache();
    let renders = 0;
    const running = await listen(
      cache.wrap((_req, res) => {
        renders++;
        res.setHeader('cache-control', 'max-age=60');
        res.end(`sync ${renders}`);
      }),
    );
    t.after(async () => {
      await running.close();
      await cache.close();
    });
    assertStatus(await request(`${running.url}/s`), 'MISS');
    assertHit(await request(`${running.url}/s`), 'sync 1');
    assert.equal(renders, 1);
  });

  test('wrap refuses a non-function handler', async () => {
    assert.throws(() => createCache().wrap('nope' as never), TypeError);
  });

  test("statusHeader 'x-cache', 'cache-status' and false", async (t) => {
    const route = () => ({ headers: { 'cache-control': 'max-age=60' }, body: 'x' });
    const xOnly = await scenario(t, start, route, { statusHeader: 'x-cache' });
    await request(`${xOnly.url}/a`);
    const xHit = await request(`${xOnly.url}/a`);
    assert.equal(xHit.headers['x-cache'], 'HIT');
    assert.equal(xHit.headers['cache-status'], undefined);

    const rfcOnly = await scenario(t, start, route, { statusHeader: 'cache-status', cacheName: 'edge-1' });
    assert.equal((await request(`${rfcOnly.url}/a`)).headers['cache-status'], 'edge-1; fwd=uri-miss');
    const rfcHit = await request(`${rfcOnly.url}/a`);
    assert.equal(rfcHit.headers['cache-status'], 'edge-1; hit');
    assert.equal(rfcHit.headers['x-cache'], undefined);

    const none = await scenario(t, start, route, { statusHeader: false });
    await request(`${none.url}/a`);
    const noneHit = await request(`${none.url}/a`);
    assert.equal(noneHit.headers['x-cache'], undefined);
    assert.equal(noneHit.headers['cache-status'], undefined);
    assert.equal(noneHit.body, 'x');
    assert.equal(none.origin.renders('/a'), 1);
  });

  test('events: miss, store, hit and pass, each with the key and url', async (t) => {
    const { url, cache } = await scenario(t, start, (req) =>
      req.path === '/nostore' ? { headers: { 'cache-control': 'no-store' }, body: 'n' } : { headers: { 'cache-control': 'max-age=60' }, body: 'e' },
    );
    const seen: Array<[string, CacheEvent]> = [];
    for (const name of ['miss', 'store', 'hit', 'pass'] as const) cache.on(name, (e) => seen.push([name, e]));
    await request(`${url}/ev?b=1&a=2`);
    await request(`${url}/ev?a=2&b=1`);
    await request(`${url}/nostore`);
    assert.deepEqual(
      seen.map(([name, e]) => [name, e.url]),
      [
        ['miss', '/ev?b=1&a=2'],
        ['store', '/ev?a=2&b=1'], // the url the render saw: the keyed form
        ['hit', '/ev?a=2&b=1'],
        ['miss', '/nostore'],
        ['pass', '/nostore'],
      ],
    );
    assert.equal(seen[0]![1].key, seen[2]![1].key);
    assert.equal(seen[4]![1].reason, 'no-store');
  });

  test('a handler error is counted and reported as a CacheError, and the client gets 500', async (t) => {
    const { url, cache } = await scenario(t, start, () => ({ fail: 'before' }));
    const errors: Error[] = [];
    cache.on('error', (e) => errors.push(e));
    const reply = await request(`${url}/boom`);
    assert.equal(reply.status, 500);
    assert.equal(reply.body, 'Internal Server Error');
    assert.equal(cache.stats().errors, 1);
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as Error & { code?: string }).code, 'ERR_HANDLER');
    assert.match(String((errors[0]!.cause as Error).message), /origin failed before writing/);
  });

  test('Host is part of the key: two virtual hosts never share an entry', async (t) => {
    const { url, origin } = await scenario(t, start, (req) => ({ headers: { 'cache-control': 'max-age=60' }, body: `site ${String(req.headers.host)}` }));
    assert.equal((await request(`${url}/`, { headers: { host: 'a.example' } })).body, 'site a.example');
    assert.equal((await request(`${url}/`, { headers: { host: 'b.example' } })).body, 'site b.example');
    assertHit(await request(`${url}/`, { headers: { host: 'A.example:80' } }), 'site a.example');
    assert.equal(origin.renders('/'), 2);
  });

  test('a cold HEAD renders the GET representation even when the handler skips HEAD bodies', async (t) => {
    const cache = createCache();
    const methods: string[] = [];
    const running = await listen(
      cache.wrap((req, res) => {
        methods.push(req.method ?? '');
        res.setHeader('cache-control', 'max-age=60');
        res.setHeader('content-type', 'text/plain');
        if (req.method === 'HEAD') {
          res.setHeader('content-length', '11');
          res.end();
          return;
        }
        res.end('full body!!');
      }),
    );
    t.after(async () => {
      await running.close();
      await cache.close();
    });
    const head = await request(`${running.url}/h`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.raw.length, 0);
    assertHit(await request(`${running.url}/h`), 'full body!!');
    assert.deepEqual(methods, ['GET']);
  });

  test('a client that disconnects mid-body: the render goes on without it, is stored, its waiter served from it', async (t) => {
    const cache = createCache();
    let renders = 0;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const running = await listen(
      cache.wrap(async (_req, res) => {
        const n = ++renders;
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
        res.write(`render ${n} first part, `);
        if (n === 1) await held;
        // Written after the client left: kept for the cache (the render goes on without A).
        res.end('second part');
      }),
    );
    t.after(async () => {
      await running.close();
      await cache.close();
    });
    // Client A reads the first chunk, then a waiter B queues behind A's render, then A leaves.
    const aborted = new Promise<void>((resolve, reject) => {
      const req = http.get(`${running.url}/leave`, { agent: false }, (res) => {
        res.once('data', async () => {
          await until(() => cache.stats().loadsDeduped === 1);
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      setTimeout(() => reject(new Error('client A never got its first chunk')), 5_000).unref();
    });
    await until(() => cache.stats().misses === 1);
    const waiter = request(`${running.url}/leave`);
    await aborted;
    release();
    // A's render ends after A left: stored whole, and B (its waiter) is served from it.
    const b = await waiter;
    assert.equal(b.body, 'render 1 first part, second part');
    assert.equal(cache.stats().stores, 1);
    assertHit(await request(`${running.url}/leave`), 'render 1 first part, second part');
    assert.equal(renders, 1);
  });

  test('maxVariants: storing one variant too many drops the oldest', async (t) => {
    const { url, origin } = await scenario(
      t,
      start,
      (req) => ({ headers: { 'cache-control': 'max-age=60', vary: 'accept-language' }, body: `lang ${String(req.headers['accept-language'])}` }),
      { maxVariants: 2 },
    );
    const lang = (l: string) => ({ headers: { 'accept-language': l } });
    for (const l of ['fr', 'de', 'it']) assertStatus(await request(`${url}/v`, lang(l)), 'MISS');
    assertHit(await request(`${url}/v`, lang('it')), 'lang it');
    assertHit(await request(`${url}/v`, lang('de')), 'lang de');
    assertStatus(await request(`${url}/v`, lang('fr')), 'MISS');
    assert.equal(origin.renders('/v'), 4);
  });

  test('a key function that throws: the request passes to the handler and the error is counted', async (t) => {
    const { url, origin, cache } = await scenario(t, start, () => ({ headers: { 'cache-control': 'max-age=60' }, body: 'ok' }), {
      key: () => {
        throw new Error('bad key');
      },
    });
    const errors: Error[] = [];
    cache.on('error', (e) => errors.push(e));
    const reply = await request(`${url}/k`);
    assert.equal(reply.body, 'ok');
    assertStatus(reply, 'PASS');
    assert.equal((await request(`${url}/k`)).body, 'ok');
    assert.equal(origin.renders('/k'), 2);
    assert.equal(cache.stats().errors, 2);
    assert.equal((errors[0] as Error & { code?: string }).code, 'ERR_HANDLER');
  });

  test("one client's Cache-Control: no-store is honoured for it alone, not remembered for the URL", async (t) => {
    const { url, origin } = await scenario(t, start, (_req, n) => ({ headers: { 'cache-control': 'max-age=60' }, body: `render ${n}` }));
    const own = await request(`${url}/n`, { headers: { 'cache-control': 'no-store' } });
    assert.equal(own.body, 'render 1');
    assertStatus(own, 'MISS');
    const next = await request(`${url}/n`);
    assert.equal(next.body, 'render 2');
    assertStatus(next, 'MISS');
    assertHit(await request(`${url}/n`), 'render 2');
    assert.equal(origin.renders('/n'), 2);
  });

  test('an entry whose headers push it past maxSize is not counted as stored and the key passes', async (t) => {
    const { url, origin, cache } = await scenario(t, start, () => ({ headers: { 'cache-control': 'max-age=60' }, body: 'x'.repeat(900) }), {
      maxSize: 1000,
      maxEntrySize: 1000,
    });
    assertStatus(await request(`${url}/big`), 'MISS');
    assertStatus(await request(`${url}/big`), 'PASS');
    assert.equal(origin.renders('/big'), 2);
    assert.equal(cache.stats().stores, 0);
  });

  test('Vary on a header the cache strips before rendering (X-Forwarded-Proto): cached once, coalesced, hit', async (t) => {
    let renders = 0;
    const cache = createCache();
    const running = await listen(
      cache.wrap((req, res) => {
        renders++;
        setTimeout(() => {
          res.setHeader('cache-control', 'max-age=60');
          res.setHeader('vary', 'X-Forwarded-Proto');
          // The render never sees the unkeyed header, so it cannot reflect it.
          res.end(`proto=${String(req.headers['x-forwarded-proto'] ?? 'none')}`);
        }, 50);
      }),
    );
    t.after(async () => {
      await running.close();
      await cache.close();
    });
    const headers = { 'x-forwarded-proto': 'https' };
    const burst = await Promise.all(Array.from({ length: 10 }, () => request(`${running.url}/v`, { headers })));
    assert.deepEqual(new Set(burst.map((r) => r.body)), new Set(['proto=none']));
    assert.equal(renders, 1, 'waiters are served the one render');
    const hit = await request(`${running.url}/v`, { headers });
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(renders, 1);
  });
});
