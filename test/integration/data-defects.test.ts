/**
 * Data cache defects found by users: a fetched response with an ETag must be revalidated after it
 * expires (not dropped), and a tag invalidation must reach the pages that read data carrying the
 * tag, as cache.data.delete() does. Real servers; Date mocked to cross lifetimes without sleeping.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { createCache } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';
import { until } from '../helpers/origin.js';

const tracked = closedAfterFile();

beforeEach(() => mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 }));
afterEach(() => mock.timers.reset());

describe('data cache defects', { timeout: 20_000 }, () => {
  test('data.fetch of a max-age=1 response with an ETag revalidates after expiry (If-None-Match, 304)', async () => {
    const seen: Array<string | undefined> = [];
    let bodies = 0;
    const api = await listen((req, res) => {
      seen.push(req.headers['if-none-match']);
      res.setHeader('cache-control', 'max-age=1');
      res.setHeader('etag', '"p1"');
      if (req.headers['if-none-match'] === '"p1"') return void res.writeHead(304).end();
      bodies++;
      res.setHeader('content-type', 'application/json');
      res.end('{"amount":30}');
    });
    tracked.servers.push(api);
    const cache = createCache();
    tracked.caches.push(cache);
    assert.equal((await cache.data.fetch(`${api.url}/price`)).cache, 'MISS');
    assert.equal((await cache.data.fetch(`${api.url}/price`)).cache, 'HIT');
    mock.timers.tick(5_000);
    const again = await cache.data.fetch(`${api.url}/price`);
    assert.equal(again.cache, 'REVALIDATED');
    assert.deepEqual(await again.json(), { amount: 30 });
    assert.deepEqual(seen, [undefined, '"p1"']);
    assert.equal(bodies, 1);
    assert.equal((await cache.data.fetch(`${api.url}/price`)).cache, 'HIT', 'the 304 made it fresh again');
  });

  test('invalidateTags makes the pages that read a tagged data entry stale, as data.delete() does', async () => {
    const cache = createCache();
    tracked.caches.push(cache);
    let loads = 0;
    let renders = 0;
    const site = await listen(
      cache.wrap(async (_req, res) => {
        renders++;
        const product = await cache.data.get('product:1', () => `Teapot v${++loads}`, { ttl: 60_000, tags: ['t'] });
        res.setHeader('cache-control', 'max-age=300');
        res.end(`${product} (render ${renders})`);
      }),
    );
    tracked.servers.push(site);
    assert.equal((await request(`${site.url}/p`)).body, 'Teapot v1 (render 1)');
    assert.equal((await request(`${site.url}/p`)).headers['x-cache'], 'HIT');
    await cache.invalidateTags(['t']);
    const stale = await request(`${site.url}/p`);
    assert.equal(stale.headers['x-cache'], 'STALE');
    assert.equal(await until(() => cache.stats().stores === 2), true, 'the background render stored the page');
    const fresh = await request(`${site.url}/p`);
    assert.equal(fresh.headers['x-cache'], 'HIT');
    assert.equal(fresh.body, 'Teapot v2 (render 2)');
    // An untagged neighbour is untouched.
    await cache.invalidateTags(['other']);
    assert.equal((await request(`${site.url}/p`)).headers['x-cache'], 'HIT');
  });
});
