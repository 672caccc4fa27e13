/**
 * Revalidation through real servers (RFC 9111 §4.3): a stale entry is revalidated with the
 * cache's own validators, never the client's; a 304 refreshes the stored headers and freshness
 * and the client gets the stored body; a 200 replaces the entry; background refreshes
 * revalidate too; a handler answering 304 itself (Express req.fresh) saves its render.
 * Date is mocked to cross lifetimes without sleeping.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import express from 'express';
import { createCache, type CacheOptions } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';
import { until } from '../helpers/origin.js';

const tracked = closedAfterFile();

beforeEach(() => mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 }));
afterEach(() => mock.timers.reset());

/** What the origin saw and did. */
interface Seen {
  inm: Array<string | undefined>;
  ims: Array<string | undefined>;
  bodies: number;
  notModified: number;
}

/**
 * A cache in front of an origin that honours If-None-Match / If-Modified-Since against its
 * current version. `headers` are sent with every answer (304s included).
 */
async function site(options: CacheOptions, headers: (n: number) => Record<string, string>) {
  const seen: Seen = { inm: [], ims: [], bodies: 0, notModified: 0 };
  const state = { version: 'v1' };
  let n = 0;
  const cache = createCache(options);
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    n++;
    seen.inm.push(req.headers['if-none-match']);
    seen.ims.push(req.headers['if-modified-since']);
    const h = headers(n);
    for (const [k, v] of Object.entries(h)) res.setHeader(k, v.replace('$v', state.version));
    const etag = res.getHeader('etag');
    const lm = res.getHeader('last-modified');
    if ((etag !== undefined && req.headers['if-none-match'] === etag) || (etag === undefined && lm !== undefined && req.headers['if-modified-since'] === lm)) {
      seen.notModified++;
      res.writeHead(304).end();
      return;
    }
    seen.bodies++;
    res.setHeader('content-type', 'text/plain');
    res.end(`body ${state.version}`);
  };
  const running = await listen(cache.wrap(handler));
  tracked.servers.push(running);
  tracked.caches.push(cache);
  return { url: running.url, cache, seen, state };
}

