/**
 * The data cache behind a real render server (examples/render-server.ts): a page composed from
 * three API calls and an included header fragment. Asserts what a client sees and how many
 * times each API, the page and the fragment rendered. Time is a mocked Date (the cache reads
 * Date.now()), so lifetimes of seconds are crossed without sleeping.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, afterEach, beforeEach, describe, mock, test } from 'node:test';
import { startRenderServer } from '../../examples/render-server.js';
import { createCache, DataTimeoutError, type CacheError } from '../../src/index.js';
import { listen, request, sleep } from '../helpers/http.js';

type Running = Awaited<ReturnType<typeof startRenderServer>>;

/** Polls (real time) until `check` holds, for background work started by a request. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await sleep(10);
  }
  assert.fail(`timed out waiting for ${what}`);
}

let site: Running;
let errors: CacheError[];

beforeEach(async () => {
  mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
  site = await startRenderServer();
  errors = [];
  site.cache.on('error', (e) => errors.push(e));
});

afterEach(async () => {
  mock.timers.reset();
  await site.close();
});

const page = (): ReturnType<typeof request> => request(`${site.url}/product/42`);

describe('a page composed from cached data', () => {
  test('concurrent cold requests: one page render, one call per API, one header render; then hits', async () => {
    const replies = await Promise.all(Array.from({ length: 10 }, page));
    for (const r of replies) {
      assert.equal(r.status, 200);
      assert.equal(r.body, replies[0]!.body);
    }
    const body = replies[0]!.body;
    assert.match(body, /<header>Home \| Teapots \| Cups \(header render 1\)<\/header><main><h1>Teapot<\/h1><p>\$30<\/p><p>3 reviews<\/p>/);
    assert.doesNotMatch(body, /esi:include/);
    assert.equal(Number(replies[0]!.headers['content-length']), Buffer.byteLength(body));
    assert.deepEqual(site.counts, { page: 1, header: 1 });
    assert.deepEqual(site.state.calls, { products: 1, prices: 1, reviews: 1, nav: 1, notModified: 0 });

    const again = await page();
    assert.equal(again.headers['x-cache'], 'HIT');
    assert.equal(again.body, body);
    assert.deepEqual(site.counts, { page: 1, header: 1 });
    assert.deepEqual(site.state.calls, { products: 1, prices: 1, reviews: 1, nav: 1, notModified: 0 });
  });

  test('each part keeps its own lifetime: the page stays a HIT while its header refreshes', async () => {
    await page();
    mock.timers.tick(6_000); // header fragment (max-age=5) stale; page (max-age=30) fresh
    const r = await page();
    assert.equal(r.headers['x-cache'], 'HIT');
    assert.match(r.body, /header render 2/);
    assert.deepEqual(site.counts, { page: 1, header: 2 });
    assert.equal(site.state.calls.nav, 1, 'nav (max-age=60) still fresh for the header render');

    mock.timers.tick(25_000); // t=31s: page stale; price (max-age=10) stale; product (60 s) and reviews (120 s) fresh
    const r2 = await page();
    assert.equal(r2.headers['x-cache'], 'MISS');
    assert.equal(site.counts.page, 2);
    assert.equal(site.state.calls.products, 1);
    assert.equal(site.state.calls.reviews, 1);
    assert.equal(site.state.calls.prices, 2, 'the stale price was asked again');
    assert.equal(site.state.calls.notModified, 1, '...with its ETag, and the API answered 304');
    assert.match(r2.body, /<p>\$30<\/p>/);

    mock.timers.tick(31_000); // t=62s: product stale (ttl 60 s) within staleWhileRevalidate (30 s)
    const r3 = await page();
    assert.match(r3.body, /Teapot/, 'the old product is used at once');
    await until(() => site.state.calls.products === 2, 'the product refreshed in the background');
    assert.equal(site.counts.page, 3);
  });

  test('stale-if-error: the API fails, the page renders with the data it had', async () => {
    await page();
    site.state.failing = true;
    mock.timers.tick(130_000); // page, price, reviews (120 s) and product (60 + 30 s) all past their freshness
    const r = await page();
    assert.equal(r.status, 200);
    assert.match(r.body, /<header>Home \| Teapots \| Cups \(header render 2\)<\/header><main><h1>Teapot<\/h1><p>\$30<\/p><p>3 reviews<\/p>/);
    assert.equal(site.state.calls.products, 2, 'the product loader ran and failed');
    assert.equal(site.state.calls.reviews, 2, 'reviews were asked again and failed');
    assert.ok(site.cache.data.stats().stale >= 3, 'three stale answers');

    // Past the product's staleIfError window (300 s) the loader's error reaches the page: 500.
    mock.timers.tick(300_000);
    const failed = await page();
    assert.equal(failed.status, 500);
  });

  test('include assembly: a fragment that includes itself fails the page with ERR_DATA_LOOP', async () => {
    const r = await request(`${site.url}/loop`);
    assert.equal(r.status, 500);
    assert.doesNotMatch(r.body, /esi:include/);
    assert.ok(errors.some((e) => e.code === 'ERR_DATA_LOOP'), `errors: ${errors.map((e) => e.code).join(', ')}`);
    // The template itself was stored: the next request is a HIT that fails the same way.
    const again = await request(`${site.url}/loop`);
    assert.equal(again.status, 500);
    assert.equal(again.headers['x-cache'], undefined, 'a failed assembly sends no cached headers');
  });

  test('a sub-request loop (/a fetches /b, which fetches /a) fails clearly', async () => {
    const r = await request(`${site.url}/a`);
    assert.equal(r.status, 500);
    assert.match(r.body, /^ERR_DATA_LOOP: include loop: \/a -> \/b -> \/a/);
  });

  test('deleting the product: the page is served STALE once, refreshed in the background, then shows the new product', async () => {
    await page();
    site.state.product.name = 'Kettle';
    assert.equal(site.cache.data.delete('product:42'), true);
    const stale = await page();
    assert.equal(stale.headers['x-cache'], 'STALE');
    assert.match(stale.body, /Teapot/);
    await until(() => site.counts.page === 2, 'the background render');
    await until(() => site.cache.stats().stores === 2, 'the refreshed page to be stored');
    const fresh = await page();
    assert.equal(fresh.headers['x-cache'], 'HIT');
    assert.match(fresh.body, /<h1>Kettle<\/h1>/);
    assert.equal(site.state.calls.products, 2);
    assert.equal(site.counts.page, 2);
  });

  test('a data refresh with different bytes makes the page stale; the same bytes (304) do not', async () => {
    await page();
    mock.timers.tick(11_000); // price stale; page fresh
    const same = await site.cache.data.fetch(`${site.api}/prices/42`);
    assert.equal(same.cache, 'REVALIDATED');
    assert.equal((await page()).headers['x-cache'], 'HIT', 'a 304 changes nothing the page shows');

    site.state.price = 35;
    mock.timers.tick(11_000);
    const changed = await site.cache.data.fetch(`${site.api}/prices/42`);
    assert.equal(changed.cache, 'MISS');
    assert.deepEqual(await changed.json(), { amount: 35 });
    const stale = await page();
    assert.equal(stale.headers['x-cache'], 'STALE');
    assert.match(stale.body, /\$30/);
    await until(() => site.cache.stats().stores === 2, 'the refreshed page');
    const fresh = await page();
    assert.equal(fresh.headers['x-cache'], 'HIT');
    assert.match(fresh.body, /\$35/);
    assert.equal(site.counts.page, 2);
  });
});

describe('cache.data on its own', () => {
  test('get: stale-while-revalidate answers the old value and refreshes once in the background', async () => {
    let version = 1;
    let loads = 0;
    const loader = async (): Promise<{ v: number }> => {
      loads++;
      await sleep(20);
      return { v: version };
    };
    const opts = { ttl: 1_000, staleWhileRevalidate: 5_000 };
    assert.deepEqual(await site.cache.data.get('k', loader, opts), { v: 1 });
    version = 2;
    mock.timers.tick(2_000);
    const stale = await Promise.all(Array.from({ length: 5 }, () => site.cache.data.get('k', loader, opts)));
    for (const v of stale) assert.deepEqual(v, { v: 1 });
    await until(() => loads === 2, 'one background load');
    await sleep(30);
    assert.equal(loads, 2, 'five stale reads started one refresh');
    assert.deepEqual(await site.cache.data.get('k', loader, opts), { v: 2 });
    // Past the stale window the caller waits for the loader.
    version = 3;
    mock.timers.tick(7_000);
    assert.deepEqual(await site.cache.data.get('k', loader, opts), { v: 3 });
    assert.equal(loads, 3);
  });

  test('get: staleIfError serves the old value inside its window; outside it the error is the loader error', async () => {
    const boom = new Error('db down');
    let fail = false;
    const loader = (): string => {
      if (fail) throw boom;
      return 'value';
    };
    const opts = { ttl: 1_000, staleIfError: 10_000 };
    assert.equal(await site.cache.data.get('s', loader, opts), 'value');
    fail = true;
    mock.timers.tick(5_000);
    assert.equal(await site.cache.data.get('s', loader, opts), 'value');
    mock.timers.tick(10_000);
    await assert.rejects(site.cache.data.get('s', loader, opts), (e) => e === boom);
  });

  test('fetch: at most maxConcurrentPerOrigin requests at once to one origin', async () => {
    let active = 0;
    let peak = 0;
    const slow = await listen(async (_req, res) => {
      active++;
      peak = Math.max(peak, active);
      await sleep(30);
      active--;
      res.setHeader('cache-control', 'max-age=60');
      res.end('ok');
    });
    const cache = createCache({ data: { fetch: { maxConcurrentPerOrigin: 2 } } });
    try {
      const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => cache.data.fetch(`${slow.url}/item/${i}`)));
      assert.deepEqual(replies.map((r) => r.text()), Array(6).fill('ok'));
      assert.equal(peak, 2);
      // Cached: asking again makes no request.
      await cache.data.fetch(`${slow.url}/item/0`);
      assert.equal(cache.data.stats().hits, 1);
    } finally {
      await slow.close();
      await cache.close();
    }
  });

  test('fetch: a timeout fails with ERR_DATA_TIMEOUT', async () => {
    const hang = await listen(() => undefined);
    const cache = createCache();
    try {
      await assert.rejects(cache.data.fetch(`${hang.url}/never`, { timeout: 50 }), (e) => e instanceof DataTimeoutError && e.code === 'ERR_DATA_TIMEOUT');
    } finally {
      await hang.close();
      await cache.close();
    }
  });

  test('fetch of a relative URL runs the wrapped handler with no network and caches it by its headers', async () => {
    let renders = 0;
    const cache = createCache();
    const handler = cache.wrap((req, res) => {
      renders++;
      res.setHeader('cache-control', 'max-age=5');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url, host: req.headers.host }));
    });
    const server = await listen(http.createServer(handler));
    try {
      const fake = { headers: { host: 'shop.example' } } as http.IncomingMessage;
      const r = await cache.data.fetch('/api/thing?b=2&a=1', { req: fake });
      assert.deepEqual(await r.json(), { path: '/api/thing?a=1&b=2', host: 'shop.example' });
      assert.equal((await cache.data.fetch('/api/thing?a=1&b=2', { req: fake })).cache, 'HIT');
      assert.equal(renders, 1);
      assert.equal(cache.stats().gets, 0, 'the sub-request did not go through the response cache');
      mock.timers.tick(6_000);
      assert.equal((await cache.data.fetch('/api/thing?a=1&b=2', { req: fake })).cache, 'MISS');
      assert.equal(renders, 2);
      await assert.rejects(cache.data.fetch('relative/no-slash'), TypeError);
      await assert.rejects(cache.data.fetch('//other.example/x'), TypeError);
    } finally {
      await server.close();
      await cache.close();
    }
  });
});

after(() => mock.timers.reset());
