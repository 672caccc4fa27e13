/**
 * Invalidation through the API: epochs (own path, statLevel auto-invalidation, tags), grace
 * period boundaries with a fake clock (mock.timers on Date), hard removal, refetch, priming,
 * events and stats.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, mock, test } from 'node:test';
import { createCache, type CacheOptions, type InvalidationRecord, type RefetchEvent } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const { servers, caches } = closedAfterFile();
afterEach(() => mock.timers.reset());

/** A site whose pages say how many times each was rendered; long-lived unless told otherwise. */
async function site(options: CacheOptions = {}) {
  const renders = new Map<string, number>();
  const state = { down: false, tags: new Map<string, string>() };
  const cache = createCache(options);
  caches.push(cache);
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const n = (renders.get(url) ?? 0) + 1;
    renders.set(url, n);
    if (state.down) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down');
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'text/plain', 'cache-control': 'max-age=3600' };
    const tags = state.tags.get(url);
    if (tags !== undefined) headers['surrogate-key'] = tags;
    res.writeHead(200, headers);
    res.end(`${url} v${n}`);
  };
  const srv = await listen(cache.wrap(handler));
  servers.push(srv);
  const get = (path: string) => request(`${srv.url}${path}`);
  const total = () => [...renders.values()].reduce((a, b) => a + b, 0);
  return { cache, srv, get, renders, state, total };
}

/** Lets background renders (refreshes) run and store. */
const settle = () => new Promise((r) => setTimeout(r, 30));

describe('invalidate(): grace period', () => {
  test('STALE until the boundary with one background refresh; a miss from the boundary on', async () => {
    const s = await site({ gracePeriod: 10_000 });
    const t0 = Date.now();
    mock.timers.enable({ apis: ['Date'], now: t0 });
    await s.get('/a.html');
    await s.get('/b.html');
    assert.equal((await s.get('/a.html')).headers['x-cache'], 'HIT');
    // The clock is frozen: the entries were rendered in the very millisecond of the invalidation,
    // before it, and must still count as older.
    const seen: InvalidationRecord[] = [];
    s.cache.on('invalidate', (r) => seen.push(r));
    const { id } = await s.cache.invalidate('/a');
    await s.cache.invalidate('/b');
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.id, id);
    assert.deepEqual(seen[0]!.paths, ['/a']);

    mock.timers.tick(9_999); // last millisecond of grace
    const stale = await Promise.all(Array.from({ length: 20 }, () => s.get('/a.html')));
    // Until the refresh lands everyone gets the old copy as STALE; after it, the new one as HIT.
    assert.equal(stale[0]!.headers['x-cache'], 'STALE');
    for (const r of stale) assert.equal(r.body, r.headers['x-cache'] === 'STALE' ? '/a.html v1' : '/a.html v2');
    await settle();
    assert.equal(s.renders.get('/a.html'), 2, 'one background refresh for 20 stale requests');
    const fresh = await s.get('/a.html');
    assert.equal(fresh.headers['x-cache'], 'HIT');
    assert.equal(fresh.body, '/a.html v2');

    mock.timers.tick(1); // grace is over: wait for a fresh copy
    const miss = await s.get('/b.html');
    assert.equal(miss.headers['x-cache'], 'MISS');
    assert.equal(miss.body, '/b.html v2');
    const st = s.cache.stats();
    assert.equal(st.invalidations, 2);
    assert.equal(st.stale, stale.filter((r) => r.headers['x-cache'] === 'STALE').length);
  });

  test('gracePeriod 0: an invalidated entry is a miss at once', async () => {
    const s = await site({ gracePeriod: 0 });
    await s.get('/x.html');
    await s.cache.invalidate('/x.html');
    const r = await s.get('/x.html');
    assert.equal(r.headers['x-cache'], 'MISS');
    assert.equal(r.body, '/x.html v2');
  });

  test('invalidation never wipes the cache: even "/" only marks entries stale', async () => {
    const s = await site({ gracePeriod: 10_000 });
    for (const p of ['/1.html', '/2.png', '/d/3.json']) await s.get(p);
    const before = s.cache.stats().entries;
    await s.cache.invalidate('/');
    assert.equal(s.cache.stats().entries, before);
    const r = await s.get('/2.png');
    assert.equal(r.headers['x-cache'], 'STALE');
    assert.equal(r.body, '/2.png v1');
  });
});