describe('revalidation of stale entries (RFC 9111 §4.3)', { timeout: 20_000 }, () => {
  test("a stale entry is revalidated with its own ETag, not the client's; the 304 refreshes it", async () => {
    const s = await site({ defaultTtl: 0 }, () => ({ 'cache-control': 'max-age=1', etag: '"$v"', 'x-version': 'h$v' }));
    assert.equal((await request(`${s.url}/a`)).body, 'body v1');
    mock.timers.tick(2_000);
    const r = await request(`${s.url}/a`, { headers: { 'if-none-match': '"client-tag"' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'body v1');
    assert.equal(r.headers['x-cache'], 'REVALIDATED');
    assert.equal(r.headers['cache-status'], 'stratacache; fwd=stale; fwd-status=304');
    assert.deepEqual(s.seen.inm, [undefined, '"v1"']);
    assert.equal(s.seen.bodies, 1);
    const stats = s.cache.stats();
    assert.equal(stats.revalidations, 1);
    assert.equal(stats.notModified, 1);
    // The 304's max-age=1 made it fresh again.
    assert.equal((await request(`${s.url}/a`)).headers['x-cache'], 'HIT');
    assert.equal(s.seen.bodies + s.seen.notModified, 2);
  });

  test('the 304 updates the stored headers; a client conditional matching the stored ETag gets 304', async () => {
    const s = await site({ defaultTtl: 0 }, (n) => ({ 'cache-control': 'max-age=1', etag: '"$v"', 'x-render': `r${n}` }));
    await request(`${s.url}/h`);
    mock.timers.tick(2_000);
    const conditional = await request(`${s.url}/h`, { headers: { 'if-none-match': '"v1"' } });
    assert.equal(conditional.status, 304);
    assert.equal(conditional.headers['x-cache'], 'REVALIDATED');
    const hit = await request(`${s.url}/h`);
    assert.equal(hit.headers['x-render'], 'r2', 'the header from the 304 replaced the stored one');
    assert.equal(hit.body, 'body v1');
  });

  test('Last-Modified only: revalidated with If-Modified-Since', async () => {
    const lm = 'Mon, 01 Jan 2024 00:00:00 GMT';
    const s = await site({ defaultTtl: 0 }, () => ({ 'cache-control': 'max-age=1', 'last-modified': lm }));
    await request(`${s.url}/lm`);
    mock.timers.tick(2_000);
    assert.equal((await request(`${s.url}/lm`, { headers: { 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' } })).headers['x-cache'], 'REVALIDATED');
    assert.deepEqual(s.seen.ims, [undefined, lm]);
    assert.deepEqual(s.seen.inm, [undefined, undefined]);
  });

  test('a 200 answer replaces the entry (Cache-Status fwd=stale)', async () => {
    const s = await site({ defaultTtl: 0 }, () => ({ 'cache-control': 'max-age=1', etag: '"$v"' }));
    await request(`${s.url}/c`);
    mock.timers.tick(2_000);
    s.state.version = 'v2';
    const r = await request(`${s.url}/c`);
    assert.equal(r.body, 'body v2');
    assert.equal(r.headers['x-cache'], 'MISS');
    assert.equal(r.headers['cache-status'], 'stratacache; fwd=stale');
    assert.deepEqual(s.seen.inm, [undefined, '"v1"']);
    const hit = await request(`${s.url}/c`);
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.body, 'body v2');
    assert.equal(s.cache.stats().notModified, 0);
  });

  test('no-cache responses are stored and revalidated on every request', async () => {
    const s = await site({}, () => ({ 'cache-control': 'no-cache', etag: '"$v"' }));
    for (let i = 0; i < 3; i++) assert.equal((await request(`${s.url}/nc`)).body, 'body v1');
    assert.deepEqual(s.seen.inm, [undefined, '"v1"', '"v1"']);
    assert.equal(s.seen.bodies, 1);
    assert.equal(s.cache.stats().notModified, 2);
  });

  test('an invalidated entry past grace is revalidated with its validators', async () => {
    const s = await site({ gracePeriod: 1_000 }, () => ({ 'cache-control': 'max-age=300', etag: '"$v"' }));
    await request(`${s.url}/inv`);
    await s.cache.invalidate('/inv');
    mock.timers.tick(2_000);
    const r = await request(`${s.url}/inv`);
    assert.equal(r.headers['x-cache'], 'REVALIDATED');
    assert.deepEqual(s.seen.inm, [undefined, '"v1"']);
    assert.equal((await request(`${s.url}/inv`)).headers['x-cache'], 'HIT', 'revalidated after the invalidation: fresh again');
  });

  test('a stale-while-revalidate background refresh sends the validators; its 304 refreshes the entry', async () => {
    const s = await site({ defaultTtl: 0 }, () => ({ 'cache-control': 'max-age=1, stale-while-revalidate=60', etag: '"$v"' }));
    await request(`${s.url}/swr`);
    mock.timers.tick(2_000);
    assert.equal((await request(`${s.url}/swr`)).headers['x-cache'], 'STALE');
    assert.equal(await until(() => s.cache.stats().notModified === 1), true, 'the background revalidation');
    assert.deepEqual(s.seen.inm, [undefined, '"v1"']);
    const hit = await request(`${s.url}/swr`);
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.body, 'body v1');
    assert.equal(s.seen.bodies, 1);
  });

  test('an Express handler answering 304 itself (req.fresh) saves its render', async () => {
    const cache = createCache({ defaultTtl: 0 });
    let renders = 0;
    let cheap = 0;
    const app = express();
    app.get('/page', (req, res) => {
      res.set('cache-control', 'max-age=1').set('etag', '"p1"');
      if (req.fresh) {
        cheap++;
        res.status(304).end();
        return;
      }
      renders++;
      res.type('text').send(`expensive render ${renders}`);
    });
    const running = await listen(http.createServer(cache.wrap(app)));
    tracked.servers.push(running);
    tracked.caches.push(cache);
    await request(`${running.url}/page`);
    mock.timers.tick(2_000);
    const r = await request(`${running.url}/page`);
    assert.equal(r.body, 'expensive render 1');
    assert.equal(r.headers['x-cache'], 'REVALIDATED');
    assert.equal(renders, 1);
    assert.equal(cheap, 1);
  });
});
