/**
 * RFC 9211 Cache-Status detail (`cacheStatusDetail: true`) over real sockets: what a client sees
 * for a miss that was stored, a hit from memory and from the disk tier, a request collapsed into
 * another's render, a stale copy refreshed in the background, a stale copy served because the
 * origin failed, an invalidated copy re-rendered, passes, and a peer's copy. Off (the default),
 * Cache-Status keeps its keys-only form.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createCache, DiskStore, type CacheOptions } from '../../src/index.js';
import { countingOrigin, HOST, startCluster } from '../helpers/cluster.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';
import { until } from '../helpers/origin.js';

const tracked = closedAfterFile();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A site whose pages say how they should be cached: `?cc=...` sets Cache-Control, `?status=` the status. */
async function site(options: CacheOptions) {
  const cache = createCache(options);
  tracked.caches.push(cache);
  const state = { gate: undefined as Promise<void> | undefined, renders: 0 };
  const srv = await listen(
    cache.wrap(async (req, res) => {
      state.renders++;
      if (state.gate !== undefined) await state.gate;
      const q = new URL(req.url ?? '/', 'http://x').searchParams;
      res.writeHead(Number(q.get('status') ?? 200), { 'cache-control': q.get('cc') ?? 'public, max-age=60' });
      res.end(`render ${state.renders}`);
    }),
  );
  tracked.servers.push(srv);
  const get = (path: string, init: { method?: string } = {}) => request(`${srv.url}${path}`, init);
  return { cache, srv, state, get };
}

test('misses, hits, collapsed waiters and passes say why, how long and from where', async () => {
  const { get, state, cache } = await site({ cacheStatusDetail: true });
  const miss = await get('/a');
  assert.equal(miss.headers['x-cache'], 'MISS');
  assert.match(String(miss.headers['cache-status']), /^stratacache; fwd=uri-miss; fwd-status=200; ttl=(5\d|60); stored$/);
  const hit = await get('/a');
  assert.equal(hit.headers['x-cache'], 'HIT');
  assert.match(String(hit.headers['cache-status']), /^stratacache; hit; ttl=(5\d|60); detail=memory$/);

  // Three at once: one renders, two wait for it.
  let open!: () => void;
  state.gate = new Promise<void>((r) => (open = r));
  const all = Promise.all([get('/b'), get('/b'), get('/b')]);
  // Open the gate once both waiters joined (a fixed sleep loses the race on a busy machine).
  const deduped = cache.stats().loadsDeduped;
  assert.ok(await until(() => cache.stats().loadsDeduped >= deduped + 2), 'two requests waited for the render');
  open();
  state.gate = undefined;
  const statuses = (await all).map((r) => String(r.headers['cache-status'])).sort();
  assert.equal(statuses.filter((s) => /^stratacache; fwd=uri-miss; fwd-status=200; ttl=(5\d|60); stored$/.test(s)).length, 1, statuses.join('\n'));
  assert.equal(statuses.filter((s) => /^stratacache; fwd=uri-miss; ttl=(5\d|60); collapsed; detail=memory$/.test(s)).length, 2, statuses.join('\n'));

  assert.equal((await get('/form', { method: 'POST' })).headers['cache-status'], 'stratacache; fwd=method');
  const priv = await get('/private?cc=private');
  assert.equal(priv.headers['cache-status'], 'stratacache; fwd=uri-miss; fwd-status=200');
  const remembered = await get('/private?cc=private');
  assert.equal(remembered.headers['x-cache'], 'PASS');
  // Remembered as not storable: forwarded without the cache (rendered alone, not stored).
  assert.match(String(remembered.headers['cache-status']), /^stratacache; fwd=bypass(; fwd-status=200)?(; detail=.+)?$/);
  assert.doesNotMatch(String(remembered.headers['cache-status']), /stored/);
});

test('stale copies: refreshed in the background (a hit, ttl < 0), re-rendered after an invalidation (fwd=stale)', async () => {
  const { cache, get } = await site({ cacheStatusDetail: true, gracePeriod: 0 });
  await get('/swr?cc=public,max-age=1,stale-while-revalidate=60');
  await sleep(2_100);
  const stale = await get('/swr?cc=public,max-age=1,stale-while-revalidate=60');
  assert.equal(stale.headers['x-cache'], 'STALE');
  assert.match(String(stale.headers['cache-status']), /^stratacache; hit; ttl=-\d+; detail=memory$/);

  await get('/inv');
  await cache.invalidate('/inv');
  const again = await get('/inv');
  assert.equal(again.headers['x-cache'], 'MISS');
  assert.match(String(again.headers['cache-status']), /^stratacache; fwd=stale; fwd-status=200; ttl=(5\d|60); stored$/);
});

