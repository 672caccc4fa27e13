/**
 * Stale-on-error: when the origin throws, times out or answers 500/502/503/504, a stored copy
 * within its stale-if-error window is served (X-Cache: STALE) to the leader and every waiter, and
 * the error never replaces it. Also the staleWhileRevalidate option: one refresh for 200 requests.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, mock, test } from 'node:test';
import express from 'express';
import Koa from 'koa';
import { createCache, type CacheEvent } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

type Mode = 'ok' | 'throw' | 'status' | 'hang' | 'reject';

/** An origin whose behaviour the test switches; counts renders. */
function origin(): { handler: (req: IncomingMessage, res: ServerResponse) => unknown; renders: number; mode: Mode; status: number; release: Array<() => void> } {
  const o = {
    renders: 0,
    mode: 'ok' as Mode,
    status: 503,
    release: [] as Array<() => void>,
    handler: (_req: IncomingMessage, res: ServerResponse): unknown => {
      o.renders++;
      const n = o.renders;
      switch (o.mode) {
        case 'throw':
          throw new Error('origin down');
        case 'reject':
          return Promise.reject(new Error('origin down'));
        case 'status':
          res.writeHead(o.status, { 'content-type': 'text/plain', 'set-cookie': 'err=1', 'cache-control': 'no-store' });
          res.end(`error ${o.status}`);
          return undefined;
        case 'hang':
          // Answers only when released, long after originTimeout.
          // Answers only when released, as the mode then says (late, or failing).
          o.release.push(() => {
            if (o.mode === 'status') {
              res.writeHead(o.status, { 'content-type': 'text/plain' });
              res.end(`error ${o.status}`);
              return;
            }
            res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=1' });
            res.end(`late ${n}`);
          });
          return undefined;
        default:
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=1' });
          res.end(`good ${n}`);
          return undefined;
      }
    },
  };
  return o;
}

const { servers, caches } = closedAfterFile();
afterEach(() => mock.timers.reset());

/** Caches `/page` fresh for 1 s, then moves the clock 5 s on so it is stale. */
async function warmAndExpire(options: Parameters<typeof createCache>[0] = {}) {
  const o = origin();
  const cache = createCache({ gracePeriod: 0, ...options });
  caches.push(cache);
  const srv = await listen(cache.wrap(o.handler));
  servers.push(srv);
  const start = Date.now();
  mock.timers.enable({ apis: ['Date'], now: start });
  const first = await request(`${srv.url}/page`);
  assert.equal(first.body, 'good 1');
  mock.timers.tick(5_000);
  return { o, cache, srv };
}

