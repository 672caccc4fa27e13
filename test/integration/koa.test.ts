/**
 * Koa 3 with `app.use(cache.koa())`: the shared adapter scenarios, plus every kind of `ctx.body`
 * (string, Buffer, stream, JSON), a body stream failing mid-way, and middleware before the cache.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import Koa from 'koa';
import { createCache, type StrataCache } from '../../src/index.js';
import { adapterSuite, assertHit, assertStatus, attempt } from '../helpers/adapter-suite.js';
import { listen, request, untilTestEnds } from '../helpers/http.js';
import { chunkStream, preparePlan, until, type Origin } from '../helpers/origin.js';

/** A Koa app that does not print expected errors. */
function quietKoa(): Koa {
  const app = new Koa();
  app.silent = true;
  return app;
}

/** Executes the origin's plans the Koa way: ctx.status, ctx.set, ctx.body. */
function koaApp(cache: StrataCache, origin: Origin): Koa {
  const app = quietKoa();
  app.use(cache.koa());
  app.use(async (ctx) => {
    const url = ctx.req.url;
    const plan = origin.begin(ctx.req);
    try {
      await preparePlan(plan);
      ctx.status = plan.status ?? 200;
      for (const [name, value] of Object.entries(plan.headers ?? {})) ctx.set(name, value);
      ctx.body = plan.chunks !== undefined ? chunkStream(plan.chunks, plan.fail === 'after') : (plan.body ?? '');
    } finally {
      origin.end(url);
    }
  });
  return app;
}

adapterSuite('Koa', (cache, origin) => listen(koaApp(cache, origin).callback()));

describe('Koa specifics', { timeout: 15_000 }, () => {
  async function start(t: import('node:test').TestContext, setup: (app: Koa, cache: StrataCache) => void) {
    const cache = createCache();
    const app = quietKoa();
    setup(app, cache);
    return untilTestEnds(t, await listen(http.createServer(app.callback())), cache);
  }

  test('caches string, Buffer, stream and JSON bodies', async (t) => {
    const renders = new Map<string, number>();
    const binary = Buffer.from([0, 1, 2, 254, 255, 10, 13]);
    const { url } = await start(t, (app, cache) => {
      app.use(cache.koa());
      app.use(async (ctx) => {
        renders.set(ctx.path, (renders.get(ctx.path) ?? 0) + 1);
        ctx.set('cache-control', 'max-age=60');
        if (ctx.path === '/string') ctx.body = 'a string body';
        else if (ctx.path === '/buffer') ctx.body = binary;
        else if (ctx.path === '/stream') {
          ctx.type = 'text/plain';
          ctx.body = Readable.from(['streamed ', 'in ', 'three']);
        } else if (ctx.path === '/json') ctx.body = { ok: true, items: [1, 2, 3] };
      });
    });

    for (const path of ['/string', '/buffer', '/stream', '/json']) assertStatus(await request(`${url}${path}`), 'MISS', path);

    const string = await request(`${url}/string`);
    assertHit(string, 'a string body');
    assert.match(String(string.headers['content-type']), /^text\/plain/);

    const buffer = await request(`${url}/buffer`);
    assertStatus(buffer, 'HIT');
    assert.ok(buffer.raw.equals(binary));
    assert.equal(buffer.headers['content-length'], String(binary.length));
    assert.equal(buffer.headers['content-type'], 'application/octet-stream');

    assertHit(await request(`${url}/stream`), 'streamed in three');

    const json = await request(`${url}/json`);
    assertHit(json, JSON.stringify({ ok: true, items: [1, 2, 3] }));
    assert.match(String(json.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(json.body), { ok: true, items: [1, 2, 3] });

    assert.deepEqual([...renders.values()], [1, 1, 1, 1]);
  });

  test('a body stream that fails mid-way: the client is cut off, waiters answered, nothing stored', async (t) => {
    let renders = 0;
    const cacheRef: { cache?: StrataCache } = {};
    const waitersQueued = until(() => (cacheRef.cache?.stats().loadsDeduped ?? 0) >= 3);
    const { url, cache } = await start(t, (app, c) => {
      app.use(c.koa());
      app.use(async (ctx) => {
        renders++;
        ctx.set('cache-control', 'max-age=60');
        ctx.type = 'text/plain';
        if (renders === 1) {
          await waitersQueued;
          ctx.body = chunkStream(['partial ', 'never sent'], true);
        } else ctx.body = `complete ${renders}`;
      });
    });
    cacheRef.cache = cache;
    const replies = await Promise.all(Array.from({ length: 4 }, () => attempt(`${url}/fragile`)));
    const cut = replies.filter((r) => r instanceof Error || !r.body.startsWith('complete'));
    assert.equal(cut.length, 1, 'only the leader is cut off');
    for (const r of cut) if (!(r instanceof Error)) assert.notEqual(r.body, 'partial never sent');
    const complete = replies.filter((r): r is Exclude<typeof r, Error> => !(r instanceof Error) && r.body.startsWith('complete'));
    assert.equal(complete.length, 3);
    for (const r of complete) assert.equal(r.status, 200);
    // One retry between the waiters (issue 10): the first leads it, the others share it, stored.
    for (const r of complete) assert.equal(r.body, 'complete 2');
    assert.equal(renders, 2);
    assertHit(await request(`${url}/fragile`), 'complete 2');
  });

  test('middleware before cache.koa() runs on hits; thrown errors reach Koa error handling', async (t) => {
    let before = 0;
    let renders = 0;
    const { url, cache } = await start(t, (app, c) => {
      app.use(async (ctx, next) => {
        before++;
        try {
          await next();
        } catch (error) {
          ctx.status = 503;
          ctx.body = `handled: ${(error as Error).message}`;
        }
      });
      app.use(c.koa());
      app.use(async (ctx) => {
        renders++;
        if (ctx.path === '/throws') throw new Error('render failed');
        ctx.set('cache-control', 'max-age=60');
        ctx.body = `page ${renders}`;
      });
    });
    await request(`${url}/page`);
    assertHit(await request(`${url}/page`), 'page 1');
    assert.equal(before, 2);
    const failed = await request(`${url}/throws`);
    assert.equal(failed.status, 503);
    assert.equal(failed.body, 'handled: render failed');
    assert.equal(cache.stats().errors, 1);
    assert.equal(renders, 2);
  });
});