test('a copy rescued from a failing origin says fwd=stale with the origin status', async () => {
  const cache = createCache({ cacheStatusDetail: true });
  tracked.caches.push(cache);
  let fail = false;
  const srv = await listen(
    cache.wrap((_req, res) => {
      res.writeHead(fail ? 503 : 200, { 'cache-control': 'public, max-age=1, stale-if-error=60' });
      res.end(fail ? 'down' : 'good');
    }),
  );
  tracked.servers.push(srv);
  await request(`${srv.url}/p`);
  await sleep(1_100);
  fail = true;
  const rescued = await request(`${srv.url}/p`);
  assert.equal(rescued.body, 'good');
  assert.equal(rescued.headers['x-cache'], 'STALE');
  assert.match(String(rescued.headers['cache-status']), /^stratacache; fwd=stale; fwd-status=503; ttl=-\d+; detail=memory$/);
});

test('a hit from the disk tier names it; off by default, Cache-Status keeps its keys', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-cs-'));
  // A fixed key host: the restarted node listens on another port.
  const first = await site({ cacheStatusDetail: true, key: { host: 'site' }, stores: [new DiskStore({ dir, maxSize: 1024 * 1024 })] });
  await first.get('/d');
  await first.cache.close();
  // A restarted node: memory is empty, the disk tier answers and the entry is promoted.
  const second = await site({ cacheStatusDetail: true, key: { host: 'site' }, stores: [new DiskStore({ dir, maxSize: 1024 * 1024 })] });
  const fromDisk = await second.get('/d');
  assert.equal(fromDisk.headers['x-cache'], 'HIT');
  assert.match(String(fromDisk.headers['cache-status']), /^stratacache; hit; ttl=(5\d|60); detail=disk$/);
  assert.match(String((await second.get('/d')).headers['cache-status']), /detail=memory$/);
  assert.equal(second.state.renders, 0);

  const plain = await site({});
  assert.equal((await plain.get('/k')).headers['cache-status'], 'stratacache; fwd=uri-miss');
  assert.equal((await plain.get('/k')).headers['cache-status'], 'stratacache; hit');
});

test("a peer's copy says fwd=peer, whether it was stored here, and which peer", async () => {
  const origin = countingOrigin();
  const cluster = await startCluster(2, origin, { cache: { cacheStatusDetail: true } });
  tracked.caches.push(cluster);
  const [a, b] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
  await request(`${a.url}/shared`, { headers: { host: HOST } });
  const fromPeer = await request(`${b.url}/shared`, { headers: { host: HOST } });
  assert.equal(fromPeer.headers['x-cache'], 'PEER');
  assert.match(String(fromPeer.headers['cache-status']), new RegExp(`^stratacache; fwd=peer; ttl=(5\\d|60); stored; detail=${a.url.replace(/[.]/g, '\\.')}$`));
  assert.equal(origin.total(), 1);
});

test('with compression on, a detailed hit still gets the coding the client accepts', async () => {
  const cache = createCache({ cacheStatusDetail: true, compress: { encodings: ['gzip'] } });
  tracked.caches.push(cache);
  const srv = await listen(
    cache.wrap((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=60' });
      res.end('<p>' + 'compressible '.repeat(200) + '</p>');
    }),
  );
  tracked.servers.push(srv);
  await request(`${srv.url}/z`, { headers: { 'accept-encoding': 'gzip' } });
  let hit = await request(`${srv.url}/z`, { headers: { 'accept-encoding': 'gzip' } });
  // Compression runs in the background after the store: wait for the variant.
  for (let i = 0; i < 100 && hit.headers['content-encoding'] !== 'gzip'; i++) {
    await sleep(20);
    hit = await request(`${srv.url}/z`, { headers: { 'accept-encoding': 'gzip' } });
  }
  assert.equal(hit.headers['content-encoding'], 'gzip');
  assert.match(String(hit.headers['cache-status']), /^stratacache; hit; ttl=(5\d|60); detail=memory$/);
});
