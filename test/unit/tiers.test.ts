/**
 * The tier list (`options.stores`): a memory store in it is the memory tier, lower-tier hits are
 * promoted to every tier above, writes reach every tier; the store contract is usable from
 * `stratacache/testing` on a store written by a user.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { storeContract } from 'stratacache/testing';
import { createCache, memoryStore, MemoryStore, type CacheStore, type Entry } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';
import { missing } from '../helpers/requires.js';

/** A user's own store: a Map with a byte budget, counting its calls. */
class MapStore implements CacheStore {
  readonly name = 'map';
  readonly map = new Map<string, Entry>();
  readonly calls = { get: 0, set: 0, delete: 0 };
  constructor(readonly maxSize: number) {}
  async get(key: string): Promise<Entry | undefined> {
    this.calls.get++;
    const e = this.map.get(key);
    if (e === undefined || e.expiresAt <= Date.now()) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e;
  }
  async set(key: string, entry: Entry): Promise<void> {
    this.calls.set++;
    this.map.delete(key);
    this.map.set(key, { ...entry, body: Buffer.from(entry.body) });
    for (const [k] of this.map) {
      if (this.size().bytes <= this.maxSize) break;
      this.map.delete(k);
    }
  }
  async delete(key: string): Promise<void> {
    this.calls.delete++;
    this.map.delete(key);
  }
  size(): { entries: number; bytes: number } {
    let bytes = 0;
    for (const e of this.map.values()) bytes += e.body.length + 256;
    return { entries: this.map.size, bytes };
  }
}

// A user's store checked with the published contract suite, imported as a user would.
storeContract('MapStore (a user store, via stratacache/testing)', ({ maxSize }) => new MapStore(maxSize));

const tracked = closedAfterFile();