describe('stale on error', () => {
  for (const [mode, label] of [
    ['throw', 'handler throws'],
    ['reject', 'handler rejects'],
    ['status', 'origin answers 503'],
  ] as const) {
    test(`${label}: the stale copy is served and kept`, async () => {
      const { o, cache, srv } = await warmAndExpire();
      const stale: CacheEvent[] = [];
      cache.on('stale', (e) => stale.push(e));
      o.mode = mode;
      const r = await request(`${srv.url}/page`);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'good 1');
      assert.equal(r.headers['x-cache'], 'STALE');
      // None of the error response's headers leak into the stale answer.
      assert.equal(r.headers['set-cookie'], undefined);
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.equal(o.renders, 2);
      assert.equal(stale.length, 1);
      assert.match(stale[0]!.reason ?? '', /origin/);
      assert.equal(cache.stats().staleOnError, 1);
      // The origin recovers: the next request renders and stores the new copy.
      o.mode = 'ok';
      const again = await request(`${srv.url}/page`);
      assert.equal(again.body, 'good 3');
      assert.equal(again.headers['x-cache'], 'MISS');
    });
  }

  test('errorBackoff: during an outage the stale copy answers without asking the origin again until the interval passes', async () => {
    const { o, cache, srv } = await warmAndExpire({ errorBackoff: 400 });
    o.mode = 'throw';
    for (let i = 0; i < 20; i++) {
      const r = await request(`${srv.url}/page`);
      assert.equal(r.body, 'good 1');
      assert.equal(r.headers['x-cache'], 'STALE');
    }
    // One failed render for twenty requests, not twenty.
    assert.equal(o.renders, 2);
    assert.equal(cache.stats().staleOnError, 20);
    await new Promise((resolve) => setTimeout(resolve, 450));
    // The interval passed: the next request asks the origin again (still down: stale again).
    assert.equal((await request(`${srv.url}/page`)).headers['x-cache'], 'STALE');
    assert.equal(o.renders, 3);
    // The origin recovers; after the interval the next request renders and stores it.
    o.mode = 'ok';
    await new Promise((resolve) => setTimeout(resolve, 450));
    const again = await request(`${srv.url}/page`);
    assert.equal(again.body, 'good 4');
    assert.equal(again.headers['x-cache'], 'MISS');
  });

  for (const status of [500, 502, 504]) {
    test(`origin answers ${status}: stale served`, async () => {
      const { o, srv } = await warmAndExpire();
      o.mode = 'status';
      o.status = status;
      const r = await request(`${srv.url}/page`);
      assert.equal(r.body, 'good 1');
      assert.equal(r.headers['x-cache'], 'STALE');
    });
  }

  test('a conditional or HEAD request during an outage gets 304 / headers of the stale copy', async () => {
    const o = origin();
    const cache = createCache({ gracePeriod: 0 });
    caches.push(cache);
    const srv = await listen(
      cache.wrap((req, res) => {
        if (o.mode !== 'ok') return o.handler(req, res);
        res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=1' });
        res.end('tagged');
        return undefined;
      }),
    );
    servers.push(srv);
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    await request(`${srv.url}/c`);
    mock.timers.tick(5_000);
    o.mode = 'status';
    const c = await request(`${srv.url}/c`, { headers: { 'if-none-match': '"v1"' } });
    assert.equal(c.status, 304);
    assert.equal(c.headers['x-cache'], 'STALE');
    const h = await request(`${srv.url}/c`, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers['x-cache'], 'STALE');
    assert.equal(h.headers['content-length'], '6');
    assert.equal(h.body, '');
  });

  test('429 passes through unless configured', async () => {
    const plain = await warmAndExpire();
    plain.o.mode = 'status';
    plain.o.status = 429;
    const r = await request(`${plain.srv.url}/page`);
    assert.equal(r.status, 429);
    mock.timers.reset();
    const configured = await warmAndExpire({ serveStaleOnError: [429, 503] });
    configured.o.mode = 'status';
    configured.o.status = 429;
    const r2 = await request(`${configured.srv.url}/page`);
    assert.equal(r2.status, 200);
    assert.equal(r2.body, 'good 1');
    assert.equal(r2.headers['x-cache'], 'STALE');
  });

  test('with no stale copy the error passes through', async () => {
    const o = origin();
    const cache = createCache();
    caches.push(cache);
    const srv = await listen(cache.wrap(o.handler));
    servers.push(srv);
    o.mode = 'status';
    const r = await request(`${srv.url}/fresh-start`);
    assert.equal(r.status, 503);
    assert.equal(r.body, 'error 503');
    o.mode = 'throw';
    const t = await request(`${srv.url}/fresh-start`);
    assert.equal(t.status, 500);
  });

  test('serveStaleOnError: false lets the error through', async () => {
    const { o, srv } = await warmAndExpire({ serveStaleOnError: false });
    o.mode = 'status';
    const r = await request(`${srv.url}/page`);
    assert.equal(r.status, 503);
  });

  test('past its stale-if-error window the copy is not used', async () => {
    const { o, srv } = await warmAndExpire({ staleIfError: 10_000 });
    mock.timers.tick(10_000);
    o.mode = 'status';
    const r = await request(`${srv.url}/page`);
    assert.equal(r.status, 503);
  });

  test('waiters of a failed flight get the stale copy too, with one render', async () => {
    const { o, cache, srv } = await warmAndExpire();
    o.mode = 'hang';
    const replies = Promise.all(Array.from({ length: 20 }, () => request(`${srv.url}/page`)));
    // Let the requests arrive and queue behind the leader, then fail the origin.
    while (cache.stats().loadsDeduped < 19) await new Promise((r) => setTimeout(r, 5));
    o.mode = 'status';
    o.release.shift()!();
    const all = await replies;
    assert.equal(o.renders, 2);
    for (const r of all) {
      assert.equal(r.status, 200);
      assert.equal(r.body, 'good 1');
      assert.equal(r.headers['x-cache'], 'STALE');
    }
    assert.equal(cache.stats().staleOnError, 20);
  });

  test('originTimeout: stale served after the timeout, late output swallowed, waiters served', async () => {
    const { o, cache, srv } = await warmAndExpire({ originTimeout: 100 });
    o.mode = 'hang';
    const replies = await Promise.all(Array.from({ length: 5 }, () => request(`${srv.url}/page`)));
    for (const r of replies) {
      assert.equal(r.status, 200);
      assert.equal(r.body, 'good 1');
      assert.equal(r.headers['x-cache'], 'STALE');
    }
    assert.equal(o.renders, 2);
    // The late answer arrives after everyone was served: it goes nowhere and is not stored.
    o.release.shift()!();
    await new Promise((r) => setTimeout(r, 20));
    o.mode = 'ok';
    const next = await request(`${srv.url}/page`);
    assert.equal(next.body, 'good 3');
    assert.ok(cache.stats().staleOnError >= 1);
  });

  test('stale-if-error directive sets the window when the origin gives one', async () => {
    const o = origin();
    let cc = 'max-age=1, stale-if-error=2';
    const cache = createCache({ gracePeriod: 0 });
    caches.push(cache);
    const srv = await listen(
      cache.wrap((req, res) => {
        if (o.mode !== 'ok') return o.handler(req, res);
        o.renders++;
        res.writeHead(200, { 'cache-control': cc });
        res.end('directive');
        return undefined;
      }),
    );
    servers.push(srv);
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    await request(`${srv.url}/d`);
    o.mode = 'status';
    mock.timers.tick(2_500); // inside 1 s fresh + 2 s stale-if-error
    assert.equal((await request(`${srv.url}/d`)).headers['x-cache'], 'STALE');
    mock.timers.tick(1_000); // past it
    assert.equal((await request(`${srv.url}/d`)).status, 503);
    cc = 'max-age=1';
  });
});

