/**
 * Per-route rules over real sockets: a rule's lifetime where the origin is silent, the origin's
 * Cache-Control winning, a bypassing rule, rule tags reached by a tag invalidation, and the rule
 * named in Cache-Status detail; counted in origin renders.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCache, type CacheOptions } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const tracked = closedAfterFile();

/** An origin whose pages send `?cc=` as Cache-Control (none without it) and count renders per path. */
async function site(options: CacheOptions) {
  const cache = createCache(options);
  tracked.caches.push(cache);
  const renders = new Map<string, number>();
  const srv = await listen(
    cache.wrap((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const n = (renders.get(url.pathname) ?? 0) + 1;
      renders.set(url.pathname, n);
      const cc = url.searchParams.get('cc');
      res.writeHead(200, cc === null ? { 'content-type': 'text/plain' } : { 'content-type': 'text/plain', 'cache-control': cc });
      res.end(`${url.pathname} render ${n}`);
    }),
  );
  tracked.servers.push(srv);
  return { cache, renders, get: (path: string, method = 'GET') => request(`${srv.url}${path}`, { method }) };
}

test('a rule gives its lifetime to silent responses and names itself in Cache-Status', async () => {
  const { get, renders } = await site({
    defaultTtl: 0,
    cacheStatusDetail: true,
    rules: [
      { match: '/static/**', ttl: 3_600_000, name: 'static' },
      { match: '/live/**', ttl: 0 },
    ],
  });
  const miss = await get('/static/app.js');
  assert.equal(miss.headers['x-cache'], 'MISS');
  assert.match(String(miss.headers['cache-status']), /^stratacache; fwd=uri-miss; fwd-status=200; ttl=(359\d|3600); stored; rule="static"$/);
  const hit = await get('/static/app.js');
  assert.equal(hit.body, '/static/app.js render 1');
  assert.equal(hit.headers['x-cache'], 'HIT');
  assert.match(String(hit.headers['cache-status']), /^stratacache; hit; ttl=(359\d|3600); detail=memory; rule="static"$/);
  // defaultTtl 0 and a ttl-0 rule: silent responses are not stored.
  await get('/live/feed');
  const again = await get('/live/feed');
  assert.equal(again.body, '/live/feed render 2');
  assert.equal(renders.get('/live/feed'), 2);
  // The origin's own freshness still counts under a ttl-0 rule.
  await get('/live/x?cc=max-age%3D60');
  const kept = await get('/live/x?cc=max-age%3D60');
  assert.equal(kept.headers['x-cache'], 'HIT');
  assert.match(String(kept.headers['cache-status']), /ttl=(59|60); detail=memory; rule="\/live\/\*\*"$/);
});

test("the origin's Cache-Control wins over a rule unless the rule overrides it", async () => {
  const { get, renders } = await site({
    cacheStatusDetail: true,
    rules: [
      { match: '/soft/**', ttl: 3_600_000 },
      { match: '/hard/**', ttl: 3_600_000, override: true },
    ],
  });
  await get('/soft/a?cc=max-age%3D0');
  assert.equal((await get('/soft/a?cc=max-age%3D0')).body, '/soft/a render 2', 'max-age=0 from the origin wins');
  await get('/hard/a?cc=max-age%3D0');
  const hit = await get('/hard/a?cc=max-age%3D0');
  assert.equal(hit.body, '/hard/a render 1');
  assert.match(String(hit.headers['cache-status']), /ttl=(359\d|3600)/);
  // Never for no-store.
  await get('/hard/b?cc=no-store');
  assert.equal((await get('/hard/b?cc=no-store')).body, '/hard/b render 2');
  assert.equal(renders.get('/hard/b'), 2);
});

test('a bypassing rule passes its requests; other methods and paths are cached as usual', async () => {
  const { get, renders } = await site({ rules: [{ match: '/account/**', bypass: true }, { match: '/feed', method: 'GET', host: 'nowhere.test', bypass: true }] });
  for (let i = 0; i < 2; i++) assert.equal((await get('/account/me')).headers['x-cache'], 'PASS');
  assert.equal(renders.get('/account/me'), 2);
  await get('/feed');
  assert.equal((await get('/feed')).headers['x-cache'], 'HIT', 'the host does not match: cached');
});

test('rule tags are stored with the entry and reached by a tag invalidation', async () => {
  const { cache, get, renders } = await site({ gracePeriod: 0, rules: [{ match: '/products/**', tags: ['catalog'] }] });
  await get('/products/1');
  await get('/about');
  assert.equal((await get('/products/1')).headers['x-cache'], 'HIT');
  await cache.invalidateTags(['catalog']);
  assert.equal((await get('/products/1')).body, '/products/1 render 2');
  assert.equal((await get('/about')).body, '/about render 1', 'an untagged page is untouched');
  assert.equal(renders.get('/products/1'), 2);
});
