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
    assert.match(r.body, /^ERR_DATA_LOOP: loop: \/a -> \/b -> \/a/);
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

  test('a page made stale by a data change follows the grace rules: past gracePeriod it waits for a fresh render', async () => {
    await page();
    site.state.product.name = 'Kettle';
    assert.equal(site.cache.data.delete('product:42'), true);
    mock.timers.tick(10_001); // past the default gracePeriod (10 s); the page's max-age (30 s) is not reached
    const r = await page();
    assert.equal(r.headers['x-cache'], 'MISS');
    assert.match(r.body, /<h1>Kettle<\/h1>/);
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
  test('data deleted while a page that read it is still rendering: the page is stored stale', async () => {
    const cache = createCache();
    let version = 1;
    let renders = 0;
    let release!: () => void;
    let reached!: () => void;
    const atGate = new Promise<void>((r) => (reached = r));
    const gate = new Promise<void>((r) => (release = r));
    const server = await listen(
      cache.wrap(async (_req, res) => {
        renders++;
        const v = await cache.data.get('p', () => version);
        if (renders === 1) {
          reached();
          await gate;
        }
        res.setHeader('cache-control', 'max-age=60');
        res.end(`v${v}`);
      }),
    );
    try {
      const first = request(`${server.url}/`);
      await atGate;
      version = 2;
      cache.data.delete('p'); // the page has read v1 but is not stored yet
      release();
      assert.equal((await first).body, 'v1');
      const second = await request(`${server.url}/`);
      assert.equal(second.headers['x-cache'], 'STALE', 'stored stale at birth');
      await until(() => renders === 2 && cache.stats().stores === 2, 'the background render');
      assert.equal((await request(`${server.url}/`)).body, 'v2');
    } finally {
      await server.close();
      await cache.close();
    }
  });

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

  test('fetch: the headers a call sends are part of its key; delete(url) removes every variant', async () => {
    let calls = 0;
    const api = await listen((req, res) => {
      calls++;
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'accept-language', 'content-type': 'text/plain' });
      res.end(`hello in ${req.headers['accept-language']}`);
    });
    const cache = createCache();
    try {
      const en = await cache.data.fetch(`${api.url}/greeting`, { headers: { 'Accept-Language': 'en' } });
      const fr = await cache.data.fetch(`${api.url}/greeting`, { headers: { 'accept-language': 'fr' } });
      assert.deepEqual([en.text(), fr.text()], ['hello in en', 'hello in fr']);
      assert.equal((await cache.data.fetch(`${api.url}/greeting`, { headers: { 'accept-language': 'en' } })).cache, 'HIT');
      assert.equal(calls, 2);
      assert.equal(cache.data.delete(`${api.url}/greeting`), true);
      assert.equal(cache.data.stats().entries, 0);
    } finally {
      await api.close();
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

describe('includes', () => {
  /** A site of fragments: each path answers its HTML with max-age=60 unless listed in `status`. */
  async function fragments(pages: Record<string, string>, options: { includes?: boolean; data?: { maxIncludeDepth?: number; includeErrors?: 'continue' | 'fail' } } = {}) {
    const renders: Record<string, number> = {};
    const cache = createCache({ includes: options.includes ?? true, data: options.data ?? {} });
    const server = await listen(
      cache.wrap((req, res) => {
        const path = req.url ?? '/';
        renders[path] = (renders[path] ?? 0) + 1;
        const body = pages[path];
        if (body === undefined) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('missing');
        res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60', etag: '"t1"' });
        res.end(body);
      }),
    );
    return {
      url: server.url,
      renders,
      cache,
      async close() {
        await server.close();
        await cache.close();
      },
    };
  }

  test('the client that fills the cache gets the assembled page too, and HEAD gets its length', async () => {
    const s = await fragments({ '/': '<p><esi:include src="/f"/></p>', '/f': 'F' });
    try {
      const miss = await request(`${s.url}/`);
      assert.equal(miss.headers['x-cache'], 'MISS');
      assert.equal(miss.body, '<p>F</p>');
      assert.equal(miss.headers['content-length'], '8');
      assert.equal(miss.headers.etag, undefined, 'the template validator does not describe the assembled bytes');
      const head = await request(`${s.url}/`, { method: 'HEAD' });
      assert.equal(head.headers['x-cache'], 'HIT');
      assert.equal(head.headers['content-length'], '8');
      assert.equal(head.body, '');
      // Conditional requests get the full page: the assembled bytes have no validator.
      const cond = await request(`${s.url}/`, { headers: { 'if-none-match': '"t1"' } });
      assert.equal(cond.status, 200);
      assert.equal(cond.body, '<p>F</p>');
      assert.deepEqual(s.renders, { '/': 1, '/f': 1 });
    } finally {
      await s.close();
    }
  });

  test('nested includes assemble down to maxIncludeDepth; one deeper fails the page', async () => {
    const pages = { '/': '[<esi:include src="/1"/>]', '/1': '1<esi:include src="/2"/>', '/2': '2<esi:include src="/3"/>', '/3': '3' };
    const ok = await fragments(pages, { data: { maxIncludeDepth: 3 } });
    try {
      assert.equal((await request(`${ok.url}/`)).body, '[123]');
    } finally {
      await ok.close();
    }
    const shallow = await fragments(pages, { data: { maxIncludeDepth: 2 } });
    try {
      assert.equal((await request(`${shallow.url}/`)).status, 500);
      assert.equal(shallow.renders['/3'], undefined, 'the too-deep include was never requested');
    } finally {
      await shallow.close();
    }
  });

  test('a failing include fails the page unless onerror="continue" or includeErrors: continue', async () => {
    const pages = { '/strict': 'a<esi:include src="/gone"/>b', '/lenient': 'a<esi:include src="/gone" onerror="continue"/>b' };
    const s = await fragments(pages);
    try {
      assert.equal((await request(`${s.url}/strict`)).status, 500);
      const lenient = await request(`${s.url}/lenient`);
      assert.equal(lenient.status, 200);
      assert.equal(lenient.body, 'ab');
    } finally {
      await s.close();
    }
    const relaxed = await fragments(pages, { data: { includeErrors: 'continue' } });
    try {
      assert.equal((await request(`${relaxed.url}/strict`)).body, 'ab');
    } finally {
      await relaxed.close();
    }
  });

  test('a passed HTML response is assembled too; a handler that fails while held answers 500', async () => {
    const cache = createCache({ includes: true, bypass: (req) => req.url === '/pass' || req.url === '/throws' });
    const server = await listen(
      cache.wrap((req, res) => {
        res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' });
        if (req.url === '/throws') throw new Error('half-way');
        res.end(req.url === '/f' ? 'F' : '<esi:include src="/f"/>!');
      }),
    );
    try {
      const r = await request(`${server.url}/pass`);
      assert.equal(r.headers['x-cache'], 'PASS');
      assert.equal(r.body, 'F!');
      const failed = await request(`${server.url}/throws`);
      assert.equal(failed.status, 500);
      assert.equal(failed.body, 'Internal Server Error');
    } finally {
      await server.close();
      await cache.close();
    }
  });

  test('an HTML body over maxEntrySize is streamed as written, not held without bound', async () => {
    const big = `${'x'.repeat(5000)}<esi:include src="/f"/>${'y'.repeat(5000)}`;
    const cache = createCache({ includes: true, maxEntrySize: 4096 });
    const server = await listen(
      cache.wrap((req, res) => {
        res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' });
        if (req.url === '/f') return void res.end('F');
        res.write(big.slice(0, 3000));
        res.end(big.slice(3000));
      }),
    );
    try {
      const r = await request(`${server.url}/big`);
      assert.equal(r.status, 200);
      assert.equal(r.body, big);
      assert.equal((await request(`${server.url}/big`)).headers['x-cache'], 'PASS', 'too large to store');
    } finally {
      await server.close();
      await cache.close();
    }
  });

  test('with includes off (the default) the page is stored and served as written', async () => {
    const s = await fragments({ '/': '<esi:include src="/f"/>', '/f': 'F' }, { includes: false });
    try {
      assert.equal((await request(`${s.url}/`)).body, '<esi:include src="/f"/>');
      const hit = await request(`${s.url}/`);
      assert.equal(hit.headers['x-cache'], 'HIT');
      assert.equal(hit.body, '<esi:include src="/f"/>');
      assert.equal(hit.headers.etag, '"t1"');
      assert.equal(s.renders['/f'], undefined);
    } finally {
      await s.close();
    }
  });
});

describe('sub-requests through middleware adapters', () => {
  test('Express: a route fetches another route of the same app through the data cache', async () => {
    const { default: express } = await import('express');
    const cache = createCache({ includes: true });
    const app = express();
    let inner = 0;
    app.use(cache.middleware());
    app.get('/inner', (_req, res) => {
      inner++;
      res.set('cache-control', 'max-age=60').type('html').send(`<i>inner ${inner}</i>`);
    });
    app.get('/outer', async (req, res) => {
      const frag = await cache.data.fetch('/inner', { req });
      res.set('cache-control', 'max-age=60').type('html').send(`<b>${frag.text()}</b><esi:include src="/inner"/>`);
    });
    const server = await listen(http.createServer(app));
    try {
      const r = await request(`${server.url}/outer`);
      assert.equal(r.status, 200);
      assert.equal(r.body, '<b><i>inner 1</i></b><i>inner 1</i>');
      assert.equal(inner, 1, 'the fetch and the include share one cached sub-response');
    } finally {
      await server.close();
      await cache.close();
    }
  });
});

test('Koa: a sub-request runs through the Koa app and its include is assembled', async () => {
  const { default: Koa } = await import('koa');
  const cache = createCache({ includes: true });
  const app = new Koa();
  let inner = 0;
  app.use(cache.koa());
  app.use(async (ctx) => {
    ctx.set('cache-control', 'max-age=60');
    ctx.type = 'html';
    if (ctx.path === '/inner') ctx.body = `<i>${++inner}</i>`;
    else ctx.body = `<b>${(await cache.data.fetch('/inner', { req: ctx.req })).text()}</b><esi:include src="/inner"/>`;
  });
  const server = await listen(http.createServer(app.callback()));
  try {
    const r = await request(`${server.url}/outer`);
    assert.equal(r.body, '<b><i>1</i></b><i>1</i>');
    assert.equal((await request(`${server.url}/outer`)).headers['x-cache'], 'HIT');
    assert.equal(inner, 1);
  } finally {
    await server.close();
    await cache.close();
  }
});

test('examples/render-server.ts --check runs as shown', async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(tsx, ['examples/render-server.ts', '--check'], { timeout: 30_000 });
  assert.match(stdout, /200 MISS assembled\n200 HIT assembled\nafter the product changed: STALE\nHIT shows Kettle\npage renders: 2, header renders: 1, product API calls: 2/);
});