describe('invalidate(): statLevel auto-invalidation', () => {
  test('level 2: /content/site/en/page makes /content/site/** globbed entries stale, not /content/other', async () => {
    const s = await site({ gracePeriod: 0, statLevel: 2 });
    const pages = ['/content/site/en/page.html', '/content/site/fr/home.html', '/content/site/en/data.model.json', '/content/site/logo.png', '/content/other/page.html'];
    for (const p of pages) await s.get(p);
    await s.cache.invalidate('/content/site/en/page');
    const x = async (p: string) => (await s.get(p)).headers['x-cache'];
    assert.equal(await x('/content/site/en/page.html'), 'MISS');
    assert.equal(await x('/content/site/fr/home.html'), 'MISS');
    assert.equal(await x('/content/site/en/data.model.json'), 'MISS');
    assert.equal(await x('/content/site/logo.png'), 'HIT', 'not matching autoInvalidate');
    assert.equal(await x('/content/other/page.html'), 'HIT', 'outside the stat-level ancestor');
  });

  test("scope 'resource' touches only the resource", async () => {
    const s = await site({ gracePeriod: 0 });
    await s.get('/r/page.html');
    await s.get('/r/other.html');
    await s.cache.invalidate('/r/page', { scope: 'resource' });
    assert.equal((await s.get('/r/page.html')).headers['x-cache'], 'MISS');
    assert.equal((await s.get('/r/other.html')).headers['x-cache'], 'HIT');
  });
});

describe('invalidate(): hard, tags, refetch', () => {
  test('hard removal: never served again, not within grace, not on origin error', async () => {
    const s = await site({ gracePeriod: 60_000 });
    await s.get('/gone.html');
    await s.cache.invalidate('/gone', { hard: true });
    const seen: string[][] = [];
    s.cache.on('invalidate', (rec) => seen.push([...rec.paths, String(rec.hard)]));
    await s.cache.invalidate('/gone2', { hard: true });
    assert.deepEqual(seen, [['/gone2', 'true']]);
    s.state.down = true;
    const r = await s.get('/gone.html');
    assert.equal(r.status, 503);
    assert.equal(r.body, 'down');
    assert.equal(s.cache.stats().stale, 0);
    assert.equal(s.cache.stats().invalidations, 2);
  });

  test('tags from Surrogate-Key: invalidateTags marks exactly the tagged entries stale', async () => {
    const s = await site({ gracePeriod: 0 });
    s.state.tags.set('/p/1', 'product-1 catalog');
    s.state.tags.set('/p/2', 'product-2 catalog');
    s.state.tags.set('/p/3', 'product-3');
    for (const p of ['/p/1', '/p/2', '/p/3']) await s.get(p);
    await s.cache.invalidateTags(['catalog']);
    assert.equal((await s.get('/p/1')).headers['x-cache'], 'MISS');
    assert.equal((await s.get('/p/2')).headers['x-cache'], 'MISS');
    assert.equal((await s.get('/p/3')).headers['x-cache'], 'HIT');
    await s.cache.invalidateTags(['product-3']);
    assert.equal((await s.get('/p/3')).headers['x-cache'], 'MISS');
    assert.equal(s.cache.stats().invalidations, 2);
  });

  test('refetch: the new copy replaces the old in the background; events and stats', async () => {
    const s = await site({ gracePeriod: 0 });
    await s.get('/f.html');
    const refetched: RefetchEvent[] = [];
    s.cache.on('refetch', (e) => refetched.push(e));
    const { refetched: done } = await s.cache.invalidate('/f.html', { refetch: true });
    assert.deepEqual(await done, { ok: 1, failed: 0 });
    assert.equal(refetched.length, 1);
    assert.equal(refetched[0]!.url, '/f.html');
    const r = await s.get('/f.html');
    assert.equal(r.headers['x-cache'], 'HIT');
    assert.equal(r.body, '/f.html v2');
    assert.equal(s.renders.get('/f.html'), 2);
    assert.equal(s.cache.stats().refetches, 1);
  });

  test('a failed refetch keeps the old copy, reports refetch-error, and it stays servable on error', async () => {
    const s = await site({ gracePeriod: 0 });
    await s.get('/keep.html');
    const errors: RefetchEvent[] = [];
    s.cache.on('refetch-error', (e) => errors.push(e));
    s.cache.on('error', () => {});
    s.state.down = true;
    const { refetched } = await s.cache.invalidate('/keep', { refetch: ['/keep.html'] });
    assert.deepEqual(await refetched, { ok: 0, failed: 1 });
    assert.equal(errors.length, 1);
    assert.equal(s.cache.stats().refetchErrors, 1);
    // The origin is still down: the old copy answers, not the 503.
    const r = await s.get('/keep.html');
    assert.equal(r.status, 200);
    assert.equal(r.body, '/keep.html v1');
    assert.equal(r.headers['x-cache'], 'STALE');
  });

  test('malformed paths are refused', async () => {
    const s = await site();
    await assert.rejects(s.cache.invalidate('no-slash'), TypeError);
    await assert.rejects(s.cache.invalidate('/a', { refetch: ['bad uri'] }), TypeError);
    await assert.rejects(s.cache.invalidateTags(['has space']), TypeError);
  });
});

