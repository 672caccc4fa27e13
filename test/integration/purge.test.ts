/**
 * PURGE (one path, or a prefix with `/*`) and the stats endpoint in front of a real upstream: answered by the cache on the flush
 * endpoint's terms (allowed clients and token), never forwarded upstream.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCache, createProxy, type CacheOptions } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const tracked = closedAfterFile();

async function setup(options: CacheOptions) {
  const methods: string[] = [];
  const renders = new Map<string, number>();
  const up = await listen((req, res) => {
    methods.push(req.method ?? '');
    const path = req.url ?? '/';
    renders.set(path, (renders.get(path) ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
    res.end(`${path} #${renders.get(path)}`);
  });
  const cache = createCache({ gracePeriod: 0, ...options });
  const proxy = await listen(cache.wrap(createProxy({ upstream: up.url })));
  tracked.servers.push(proxy, up);
  tracked.caches.push(cache);
  return { url: proxy.url, methods, renders };
}

const auth = { authorization: 'Bearer s3cret-token' };

describe('PURGE', () => {
  test('an authorized PURGE answers 200 and the next request renders again; no token: 403; never forwarded', async () => {
    const { url, methods, renders } = await setup({ flush: { token: 's3cret-token' } });
    await request(`${url}/page`);
    assert.equal((await request(`${url}/page`)).headers['x-cache'], 'HIT');

    const refused = await request(`${url}/page`, { method: 'PURGE' });
    assert.equal(refused.status, 403);
    const wrongToken = await request(`${url}/page`, { method: 'PURGE', headers: { authorization: 'Bearer nope' } });
    assert.equal(wrongToken.status, 403);
    assert.equal((await request(`${url}/page`)).headers['x-cache'], 'HIT');

    const purged = await request(`${url}/page`, { method: 'PURGE', headers: auth });
    assert.equal(purged.status, 200);
    assert.match(purged.body, /^Purged \/page/);
    const after = await request(`${url}/page`);
    assert.equal(after.headers['x-cache'], 'MISS');
    assert.equal(after.body, '/page #2');
    assert.equal(renders.get('/page'), 2);
    assert.deepEqual([...new Set(methods)], ['GET']);
  });

  test('a client outside allowedClients gets 403 even with the token', async () => {
    const { url, methods } = await setup({ flush: { token: 's3cret-token', allowedClients: ['10.0.0.0/8'] } });
    await request(`${url}/page`);
    const refused = await request(`${url}/page`, { method: 'PURGE', headers: auth });
    assert.equal(refused.status, 403);
    assert.equal((await request(`${url}/page`)).headers['x-cache'], 'HIT');
    assert.ok(!methods.includes('PURGE'));
  });

  test('PURGE /path/* (a ban) removes a path and everything under it, nothing else', async () => {
    const { url, methods } = await setup({});
    for (const p of ['/products/a', '/products/b', '/other']) await request(`${url}${p}`);
    const banned = await request(`${url}/products/*`, { method: 'PURGE' });
    assert.equal(banned.status, 200);
    assert.match(banned.body, /^Banned \/products and everything under it/);
    assert.equal((await request(`${url}/products/a`)).headers['x-cache'], 'MISS');
    assert.equal((await request(`${url}/products/b`)).headers['x-cache'], 'MISS');
    assert.equal((await request(`${url}/other`)).headers['x-cache'], 'HIT');
    assert.deepEqual([...new Set(methods)], ['GET']);
  });

  test('the stats endpoint answers the counters behind the same guard', async () => {
    const { url } = await setup({ flush: { token: 's3cret-token' } });
    await request(`${url}/a`);
    await request(`${url}/a`);
    assert.equal((await request(`${url}/_stratacache/stats`)).status, 403);
    const r = await request(`${url}/_stratacache/stats`, { headers: auth });
    assert.equal(r.status, 200);
    assert.equal(r.headers['cache-control'], 'no-store');
    const body = JSON.parse(r.body) as { stats: { gets: number; hits: number; misses: number; entries: number } };
    assert.equal(body.stats.gets, 2);
    assert.equal(body.stats.hits, 1);
    assert.equal(body.stats.misses, 1);
    assert.equal(body.stats.entries, 1);
  });
});
