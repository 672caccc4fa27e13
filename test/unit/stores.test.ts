/**
 * Stores: the shared contract run against MemoryStore and DiskStore, then what only the disk tier
 * promises (restarts, damaged files, concurrent writes, the budget across restarts) and one
 * end-to-end check that a cache restarted on the same directory serves without rendering.
 */
import assert from 'node:assert/strict';
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createCache, DiskStore, diskStore, MemoryStore, type CacheStore } from '../../src/index.js';
import { makeEntry, storeContract } from '../../src/testing.js';
import { listen, request } from '../helpers/http.js';

const tempDirs = new Set<string>();
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stratacache-disk-'));
  tempDirs.add(dir);
  return dir;
}
async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}
after(async () => {
  for (const dir of [...tempDirs]) await removeDir(dir);
});

const exists = (path: string): Promise<boolean> => access(path).then(
  () => true,
  () => false,
);

/** Every file under `dir`, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await readdir(dir, { withFileTypes: true })) {
    if (sub.isDirectory()) for (const name of await readdir(join(dir, sub.name))) out.push(`${sub.name}/${name}`);
    else out.push(sub.name);
  }
  return out.sort();
}

storeContract('MemoryStore', ({ maxSize }) => new MemoryStore({ maxSize }));
storeContract('DiskStore', async ({ maxSize }) => new DiskStore({ dir: await tempDir(), maxSize }), {
  teardown: (store: CacheStore) => removeDir((store as DiskStore).dir),
});
// Every file opened by a lookup leaves its bodies in the file (streamed when sent).
storeContract('DiskStore (streamThreshold 0)', async ({ maxSize }) => new DiskStore({ dir: await tempDir(), maxSize, streamThreshold: 0 }), {
  teardown: (store: CacheStore) => removeDir((store as DiskStore).dir),
});

describe('DiskStore options', () => {
  test('bad options throw TypeError/RangeError naming the option and the value', () => {
    assert.throws(() => new DiskStore({ dir: '', maxSize: 1000 }), { name: 'TypeError', message: "expected options.dir to be a non-empty directory path, got ''" });
    assert.throws(() => new DiskStore({ dir: 42 as unknown as string, maxSize: 1000 }), { name: 'TypeError', message: /options\.dir .* got 42$/ });
    assert.throws(() => new DiskStore({ dir: '/tmp/x' } as unknown as { dir: string; maxSize: number }), { name: 'TypeError', message: /options\.maxSize .* got undefined$/ });
    assert.throws(() => new DiskStore({ dir: '/tmp/x', maxSize: 'big' as unknown as number }), { name: 'TypeError', message: "expected options.maxSize to be a positive integer, got 'big'" });
    assert.throws(() => new DiskStore({ dir: '/tmp/x', maxSize: 0 }), { name: 'RangeError', message: 'expected options.maxSize to be a positive integer, got 0' });
    assert.throws(() => new DiskStore({ dir: '/tmp/x', maxSize: 10.5 }), { name: 'RangeError', message: /options\.maxSize .* got 10\.5$/ });
    assert.throws(() => new DiskStore({ dir: '/tmp/x', maxSize: 100, maxEntrySize: -1 }), { name: 'RangeError', message: /options\.maxEntrySize .* got -1$/ });
    assert.throws(() => new DiskStore({ dir: '/tmp/x', maxSize: 100, maxEntrySize: 101 }), {
      name: 'RangeError',
      message: 'expected options.maxEntrySize to be at most options.maxSize (100), got 101',
    });
    assert.throws(() => new DiskStore(null as unknown as { dir: string; maxSize: number }), { name: 'TypeError', message: /got null$/ });
  });

  test('a directory that cannot be created turns the tier off: reported once, then misses and no-ops', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const store = new DiskStore({ dir: join(file, 'cache'), maxSize: 1000 });
    await assert.rejects(store.get('k'), { code: 'ENOTDIR' });
    assert.equal(await store.get('k'), undefined);
    await store.set('k', makeEntry());
    await store.delete('k');
    assert.equal(await store.get('k'), undefined);
    await store.close();
  });

  test('under createCache, a disk tier that cannot start never fails or holds up a response', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const cache = createCache({ stores: [diskStore({ dir: join(file, 'cache'), maxSize: 1 << 20 })] });
    const errors: Error[] = [];
    cache.on('error', (e) => errors.push(e));
    let renders = 0;
    const server = await listen(cache.wrap((_req, res) => {
      renders++;
      res.setHeader('cache-control', 'public, max-age=60');
      res.end('fine');
    }));
    try {
      for (let i = 0; i < 3; i++) {
        const r = await request(`${server.url}/page`);
        assert.equal(r.status, 200);
        assert.equal(r.body, 'fine');
      }
      assert.equal(renders, 1, 'the memory tier still works');
      assert.equal(errors.length, 1, 'reported once');
      assert.match(String((errors[0]!.cause as Error).message), /ENOTDIR/);
    } finally {
      await server.close();
      await cache.close();
    }
  });
});

describe('DiskStore on disk', () => {
  test('one file per key, fanned out by the sha256 of the key; no temp files left', async () => {
    const dir = await tempDir();
    const store = new DiskStore({ dir, maxSize: 1 << 20 });
    await store.set('example.test/a', makeEntry());
    const path = store.pathOf('example.test/a');
    const name = path.slice(dir.length + 1);
    assert.match(name, /^[0-9a-f]{2}\/[0-9a-f]{64}$/);
    assert.equal(name.slice(0, 2), name.slice(3, 5));
    assert.deepEqual(await filesUnder(dir), [name]);
    assert.deepEqual(store.size(), { entries: 1, bytes: (await stat(path)).size });
    await store.close();
  });

  test('a new store on the same directory finds the old entries (restart)', async () => {
    const dir = await tempDir();
    const first = new DiskStore({ dir, maxSize: 1 << 20 });
    await first.set('k1', makeEntry({ body: Buffer.from('one'), tags: ['t'] }));
    await first.set('k2', makeEntry({ body: Buffer.from([0, 1, 2, 255]) }));
    await first.close();
    const bytes = first.size().bytes;

    const second = new DiskStore({ dir, maxSize: 1 << 20 });
    assert.equal((await second.get('k1'))?.body.toString(), 'one');
    assert.deepEqual([...((await second.get('k2'))?.body ?? [])], [0, 1, 2, 255]);
    assert.deepEqual((await second.get('k1'))?.tags, ['t']);
    assert.deepEqual(second.size(), { entries: 2, bytes });
    await second.close();
  });

  test('recency survives a restart: a smaller budget evicts the least recently used file', async () => {
    const dir = await tempDir();
    const first = new DiskStore({ dir, maxSize: 1 << 20 });
    const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 15));
    for (const k of ['a', 'b', 'c']) {
      await first.set(k, makeEntry({ body: Buffer.alloc(1000, k) }));
      await pause();
    }
    assert.ok(await first.get('a')); // 'a' is now the most recently used; 'b' the least
    await first.close();
    const fileSize = first.size().bytes / 3;
    assert.ok(Number.isInteger(fileSize), 'same-sized files');

    const second = new DiskStore({ dir, maxSize: Math.floor(2.5 * fileSize) });
    assert.equal(await second.get('b'), undefined);
    assert.equal(await exists(second.pathOf('b')), false, 'evicted file is removed');
    assert.equal((await second.get('a'))?.body.toString(), 'a'.repeat(1000));
    assert.equal((await second.get('c'))?.body.toString(), 'c'.repeat(1000));
    assert.deepEqual(second.size(), { entries: 2, bytes: 2 * fileSize });
    await second.close();
  });

  test('a corrupt file is a miss and is removed', async () => {
    const dir = await tempDir();
    const store = new DiskStore({ dir, maxSize: 1 << 20 });
    await store.set('k', makeEntry({ body: Buffer.alloc(5000, 'x') }));
    await store.set('other', makeEntry({ body: Buffer.from('fine') }));
    const path = store.pathOf('k');
    const bytes = await readFile(path);
    const at = bytes.length - 100;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at); // one flipped byte in the body
    await writeFile(path, bytes);
    assert.equal(await store.get('k'), undefined);
    assert.equal(await exists(path), false);
    assert.deepEqual(store.size(), { entries: 1, bytes: (await stat(store.pathOf('other'))).size });
    assert.equal((await store.get('other'))?.body.toString(), 'fine', 'other entries are unaffected');

    // Garbage in the header, then a file that is empty.
    for (const junk of [Buffer.from('definitely not a cache file'), Buffer.alloc(0)]) {
      await store.set('k', makeEntry());
      await writeFile(path, junk);
      assert.equal(await store.get('k'), undefined);
      assert.equal(await exists(path), false);
    }
    await store.close();
  });

  test('removing a corrupt file never removes a good one written meanwhile', async () => {
    const dir = await tempDir();
    const store = new DiskStore({ dir, maxSize: 1 << 20 });
    await store.set('k', makeEntry({ etag: '"old"' }));
    await writeFile(store.pathOf('k'), 'damaged');
    // get reads the damaged file while set renames a good one over it; get's cleanup comes after.
    const [seen] = await Promise.all([store.get('k'), store.set('k', makeEntry({ etag: '"new"' }))]);
    assert.equal(seen, undefined);
    assert.equal((await store.get('k'))?.etag, '"new"');
    assert.equal(store.size().entries, 1);
    await store.close();
  });

  test('a truncated file is a miss and is removed', async () => {
    const dir = await tempDir();
    const store = new DiskStore({ dir, maxSize: 1 << 20 });
    await store.set('k', makeEntry({ body: Buffer.alloc(5000, 'x') }));
    const path = store.pathOf('k');
    await truncate(path, (await stat(path)).size - 1000);
    assert.equal(await store.get('k'), undefined);
    assert.equal(await exists(path), false);
    assert.deepEqual(store.size(), { entries: 0, bytes: 0 });

    // Truncated inside the header, found by the start-up scan of a new store.
    await store.set('k', makeEntry());
    await store.close();
    await truncate(path, 20);
    const again = new DiskStore({ dir, maxSize: 1 << 20 });
    assert.equal(await again.get('k'), undefined);
    assert.equal(await exists(path), false);
    await again.close();
  });

  test("a file holding another key's entry is never served for this key", async () => {
    const dir = await tempDir();
    const first = new DiskStore({ dir, maxSize: 1 << 20 });
    await first.set('example.test/secret', makeEntry({ body: Buffer.from('secret') }));
    await first.close();
    // Plant the valid file of one key where another key's file lives (a collision or a foreign file).
    const wrongPath = first.pathOf('example.test/public');
    await mkdir(dirname(wrongPath), { recursive: true });
    await writeFile(wrongPath, await readFile(first.pathOf('example.test/secret')));

    const store = new DiskStore({ dir, maxSize: 1 << 20 });
    assert.equal(await store.get('example.test/public'), undefined);
    assert.equal(await exists(wrongPath), false);
    assert.equal((await store.get('example.test/secret'))?.body.toString(), 'secret');
    await store.close();
  });

  test('concurrent sets of one key end with one whole entry (the last) and one file', async () => {
    const dir = await tempDir();
    const store = new DiskStore({ dir, maxSize: 1 << 22 });
    // The first write is the largest, so without ordering it would land last.
    const bodies = Array.from({ length: 20 }, (_, i) => Buffer.alloc(i === 0 ? 3_000_000 : 20_000 - i * 997, i + 1));
    await Promise.all(bodies.map((body, i) => store.set('k', makeEntry({ body, etag: `"${i}"` }))));
    const got = await store.get('k');
    assert.ok(got);
    assert.equal(got.etag, '"19"');
    assert.ok(got.body.equals(bodies[19]!));
    const files = await filesUnder(dir);
    assert.deepEqual(files, [store.pathOf('k').slice(dir.length + 1)], 'one file, no temp files left');
    assert.deepEqual(store.size(), { entries: 1, bytes: (await stat(store.pathOf('k'))).size });

    // And a new store reading that directory agrees.
    await store.close();
    const again = new DiskStore({ dir, maxSize: 1 << 22 });
    assert.equal((await again.get('k'))?.etag, '"19"');
    await again.close();
  });

  test('close() waits for pending writes', async () => {
    const dir = await tempDir();
    const store = new DiskStore({ dir, maxSize: 1 << 22 });
    const writes = Array.from({ length: 10 }, (_, i) => store.set(`k${i}`, makeEntry({ body: Buffer.alloc(50_000, i) })));
    await store.close();
    for (let i = 0; i < 10; i++) assert.equal(await exists(store.pathOf(`k${i}`)), true, `k${i} is on disk after close`);
    await Promise.all(writes);
  });

  test('an entry larger than maxEntrySize is not written and the older one under its key is removed', async () => {
    const dir = await tempDir();
    const store = new DiskStore({ dir, maxSize: 100_000, maxEntrySize: 10_000 });
    await store.set('k', makeEntry({ body: Buffer.alloc(1000) }));
    assert.ok(await store.get('k'));
    await store.set('k', makeEntry({ body: Buffer.alloc(20_000) }));
    assert.equal(await store.get('k'), undefined);
    assert.equal(await exists(store.pathOf('k')), false);
    assert.deepEqual(store.size(), { entries: 0, bytes: 0 });
    await store.close();
  });

  test('the scan removes leftover temp files and leaves foreign files alone', async () => {
    const dir = await tempDir();
    const first = new DiskStore({ dir, maxSize: 1 << 20 });
    await first.set('k', makeEntry());
    await first.close();
    const leftover = `${first.pathOf('k')}.999.1.tmp`;
    await writeFile(leftover, 'half a write');
    const old = new Date(Date.now() - 120_000);
    await utimes(leftover, old, old);
    // A young temp file may be another process's write in progress (a shared directory): kept.
    const inProgress = `${first.pathOf('k')}.998.1.tmp`;
    await writeFile(inProgress, 'being written');
    await writeFile(join(dir, 'README'), 'mine');
    await mkdir(join(dir, 'zz'));
    await writeFile(join(dir, 'zz', 'notes.txt'), 'also mine');

    const store = new DiskStore({ dir, maxSize: 1 << 20 });
    await store.ready();
    assert.equal(await exists(leftover), false);
    assert.equal(await exists(inProgress), true);
    assert.equal(await readFile(join(dir, 'README'), 'utf8'), 'mine');
    assert.equal(await readFile(join(dir, 'zz', 'notes.txt'), 'utf8'), 'also mine');
    assert.deepEqual(store.size(), { entries: 1, bytes: (await stat(store.pathOf('k'))).size });
    assert.ok(await store.get('k'));
    await store.close();
  });
});

describe('DiskStore under createCache', () => {
  test('a cache restarted on the same directory serves the page without rendering it again', async () => {
    const dir = await tempDir();
    let renders = 0;
    const app = (_req: IncomingMessage, res: ServerResponse): void => {
      renders++;
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.setHeader('cache-control', 'max-age=600');
      res.end(`<h1>page render ${renders}</h1>`);
    };
    // One server for the whole test (the key includes the host and port); the cache behind it restarts.
    let current: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;
    const server = await listen((req, res) => current(req, res));
    try {
      const firstCache = createCache({ stores: [new DiskStore({ dir, maxSize: 1 << 20 })] });
      current = firstCache.wrap(app);
      const miss = await request(`${server.url}/page`);
      assert.equal(miss.status, 200);
      assert.equal(miss.headers['x-cache'], 'MISS');
      assert.equal(miss.body, '<h1>page render 1</h1>');
      await firstCache.close(); // waits for the disk write

      const disk = new DiskStore({ dir, maxSize: 1 << 20 });
      const secondCache = createCache({ stores: [disk] });
      current = secondCache.wrap(app);
      const hit = await request(`${server.url}/page`);
      assert.equal(hit.status, 200);
      assert.equal(hit.headers['x-cache'], 'HIT');
      assert.equal(hit.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(hit.body, '<h1>page render 1</h1>');
      assert.equal(renders, 1);
      assert.equal(secondCache.stats().entries, 1, 'the disk hit was promoted to memory');
      const again = await request(`${server.url}/page`);
      assert.equal(again.headers['x-cache'], 'HIT');
      assert.equal(renders, 1);
      await secondCache.close();
    } finally {
      await server.close();
    }
  });

  test('a varied page is found again after a restart: each variant served, none rendered twice', async () => {
    const dir = await tempDir();
    const renders = new Map<string, number>();
    const app = (req: IncomingMessage, res: ServerResponse): void => {
      const lang = String(req.headers['accept-language'] ?? 'none');
      renders.set(lang, (renders.get(lang) ?? 0) + 1);
      res.setHeader('cache-control', 'max-age=600');
      res.setHeader('vary', 'Accept-Language');
      res.end(`page in ${lang}`);
    };
    let current: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;
    const server = await listen((req, res) => current(req, res));
    try {
      const first = createCache({ stores: [new DiskStore({ dir, maxSize: 1 << 20 })] });
      current = first.wrap(app);
      for (const lang of ['en', 'de']) {
        const r = await request(`${server.url}/v`, { headers: { 'accept-language': lang } });
        assert.equal(r.headers['x-cache'], 'MISS');
      }
      await first.close();

      const second = createCache({ stores: [new DiskStore({ dir, maxSize: 1 << 20 })] });
      current = second.wrap(app);
      for (const lang of ['de', 'en']) {
        const r = await request(`${server.url}/v`, { headers: { 'accept-language': lang } });
        assert.equal(r.headers['x-cache'], 'HIT', lang);
        assert.equal(r.body, `page in ${lang}`);
      }
      assert.deepEqual(Object.fromEntries(renders), { en: 1, de: 1 });
      await second.close();
    } finally {
      await server.close();
    }
  });
});
