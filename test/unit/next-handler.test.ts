/**
 * stratacache/next without Next running: the value codec, route cache keys, how Next's
 * revalidations become invalidations (hard or soft, batched), both handlers over one cache, and
 * (at compile time) that the handlers fit the interfaces the installed `next` declares.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CacheHandler as NextUseCacheInterface } from 'next/dist/server/lib/cache-handlers/types.js';
import type { CacheHandler as NextIncrementalInterface } from 'next/dist/server/lib/incremental-cache/index.js';
import { createCache, type InvalidationRecord } from '../../src/index.js';
import { createNextCacheHandler, createNextUseCacheHandler, type NextCacheHandlerClass, type NextIncrementalValue } from '../../src/next/index.js';
import { decodeValue, encodeValue } from '../../src/next/codec.js';
import { pathOfKey } from '../../src/next/incremental.js';

// Compile-time: the installed Next (package.json: next ^16) can call what the handlers offer
// with its own arguments, and the 'use cache' handler is its CacheHandler as declared.
type Fits<A, B> = [A] extends [B] ? true : false;
type Incremental = InstanceType<NextCacheHandlerClass>;
const _fits: [
  Fits<Parameters<NextIncrementalInterface['get']>, Parameters<Incremental['get']>>,
  Fits<Parameters<NextIncrementalInterface['set']>, Parameters<Incremental['set']>>,
  Fits<Parameters<NextIncrementalInterface['revalidateTag']>, Parameters<Incremental['revalidateTag']>>,
  Fits<ConstructorParameters<typeof NextIncrementalInterface>, ConstructorParameters<NextCacheHandlerClass>>,
] = [true, true, true, true];
const _useCache: NextUseCacheInterface = createNextUseCacheHandler(createCache());
void _fits;
void _useCache;

const page = (tags: string): NextIncrementalValue & { html: string; rscData: Buffer; status: number; segmentData: Map<string, Buffer> } => ({
  kind: 'APP_PAGE',
  html: '<h1>posts</h1>',
  rscData: Buffer.from([0, 1, 254, 255]),
  headers: { 'x-next-cache-tags': tags },
  status: 200,
  segmentData: new Map([['/_tree', Buffer.from('tree')]]),
});
const KEY = '/route-cache/APP_PAGE/0123abcd/$/posts';
const CONTROL = { revalidate: 60, expire: 3600 };

function streamOf(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode(text)), c.close()) });
}
async function textOf(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

describe('codec', () => {
  test("Buffers and Maps anywhere in Next's values come back as they were; objects shaped like the markers too", () => {
    const value = { ...page('a'), pageData: { $b: 'not a buffer', list: [{ $m: 1 }, { $o: [] }], n: null, s: 'x' } };
    const back = decodeValue(encodeValue(value)) as typeof value;
    assert.deepEqual(back, value);
    assert.ok(Buffer.isBuffer(back.rscData));
    assert.ok(back.segmentData instanceof Map);
    assert.equal(decodeValue(encodeValue(null)), null);
  });
});

describe('route cache keys', () => {
  test("a page's key names its URL path; other keys none", () => {
    assert.equal(pathOfKey('/route-cache/APP_PAGE/ab12/$/blog/post-1'), '/blog/post-1');
    assert.equal(pathOfKey('/route-cache/APP_PAGE/ab12/$/index'), '/');
    assert.equal(pathOfKey('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'), undefined);
  });
});

describe('cacheHandler (ISR pages, route handlers, fetch)', () => {
  test('a page comes back whole, with its tags in the tag header and its age; hard and soft invalidations of a tag or its path reach it', async () => {
    const cache = createCache();
    const Handler = createNextCacheHandler(cache);
    const handler = new Handler({});
    const value = page('posts,_N_T_/posts');
    await handler.set(KEY, value, { cacheControl: CONTROL });
    // The value Next is about to send is tagged for a cache.wrap in front.
    assert.equal(value.headers?.['surrogate-key'], 'posts _N_T_/posts');
    const got = await new Handler().get(KEY, { kind: 'APP_PAGE' });
    assert.ok(got !== null && got.value !== null);
    assert.deepEqual(got.cacheControl, CONTROL);
    assert.deepEqual((got.value as unknown as { rscData: Buffer }).rscData, Buffer.from([0, 1, 254, 255]));
    assert.equal(got.value.headers?.['surrogate-key'], 'posts _N_T_/posts');
    assert.equal(got.value.headers?.age, '0');
    assert.ok(Math.abs(got.lastModified - Date.now()) < 1000);

    // Soft (stratacache flush --tag, cache.invalidateTags): just past its revalidate time.
    await cache.invalidateTags(['posts']);
    const stale = await handler.get(KEY, { kind: 'APP_PAGE' });
    assert.ok(stale !== null && stale.lastModified <= Date.now() - 60_000);
    assert.equal(stale.value?.headers?.age, '60');
    // Hard (revalidateTag without a profile): a miss.
    await handler.revalidateTag('posts');
    assert.equal(await handler.get(KEY, { kind: 'APP_PAGE' }), null);

    // Stored again after it: fresh; then the page's own path invalidated (cache.invalidate).
    await handler.set(KEY, page('posts'), { cacheControl: CONTROL });
    assert.ok((await handler.get(KEY, { kind: 'APP_PAGE' }))!.lastModified > Date.now() - 1000);
    await cache.invalidate('/posts', { hard: true });
    assert.equal(await handler.get(KEY, { kind: 'APP_PAGE' }), null);
    await cache.close();
  });

  test("a fetch entry is reached through its own tags and the page's soft tags", async () => {
    const cache = createCache();
    const handler = new (createNextCacheHandler(cache))();
    const data = { kind: 'FETCH', data: { headers: {}, body: '{}', url: 'https://api.test/x' }, revalidate: 30 } as NextIncrementalValue;
    await handler.set('f1', data, { fetchCache: true, tags: ['api'] });
    const ctx = { kind: 'FETCH', revalidate: 30, tags: ['api'], softTags: ['_N_T_/blog'] };
    assert.deepEqual((await handler.get('f1', ctx))?.value, data);
    await handler.revalidateTag(['_N_T_/blog'], { expire: 600 });
    assert.ok((await handler.get('f1', ctx))!.lastModified <= Date.now() - 30_000, 'stale through the soft tag');
    await handler.revalidateTag(['api'], { expire: 0 });
    assert.equal(await handler.get('f1', ctx), null);
    await cache.close();
  });
});

describe("cacheHandlers ('use cache')", () => {
  test('an entry comes back as a new stream each time; soft tags of the page reach it; a get waits for the set in progress', async () => {
    const cache = createCache();
    const handler = createNextUseCacheHandler(cache);
    let resolve!: (e: Parameters<typeof handler.set>[1] extends Promise<infer E> ? E : never) => void;
    const pending = new Promise<Parameters<typeof handler.set>[1] extends Promise<infer E> ? E : never>((r) => (resolve = r));
    const setting = handler.set('k', pending);
    const reading = handler.get('k', []);
    resolve({ value: streamOf('result'), tags: ['posts'], stale: 60, timestamp: Date.now(), expire: 3600, revalidate: 900 });
    await setting;
    const first = await reading;
    assert.ok(first !== undefined);
    assert.equal(await textOf(first.value), 'result');
    assert.equal(first.revalidate, 900);
    assert.equal(await textOf((await handler.get('k', []))!.value), 'result');
    assert.equal(await handler.getExpiration(['_N_T_/posts']), Infinity);
    await handler.updateTags(['_N_T_/posts'], { expire: 600 });
    assert.equal((await handler.get('k', ['_N_T_/posts']))?.revalidate, -1, 'soft: served once more while Next renders it');
    assert.equal((await handler.get('k', []))?.revalidate, 900, 'a page without that tag');
    await handler.updateTags(['posts']);
    assert.equal(await handler.get('k', []), undefined);
    await cache.close();
  });
});

describe('revalidations', () => {
  test("Next's calls to both handlers in one turn become one invalidation per kind: hard without a profile or with expire 0, soft with one", async () => {
    const cache = createCache();
    const records: InvalidationRecord[] = [];
    cache.on('invalidate', (r) => records.push(r));
    const handler = new (createNextCacheHandler(cache))();
    const useCache = createNextUseCacheHandler(cache);
    await Promise.all([handler.revalidateTag(['a', 'b'], { expire: 300 }), useCache.updateTags(['a', 'b'], { expire: 300 })]);
    await Promise.all([handler.revalidateTag('c'), useCache.updateTags(['c']), useCache.updateTags(['d e'], { expire: 0 })]);
    assert.deepEqual(
      records.map((r) => [r.tags, r.hard]),
      [
        [['a', 'b'], false],
        [['c', 'd%20e'], true],
      ],
    );
    await cache.close();
  });
});