describe('options.stores', () => {
  test('a memory store in the list is the memory tier; its own budget holds', async () => {
    const memory = memoryStore({ maxSize: 4096 });
    const cache = createCache({ stores: [memory] });
    tracked.caches.push(cache);
    let renders = 0;
    const s = await listen(cache.wrap((_req, res) => {
      renders++;
      res.setHeader('cache-control', 'public, max-age=60');
      res.end('x'.repeat(1000));
    }));
    tracked.servers.push(s);
    for (const path of ['/a', '/a', '/b', '/c', '/d', '/e']) assert.equal((await request(s.url + path)).status, 200);
    assert.equal(renders, 5, '/a rendered once, then a HIT');
    assert.ok(memory.size().bytes <= 4096, `the given store holds the entries within its budget (${memory.size().bytes})`);
    assert.equal(cache.stats().entries, memory.size().entries);
  });

  test('a store given as a promise (not awaited) is waited for: stored there, and a new node is served from it', async () => {
    let resolveStore!: (s: CacheStore) => void;
    const promised = new Promise<CacheStore>((r) => (resolveStore = r));
    const shared = new MapStore(1 << 20);
    const first = createCache({ key: { host: 'site' }, stores: [promised] });
    tracked.caches.push(first);
    let renders = 0;
    const page = (_req: unknown, res: import('node:http').ServerResponse) => {
      renders++;
      res.setHeader('cache-control', 'public, max-age=60');
      res.end(`render ${renders}`);
    };
    const a = await listen(first.wrap(page));
    tracked.servers.push(a);
    const reply = request(`${a.url}/p`);
    // The lookup waits for the store; it is there a moment later.
    setTimeout(() => resolveStore(shared), 50);
    assert.equal((await reply).body, 'render 1');
    for (let i = 0; i < 100 && shared.map.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(shared.map.size, 1, 'the render was stored in the promised store');
    const second = createCache({ key: { host: 'site' }, stores: [Promise.resolve(shared)] });
    tracked.caches.push(second);
    const b = await listen(second.wrap(page));
    tracked.servers.push(b);
    const fromStore = await request(`${b.url}/p`);
    assert.equal(fromStore.body, 'render 1');
    assert.equal(fromStore.headers['x-cache'], 'HIT');
    assert.equal(renders, 1);
    assert.deepEqual(second.stats().tiers.map((t) => t.name), ['map']);
  });

  test('a promised store that rejects is reported once; every response is still served', async () => {
    const failing = Promise.reject(new Error('npm install ioredis'));
    const cache = createCache({ stores: [failing as Promise<CacheStore>] });
    tracked.caches.push(cache);
    const errors: Error[] = [];
    cache.on('error', (error: Error) => errors.push(error));
    let renders = 0;
    const s = await listen(cache.wrap((_req, res) => {
      renders++;
      res.setHeader('cache-control', 'public, max-age=60');
      res.end('ok');
    }));
    tracked.servers.push(s);
    for (const path of ['/a', '/a', '/b']) assert.equal((await request(s.url + path)).body, 'ok');
    assert.equal(renders, 2, '/a rendered once: the memory tier still works');
    assert.equal(errors.length, 1);
    assert.match(String((errors[0] as Error & { cause?: Error }).cause?.message), /npm install ioredis/);
    assert.throws(() => createCache({ stores: [Promise.resolve(1) as never, 'x' as never] }), { name: 'TypeError', message: /options\.stores\[1\] to be a store with get, set and delete/ });
  });

  test('a lower-tier hit is promoted to every tier above; a stored response is written to all', async () => {
    const upper = new MapStore(1 << 20);
    const lower = new MapStore(1 << 20);
    const cache = createCache({ stores: [upper, lower] });
    tracked.caches.push(cache);
    let renders = 0;
    const s = await listen(cache.wrap((_req, res) => {
      renders++;
      res.setHeader('cache-control', 'public, max-age=60');
      res.end(`render ${renders}`);
    }));
    tracked.servers.push(s);
    const first = await request(`${s.url}/p`);
    assert.equal(first.body, 'render 1');
    await cache.close(); // lets the background writes land
    assert.equal(upper.map.size, 1);
    assert.equal(lower.map.size, 1);

    // A new cache (new memory) over a lower tier that alone holds the entry.
    upper.map.clear();
    const again = createCache({ stores: [upper, lower] });
    tracked.caches.push(again);
    const s2 = await listen(again.wrap((_req, res) => {
      renders++;
      res.end('should not render');
    }));
    tracked.servers.push(s2);
    const hit = await request(`${s2.url}/p`, { headers: { host: new URL(s.url).host } });
    assert.equal(hit.body, 'render 1');
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(renders, 1);
    assert.equal(upper.map.size, 1, 'promoted to the tier above the one that had it');
    // And to memory: the next request touches neither store.
    const calls = { upper: upper.calls.get, lower: lower.calls.get };
    assert.equal((await request(`${s2.url}/p`, { headers: { host: new URL(s.url).host } })).body, 'render 1');
    assert.deepEqual({ upper: upper.calls.get, lower: lower.calls.get }, calls);
  });

  test('refused tier lists name the option', () => {
    const m = new MemoryStore({ maxSize: 1000 });
    const other = new MapStore(1000);
    assert.throws(() => createCache({ stores: [other, m] }), { name: 'RangeError', message: /options\.stores\[1\].*memory store must come first/ });
    assert.throws(() => createCache({ stores: [other, other] }), { name: 'RangeError', message: /options\.stores\[1\] to be a store not already listed/ });
    assert.throws(() => memoryStore({ maxSize: 0 }), { name: 'RangeError', message: 'expected options.maxSize to be a positive integer, got 0' });
    assert.throws(() => memoryStore({ maxSize: 10, maxEntrySize: 11 }), { name: 'RangeError', message: /options\.maxEntrySize to be at most options\.maxSize \(10\), got 11/ });
  });
});

describe('options.data.stores', () => {
  test('values are written through to a lower tier and read from it by another cache; a delete removes them', async () => {
    const shared = new MapStore(1 << 20);
    const a = createCache({ data: { stores: [shared] } });
    const b = createCache({ data: { stores: [memoryStore({ maxSize: 1 << 20 }), shared] } });
    tracked.caches.push(a, b);
    let loads = 0;
    const load = async (): Promise<{ n: number }> => ({ n: ++loads });
    assert.deepEqual(await a.data.get('price:1', load, { ttl: 60_000 }), { n: 1 });
    assert.ok(shared.map.has('v:price:1'), 'written through under the data key');
    assert.deepEqual(await b.data.get('price:1', load, { ttl: 60_000 }), { n: 1 }, 'b read it from the lower tier');
    assert.equal(loads, 1);
    assert.deepEqual(await b.data.get('price:1', load, { ttl: 60_000 }), { n: 1 });
    assert.equal(b.data.stats().entries, 1, 'promoted into b\'s memory tier (the memory store it was given)');
    b.data.delete('price:1');
    assert.equal(shared.map.has('v:price:1'), false);
    const c = createCache({ data: { stores: [shared] } });
    tracked.caches.push(c);
    assert.deepEqual(await c.data.get('price:1', load, { ttl: 60_000 }), { n: 2 }, 'deleted everywhere: loaded again');
  });

  test('refused tier lists name options.data.stores', () => {
    const other = new MapStore(1000);
    assert.throws(() => createCache({ data: { stores: [other, new MemoryStore({ maxSize: 1000 })] } }), { name: 'RangeError', message: /options\.data\.stores\[1\]/ });
    assert.throws(() => createCache({ data: { stores: [{}] as never } }), { name: 'TypeError', message: /options\.data\.stores\[0\] to be a store with get, set and delete/ });
  });
});

describe('stratacache/testing as published', () => {
  test('package.json exports ./testing to the built file, and a plain node:test file can run the suite from it', (t) => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { exports: Record<string, { types: string; default: string }> };
    assert.deepEqual(pkg.exports['./testing'], { types: './dist/testing.d.ts', default: './dist/testing.js' });
    const built = new URL('../../dist/testing.js', import.meta.url);
    if (!existsSync(built)) {
      missing('dist/testing.js not built');
      return t.skip('dist/testing.js not built: run `npm run build` (npm ci does it)');
    }
    // Plain JavaScript, resolved by Node through the package's own exports (self-reference).
    const fixture = new URL('../fixtures/user-store.test.mjs', import.meta.url);
    // Without the parent runner's NODE_TEST_CONTEXT, so the child prints its own TAP report.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const run = spawnSync(process.execPath, ['--test', fixture.pathname], { encoding: 'utf8', timeout: 120_000, env });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /# pass [1-9]\d*/);
    assert.match(run.stdout, /# fail 0/);
  });
});