describe('stale on error through the adapters', () => {
  test('Express: a 503 from a route serves the stale copy', async () => {
    let down = false;
    let renders = 0;
    const cache = createCache({ gracePeriod: 0 });
    caches.push(cache);
    const app = express();
    app.use(cache.middleware());
    app.get('/e', (_req, res) => {
      renders++;
      if (down) res.status(503).send('down');
      else res.set('cache-control', 'max-age=1').send(`express ${renders}`);
    });
    app.get('/boom', (_req, _res, next) => {
      renders++;
      if (down) next(new Error('boom'));
      else _res.set('cache-control', 'max-age=1').send('boom ok');
    });
    const srv = await listen(app as never);
    servers.push(srv);
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    assert.equal((await request(`${srv.url}/e`)).body, 'express 1');
    assert.equal((await request(`${srv.url}/boom`)).body, 'boom ok');
    mock.timers.tick(5_000);
    down = true;
    const r = await request(`${srv.url}/e`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'express 1');
    assert.equal(r.headers['x-cache'], 'STALE');
    const b = await request(`${srv.url}/boom`);
    assert.equal(b.status, 200);
    assert.equal(b.body, 'boom ok');
    assert.equal(b.headers['x-cache'], 'STALE');
  });

  test('Koa: a 503 or a throw downstream serves the stale copy', async () => {
    let down: false | 'status' | 'throw' = false;
    const cache = createCache({ gracePeriod: 0 });
    caches.push(cache);
    const app = new Koa();
    app.silent = true;
    app.use(cache.koa());
    app.use(async (ctx) => {
      if (down === 'status') {
        ctx.status = 503;
        ctx.body = 'down';
      } else if (down === 'throw') throw new Error('koa down');
      else {
        ctx.set('cache-control', 'max-age=1');
        ctx.body = 'koa good';
      }
    });
    const srv = await listen(app.callback());
    servers.push(srv);
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    assert.equal((await request(`${srv.url}/k`)).body, 'koa good');
    mock.timers.tick(5_000);
    down = 'status';
    const r = await request(`${srv.url}/k`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'koa good');
    assert.equal(r.headers['x-cache'], 'STALE');
    down = 'throw';
    const t = await request(`${srv.url}/k`);
    assert.equal(t.status, 200);
    assert.equal(t.body, 'koa good');
    assert.equal(t.headers['x-cache'], 'STALE');
  });
});

describe('staleWhileRevalidate option', () => {
  test('200 concurrent stale requests: all served stale, one background refresh', async () => {
    let renders = 0;
    let release: (() => void) | undefined;
    const cache = createCache({ staleWhileRevalidate: 60_000, gracePeriod: 0 });
    caches.push(cache);
    const srv = await listen(
      cache.wrap((_req, res) => {
        renders++;
        const n = renders;
        const send = (): void => {
          res.writeHead(200, { 'cache-control': 'max-age=1' });
          res.end(`swr ${n}`);
        };
        if (n === 1) send();
        else release = send; // the refresh waits until all 200 were answered
      }),
    );
    servers.push(srv);
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    await request(`${srv.url}/s`);
    mock.timers.tick(2_000);
    const replies = await Promise.all(Array.from({ length: 200 }, () => request(`${srv.url}/s`)));
    for (const r of replies) {
      assert.equal(r.body, 'swr 1');
      assert.equal(r.headers['x-cache'], 'STALE');
    }
    assert.equal(renders, 2);
    assert.equal(cache.stats().stale, 200);
    release!();
    await new Promise((r) => setTimeout(r, 20));
    const fresh = await request(`${srv.url}/s`);
    assert.equal(fresh.body, 'swr 2');
    assert.equal(fresh.headers['x-cache'], 'HIT');
  });

  test('without the option (and no directive) a stale entry is a miss', async () => {
    let renders = 0;
    const cache = createCache({ gracePeriod: 0 });
    caches.push(cache);
    const srv = await listen(
      cache.wrap((_req, res) => {
        renders++;
        res.writeHead(200, { 'cache-control': 'max-age=1' });
        res.end(`n ${renders}`);
      }),
    );
    servers.push(srv);
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    await request(`${srv.url}/n`);
    mock.timers.tick(2_000);
    const r = await request(`${srv.url}/n`);
    assert.equal(r.body, 'n 2');
    assert.equal(r.headers['x-cache'], 'MISS');
  });
});
