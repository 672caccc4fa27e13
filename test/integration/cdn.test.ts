/**
 * CDN fan-out over real sockets, against a local fake of each provider's purge API on
 * 127.0.0.1:0 that checks the documented method, path, headers, authentication (Akamai's EdgeGrid
 * signature recomputed) and body: stored responses carry their tags in the provider's header;
 * path, tag, PURGE, flush-endpoint and data-dependency invalidations are purged; a refetching
 * flush purges only after the new page is stored; failures are retried with backoff and
 * counted in stats and metrics.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { edgeGridAuthorization } from '../../src/cdn/edgegrid.js';
import { dataTag, resourceTag, treeTag } from '../../src/cdn/tags.js';
import { createCache, type CacheOptions } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';
import { until as eventually } from '../helpers/origin.js';

const tracked = closedAfterFile();

interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

/** A fake purge API: records each request and answers with the next of `statuses` (then 200). */
async function fakeApi(statuses: number[] = []) {
  const received: Received[] = [];
  const waiters: Array<() => void> = [];
  const api = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const status = statuses.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: status < 300 ? 'ok' : 'error' }));
      for (const w of waiters.splice(0)) w();
    });
  });
  tracked.servers.push(api);
  /** Resolves once `n` requests arrived. */
  const until = async (n: number): Promise<Received[]> => {
    while (received.length < n) await new Promise<void>((r) => waiters.push(r));
    return received;
  };
  return { api, received, until };
}

async function site(cdn: CacheOptions['cdn'], extra: CacheOptions = {}) {
  const cache = createCache({ cdn, gracePeriod: 0, ...extra });
  tracked.caches.push(cache);
  const renders: Array<{ path: string; at: number }> = [];
  const srv = await listen(
    cache.wrap(async (req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      renders.push({ path, at: Date.now() });
      const price = path.startsWith('/priced') ? await cache.data.get('price:7', () => 42) : undefined;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=300', 'surrogate-key': 'product-7 catalog' });
      res.end(`${path} render ${renders.length}${price === undefined ? '' : ` price ${price}`}`);
    }),
  );
  tracked.servers.push(srv);
  return { cache, srv, renders, get: (path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) => request(`${srv.url}${path}`, init) };
}

const tagsOf = (r: Received, field: string): string[] => (JSON.parse(r.body) as Record<string, string[]>)[field] ?? [];

test('Fastly: Surrogate-Key out; path, tag, PURGE, flush and data-dependency invalidations purged by surrogate key, soft', async () => {
  const { api, until } = await fakeApi();
  const { cache, get } = await site({ provider: 'fastly', serviceId: 'SVC1', token: 'fastly-token', apiBase: api.url });
  await get('/shop/shoes/red.html');
  const hit = await get('/shop/shoes/red.html');
  assert.equal(hit.headers['x-cache'], 'HIT');
  const keys = String(hit.headers['surrogate-key']).split(' ');
  assert.ok(keys.includes('product-7') && keys.includes('catalog'), "the origin's tags");
  assert.ok(keys.includes(treeTag('')) && keys.includes(treeTag('/shop')) && keys.includes(resourceTag('/shop/shoes/red')), 'path tags');

  await cache.invalidate('/shop');
  let [r] = await until(1);
  assert.equal(r!.method, 'POST');
  assert.equal(r!.path, '/service/SVC1/purge');
  assert.equal(r!.headers['fastly-key'], 'fastly-token');
  assert.equal(r!.headers['fastly-soft-purge'], '1');
  assert.match(String(r!.headers['content-type']), /^application\/json/);
  assert.ok(tagsOf(r!, 'surrogate_keys').includes(treeTag('/shop')));
  assert.ok(keys.includes(tagsOf(r!, 'surrogate_keys')[0]!), 'the purged key is one the response carried');

  await cache.invalidateTags(['catalog']);
  assert.deepEqual(tagsOf((await until(2))[1]!, 'surrogate_keys'), ['catalog']);

  assert.equal((await get('/shop/shoes/red.html', { method: 'PURGE' })).status, 200);
  assert.deepEqual(tagsOf((await until(3))[2]!, 'surrogate_keys'), [resourceTag('/shop/shoes/red')]);

  const flushed = await get('/dispatcher/invalidate.cache', { method: 'POST', headers: { 'cq-action': 'Activate', 'cq-handle': '/news', 'content-type': 'application/octet-stream' }, body: '' });
  assert.equal(flushed.status, 200);
  assert.ok(tagsOf((await until(4))[3]!, 'surrogate_keys').includes(treeTag('/news')));

  // A page rendered from a data key carries its tag; deleting the key purges it.
  await get('/priced/7');
  const priced = await get('/priced/7');
  // Data keys are tagged as the data cache stores them (values under `v:`).
  assert.ok(String(priced.headers['surrogate-key']).split(' ').includes(dataTag('v:price:7')));
  cache.data.delete('price:7');
  assert.deepEqual(tagsOf((await until(5))[4]!, 'surrogate_keys'), [dataTag('v:price:7')]);
  assert.ok(await eventually(() => cache.stats().cdnPurges === 5));
  const stats = cache.stats();
  assert.equal(stats.cdnPurges, 5);
  assert.equal(stats.cdnPurgeErrors, 0);
  const scrape = await listen(cache.metricsHandler());
  tracked.servers.push(scrape);
  const metrics = (await request(`${scrape.url}/metrics`)).body;
  assert.match(metrics, /^stratacache_cdn_purge_requests_total\{outcome="accepted"\} 5$/m);
});