describe('invalidateTags() and the data cache', () => {
  test('a value stored with tags is loaded again after one of them is invalidated; dependents go stale', async () => {
    const cache = createCache({ gracePeriod: 0 });
    caches.push(cache);
    let loads = 0;
    let price = 10;
    const load = () => cache.data.get('price:42', async () => (loads++, price), { ttl: 60_000, tags: ['product-42'] });
    const srv = await listen(
      cache.wrap(async (_req, res) => {
        const p = await load();
        res.writeHead(200, { 'cache-control': 'max-age=3600' });
        res.end(`price ${p}`);
      }),
    );
    servers.push(srv);
    assert.equal((await request(`${srv.url}/p42`)).body, 'price 10');
    assert.equal(await load(), 10);
    assert.equal(loads, 1);
    price = 12;
    await cache.invalidateTags(['product-42']);
    assert.equal(await load(), 12);
    assert.equal(loads, 2);
    assert.equal(await load(), 12);
    assert.equal(loads, 2, 'the reloaded value is fresh again');
    // The page that read the value was marked stale by the data cache's dependency tracking.
    const stored = new Promise((resolve) => cache.once('store', resolve));
    const page = await request(`${srv.url}/p42`);
    assert.notEqual(page.headers['x-cache'], 'HIT');
    if (page.body !== 'price 12') await stored; // served stale: wait for its background refresh
    const fresh = await request(`${srv.url}/p42`);
    assert.equal(fresh.body, 'price 12');
  });
});

describe('prime()', () => {
  test('renders each URL once, bounded, with progress; then they are hits', async () => {
    const s = await site();
    const progress: number[] = [];
    const summary = await s.cache.prime(['/w/1.html', '/w/2.html', '/w/3.html', '/w/1.html'], {
      concurrency: 2,
      host: `127.0.0.1:${s.srv.port}`,
      onProgress: (p) => progress.push(p.done),
    });
    assert.deepEqual(summary, { ok: 3, failed: 0 });
    assert.deepEqual(progress, [1, 2, 3]);
    for (const p of ['/w/1.html', '/w/2.html', '/w/3.html']) {
      const r = await s.get(p);
      assert.equal(r.headers['x-cache'], 'HIT');
      assert.equal(r.body, `${p} v1`);
    }
    assert.equal(s.total(), 3);
    assert.equal(s.cache.stats().regenerations, 3);
  });

  test('absolute URLs carry their host; failures are counted, not thrown', async () => {
    const s = await site();
    s.cache.on('error', () => {});
    const ok = await s.cache.prime([`${s.srv.url}/abs.html`]);
    assert.deepEqual(ok, { ok: 1, failed: 0 });
    assert.equal((await s.get('/abs.html')).headers['x-cache'], 'HIT');
    s.state.down = true;
    assert.deepEqual(await s.cache.prime([`${s.srv.url}/down.html`]), { ok: 0, failed: 1 });
  });
});

describe('engine hooks for the peer layer', () => {
  test('isInvalidated, onInvalidate and the log', async () => {
    const s = await site();
    await s.get('/peer/page.html');
    const engine = s.cache.engine.invalidation;
    const shipped: InvalidationRecord[] = [];
    const off = engine.onInvalidate((r) => shipped.push(r));
    const old = { ...s.cache.engine.memory.get(`127.0.0.1:${s.srv.port}/peer/page.html`)! };
    assert.equal(engine.isInvalidated(old), false);
    await s.cache.invalidate('/peer/page');
    assert.equal(engine.isInvalidated(old), true);
    assert.equal(engine.isInvalidated({ ...old, storedAt: Date.now() + 1 }), false);
    engine.invalidate({ paths: ['/peer/other'] }, { origin: 'remote' });
    off();
    await s.cache.invalidate('/peer/third');
    assert.deepEqual(
      shipped.map((r) => [r.origin, r.paths[0]]),
      [
        ['local', '/peer/page'],
        ['remote', '/peer/other'],
      ],
    );
    // A peer's record applies at the time it had there: a copy the peer rendered after it passes.
    const peerAt = Date.now() - 1_000;
    const fresh = { ...old, url: '/peer/fresh.txt' }; // not auto-invalidated by the others
    engine.invalidate({ paths: ['/peer/fresh'] }, { origin: 'remote', at: peerAt });
    assert.equal(engine.isInvalidated({ ...fresh, storedAt: peerAt }), false);
    assert.equal(engine.isInvalidated({ ...fresh, storedAt: peerAt - 1 }), true);
    // An older record arriving late never lowers a newer epoch (nothing invalidated comes back).
    engine.invalidate({ paths: ['/peer/page'] }, { origin: 'remote', at: peerAt });
    assert.equal(engine.isInvalidated({ ...old, storedAt: peerAt }), true);
    // ...but never later than this node's clock.
    engine.invalidate({ paths: ['/peer/later'] }, { origin: 'remote', at: Date.now() + 3_600_000 });
    assert.ok(engine.log.since(0).at(-1)!.at <= Date.now() + 1);
    const log = engine.log.since(0).slice(0, 3);
    assert.deepEqual(log.map((r) => r.id), [1, 2, 3]);
    assert.ok(log[0]!.at <= log[1]!.at && log[1]!.at <= log[2]!.at);
  });
});
