/**
 * Which host a host-less refetch renders under, through a real cache and server: the host a page
 * was cached under (one host or several), the flush's host for a page never cached or no longer
 * in memory. Asserts the refetch events, the origin's renders, and what clients get afterwards.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { createCache, type CacheOptions, type RefetchEvent } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const { servers, caches } = closedAfterFile();

/** A site whose pages say the host and how many times each was rendered. */
async function site(options: CacheOptions = {}) {
  const renders = new Map<string, number>();
  const cache = createCache(options);
  caches.push(cache);
  const refetched: RefetchEvent[] = [];
  cache.on('refetch', (e) => refetched.push(e));
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const id = `${req.headers.host ?? ''}${req.url ?? '/'}`;
    const n = (renders.get(id) ?? 0) + 1;
    renders.set(id, n);
    const body = req.url?.startsWith('/big/') === true ? 'x'.repeat(20_000) : `${id} v${n}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=3600' });
    res.end(body);
  };
  const srv = await listen(cache.wrap(handler));
  servers.push(srv);
  const get = (host: string, path: string) => request(`${srv.url}${path}`, { headers: { host } });
  /** A refetching invalidation through the API (no flush host) and the hosts it rendered under. */
  const refetch = async (path: string) => {
    refetched.length = 0;
    const { refetched: done } = await cache.invalidate(path.replace(/\.html$/, ''), { refetch: [path] });
    const summary = await done;
    return { summary, hosts: refetched.map((e) => e.host).sort() };
  };
  return { cache, get, renders, refetch };
}

describe('refetch hosts', () => {
  test('one host: the page is refetched under the host it was cached under, and clients get the new copy', async () => {
    const s = await site();
    await s.get('site.example', '/a.html');
    assert.deepEqual(await s.refetch('/a.html'), { summary: { ok: 1, failed: 0 }, hosts: ['site.example'] });
    assert.equal(s.renders.get('site.example/a.html'), 2);
    const r = await s.get('site.example', '/a.html');
    assert.equal(r.headers['x-cache'], 'HIT');
    assert.equal(r.body, 'site.example/a.html v2');
  });

  test('two hosts: the page is refetched under each, once', async () => {
    const s = await site();
    await s.get('site.example', '/b.html');
    await s.get('www.example', '/b.html');
    await s.get('www.example', '/b.html');
    assert.deepEqual(await s.refetch('/b.html'), { summary: { ok: 2, failed: 0 }, hosts: ['site.example', 'www.example'] });
    for (const host of ['site.example', 'www.example']) {
      const r = await s.get(host, '/b.html');
      assert.equal(r.headers['x-cache'], 'HIT');
      assert.equal(r.body, `${host}/b.html v2`);
    }
  });

  test("a page never cached is rendered under the site's host when the refetch names none (the API's)", async () => {
    const s = await site();
    await s.get('site.example', '/a.html');
    assert.deepEqual(await s.refetch('/never.html'), { summary: { ok: 1, failed: 0 }, hosts: ['site.example'] });
    assert.equal(s.renders.get('site.example/never.html'), 1);
  });

  test("a page evicted from memory is refetched under the site's host (its lower tiers may still hold it)", async () => {
    const s = await site({ maxSize: 100_000 });
    await s.get('site.example', '/old.html');
    // Pages of 20 KB push the first one out of a 100 KB memory tier.
    for (let i = 0; i < 8; i++) await s.get('site.example', `/big/${i}`);
    assert.equal((await s.get('site.example', '/old.html')).body, 'site.example/old.html v2', 'evicted: rendered again');
    for (let i = 8; i < 16; i++) await s.get('site.example', `/big/${i}`);
    assert.deepEqual(await s.refetch('/old.html'), { summary: { ok: 1, failed: 0 }, hosts: ['site.example'] });
    assert.equal(s.renders.get('site.example/old.html'), 3, 'refetched under its host');
  });
});