test('a refetching flush purges the CDN only after the new page is stored here', async () => {
  const { api, until } = await fakeApi();
  const { cache, get, renders } = await site({ provider: 'fastly', serviceId: 'SVC1', token: 't', apiBase: api.url });
  await get('/news/today');
  const { refetched } = await cache.invalidate('/news/today', { refetch: true });
  const [purge] = await until(1);
  await refetched;
  const refetch = renders.filter((r) => r.path === '/news/today')[1];
  assert.ok(refetch !== undefined, 'refetched');
  assert.ok(purge!.at >= refetch.at, 'purged after the refetch rendered');
  assert.equal((await get('/news/today')).body, '/news/today render 2', 'the CDN refills from the new page');
});

test('Cloudflare: Cache-Tag out, purge_cache by tags with a Bearer token; a failing API is retried with backoff', async () => {
  const { api, until } = await fakeApi([503, 429]);
  const { cache, get } = await site({ provider: 'cloudflare', zoneId: 'ZONE9', token: 'cf-token', apiBase: `${api.url}/client/v4` });
  const errors: string[] = [];
  cache.on('error', (e) => errors.push(e.message));
  await get('/a');
  const hit = await get('/a');
  assert.ok(String(hit.headers['cache-tag']).split(',').includes('catalog'));
  await cache.invalidateTags(['catalog']);
  const received = await until(3);
  for (const r of received) {
    assert.equal(r.path, '/client/v4/zones/ZONE9/purge_cache');
    assert.equal(r.headers.authorization, 'Bearer cf-token');
    assert.deepEqual(JSON.parse(r.body), { tags: ['catalog'] });
  }
  assert.ok(received[2]!.at - received[1]!.at >= 400, 'the second retry waited longer (backoff doubles)');
  assert.ok(await eventually(() => cache.stats().cdnPurges === 1));
  const s = cache.stats();
  assert.deepEqual([s.cdnPurges, s.cdnPurgeErrors, s.cdnPurgesDropped], [1, 2, 0]);
  assert.deepEqual(errors, ['cloudflare purge of 1 tags answered 503, retrying', 'cloudflare purge of 1 tags answered 429, retrying']);
});

test('Akamai: Edge-Cache-Tag out, Fast Purge by tag with a valid EdgeGrid signature; a refusal is not retried', async () => {
  const { api, until } = await fakeApi([200, 403]);
  const credentials = { clientToken: 'akab-client', clientSecret: 'c2VjcmV0', accessToken: 'akab-access' };
  const { cache, get } = await site({ provider: 'akamai', apiBase: api.url, ...credentials });
  const errors: string[] = [];
  cache.on('error', (e) => errors.push(e.code));
  await get('/a');
  assert.ok(String((await get('/a')).headers['edge-cache-tag']).split(',').includes('product-7'));
  await cache.invalidateTags(['product-7']);
  const [r] = await until(1);
  assert.equal(r!.path, '/ccu/v3/invalidate/tag/production');
  assert.deepEqual(JSON.parse(r!.body), { objects: ['product-7'] });
  const auth = String(r!.headers.authorization);
  const m = /timestamp=([^;]+);nonce=([^;]+);/.exec(auth);
  assert.ok(m !== null, auth);
  const expected = edgeGridAuthorization(credentials, { method: 'POST', url: new URL(r!.path, `http://${r!.headers.host}`), body: r!.body }, { timestamp: m[1], nonce: m[2] });
  assert.equal(auth, expected, 'the server recomputes the same signature');
  await cache.invalidateTags(['other']);
  await until(2);
  assert.ok(await eventually(() => cache.stats().cdnPurgesDropped === 1));
  const s = cache.stats();
  assert.deepEqual([s.cdnPurges, s.cdnPurgeErrors, s.cdnPurgesDropped], [1, 1, 1], '403 dropped at once');
  assert.deepEqual(errors, ['ERR_CDN']);
});
