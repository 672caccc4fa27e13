/**
 * `stratacache/testing`: the contract every {@link CacheStore} passes, as a `node:test` suite
 * (like undici's `cacheStoreTests(Store)`). Every built-in store runs it; run it on a store of
 * your own from any test file executed by `node --test`:
 *
 * ```ts
 * import { storeContract } from 'stratacache/testing';
 * storeContract('MyStore', ({ maxSize }) => new MyStore({ maxSize }));
 * ```
 *
 * The suite registers its tests with `describe`/`test` from `node:test` when called.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { entrySize } from './compact.js';
import type { Entry } from './entry.js';
import type { Bytes } from './options/units.js';
import type { CacheStore } from './stores/store.js';

/** What the suite asks `make` to configure. */
export interface StoreBudget {
  /** The byte budget the new store must be created with. */
  maxSize: Bytes;
}

/** Options of {@link storeContract}. */
export interface StoreContractOptions {
  /**
   * Byte budget handed to `make` (and checked by the budget test).
   * @default 262144
   */
  maxSize?: Bytes;
  /** Runs after each test, after `store.close()`: remove temp directories and the like. */
  teardown?: (store: CacheStore) => void | Promise<void>;
  /**
   * Who keeps the store within its budget: `'store'` (it evicts the least recently used entries
   * itself; the budget test runs) or `'server'` (a shared server bounds it, as Redis does with
   * `maxmemory` and the entries' TTLs; the budget test is reported as skipped, saying so).
   * @default 'store'
   */
  budget?: 'store' | 'server';
  /**
   * When set, every test is reported as skipped with this reason (the store's server is not
   * available on this machine, say), never as passed.
   * @default undefined (run)
   */
  skip?: string;
}

/** A complete entry with every field set; `over` replaces fields. Times are absolute epoch ms. */
export function makeEntry(over: Partial<Entry> = {}): Entry {
  const now = Date.now();
  return {
    status: 200,
    headers: [['content-type', 'text/plain; charset=utf-8']],
    body: Buffer.from('hello'),
    storedAt: now,
    initialAge: 0,
    staleAt: now + 60_000,
    swrUntil: now + 120_000,
    sieUntil: now + 180_000,
    expiresAt: now + 180_000,
    etag: undefined,
    lastModified: undefined,
    shared: false,
    url: '/',
    host: 'example.test',
    vary: [],
    tags: [],
    ...over,
  };
}

/** The encoded fields of an entry, with `undefined` validators written out, for deepEqual. */
function fields(e: Entry): Record<string, unknown> {
  return {
    status: e.status,
    headers: e.headers,
    body: Buffer.from(e.body).toString('hex'),
    storedAt: e.storedAt,
    initialAge: e.initialAge,
    staleAt: e.staleAt,
    swrUntil: e.swrUntil,
    sieUntil: e.sieUntil,
    expiresAt: e.expiresAt,
    etag: e.etag,
    lastModified: e.lastModified,
    shared: e.shared,
    url: e.url,
    host: e.host,
    vary: e.vary,
    tags: e.tags,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Registers the store contract under `describe('store contract: <name>')`. `make` returns a fresh,
 * empty store configured with the given byte budget; each test closes its store afterwards.
 */
export function storeContract(
  name: string,
  make: (budget: StoreBudget) => Promise<CacheStore> | CacheStore,
  opts: StoreContractOptions = {},
): void {
  const maxSize = opts.maxSize ?? 262_144;

  /** Runs `body` with a fresh store and always closes and tears it down. */
  const withStore = (body: (store: CacheStore) => Promise<void>) => async (t: TestContext) => {
    if (opts.skip !== undefined) return t.skip(opts.skip);
    const store = await make({ maxSize });
    try {
      await body(store);
    } finally {
      await store.close?.();
      await opts.teardown?.(store);
    }
  };

  describe(`store contract: ${name}`, () => {
    test('get of a missing key is undefined', withStore(async (store) => {
      assert.equal(await store.get('/missing'), undefined);
      assert.equal(await store.get(''), undefined);
    }));

    test('set then get preserves status, repeated headers in order, binary body, times, vary and tags', withStore(async (store) => {
      const binary = Buffer.alloc(1024 + 256);
      for (let i = 0; i < binary.length; i++) binary[i] = (i * 7) % 256;
      binary.set([0xff, 0xfe, 0xc3, 0x28, 0x00, 0xed, 0xa0, 0x80], 0); // invalid UTF-8 on purpose
      const now = Date.now();
      const entry = makeEntry({
        status: 203,
        headers: [
          ['content-type', 'application/octet-stream'],
          ['link', '</a.css>; rel=preload'],
          ['x-note', 'first'],
          ['link', '</b.js>; rel=preload'],
          ['x-note', 'second, with comma'],
          ['x-unicode', 'caf\u00e9'],
        ],
        body: binary,
        storedAt: now - 1500,
        initialAge: 7,
        staleAt: now + 10_000,
        swrUntil: now + 20_000,
        sieUntil: now + 30_000,
        expiresAt: now + 40_000,
        etag: '"v1-abc"',
        lastModified: 'Tue, 15 Nov 1994 12:45:26 GMT',
        shared: true,
        url: '/img/a.bin?x=1&y=%20',
        host: 'images.example.test:8080',
        vary: ['accept-encoding', 'accept-language'],
        tags: ['product-42', 'catalog'],
      });
      await store.set('k:binary', entry);
      const got = await store.get('k:binary');
      assert.ok(got, 'stored entry is found');
      assert.deepEqual(fields(got), fields(entry));
      assert.ok(Buffer.from(got.body).equals(binary), 'body bytes are identical');

      const empty = makeEntry({ status: 204, headers: [], body: Buffer.alloc(0), etag: undefined, lastModified: undefined });
      await store.set('k:empty', empty);
      const gotEmpty = await store.get('k:empty');
      assert.ok(gotEmpty);
      assert.deepEqual(fields(gotEmpty), fields(empty));
      assert.equal(gotEmpty.etag, undefined);
      assert.equal(gotEmpty.body.length, 0);
    }));

    test('open (when the store has it) finds the same entry; bodies left in a source read back the same bytes', withStore(async (store) => {
      if (store.open === undefined) return;
      const body = Buffer.alloc(20_000);
      for (let i = 0; i < body.length; i++) body[i] = (i * 13) % 251;
      const entry = makeEntry({ body, encoded: { gzip: Buffer.from('gzip bytes'), br: Buffer.from('br') }, etag: '"o"' });
      await store.set('k:open', entry);
      const found = await store.open('k:open');
      assert.ok(found, 'the entry is found');
      assert.deepEqual(fields({ ...found, body: Buffer.alloc(0), source: undefined }), fields({ ...entry, body: Buffer.alloc(0) }));
      if (found.source === undefined) {
        assert.ok(found.body.equals(body));
        return;
      }
      assert.equal(found.body.length, 0, 'a source holds the body: body is empty');
      assert.equal(found.source.length, body.length);
      assert.deepEqual([...found.source.codings].sort(), ['br', 'gzip']);
      const chunks: Buffer[] = [];
      for await (const chunk of found.source.stream()) chunks.push(chunk as Buffer);
      assert.ok(Buffer.concat(chunks).equals(body), 'the streamed body is the stored one');
      const again = await store.open('k:open');
      const part: Buffer[] = [];
      for await (const chunk of again!.source!.as('gzip').stream(1, 4)) part.push(chunk as Buffer);
      assert.equal(Buffer.concat(part).toString(), 'zip ');
      const loaded = await (await store.open('k:open'))!.source!.load();
      assert.ok(loaded.body.equals(body));
      assert.equal(loaded.encoded?.gzip?.toString(), 'gzip bytes');
      assert.equal(loaded.source, undefined);
      (await store.open('k:open'))!.source!.release();
    }));

    test('overwrite replaces the entry; a reader meanwhile sees the old or the new one, whole', withStore(async (store) => {
      const a = makeEntry({ body: Buffer.alloc(20_000, 'a'), etag: '"a"' });
      const b = makeEntry({ body: Buffer.alloc(30_000, 'b'), etag: '"b"', status: 404 });
      await store.set('k', a);
      const writing = store.set('k', b);
      const seen = await Promise.all(Array.from({ length: 8 }, () => store.get('k')));
      await writing;
      for (const e of seen) {
        assert.ok(e, 'never a miss while an entry is being replaced');
        const which = e.etag === '"a"' ? a : b;
        assert.deepEqual(fields(e), fields(which));
      }
      const after = await store.get('k');
      assert.ok(after);
      assert.deepEqual(fields(after), fields(b));
    }));

    test('delete removes an entry; deleting a missing key is not an error', withStore(async (store) => {
      await store.set('k', makeEntry());
      await store.delete('k');
      assert.equal(await store.get('k'), undefined);
      await store.delete('k');
      await store.delete('never-stored');
      await store.set('k', makeEntry({ etag: '"again"' }));
      assert.equal((await store.get('k'))?.etag, '"again"');
    }));

    test('operations on one key take effect in call order, even when not awaited', withStore(async (store) => {
      const big = makeEntry({ body: Buffer.alloc(maxSize / 2, 'b'), etag: '"big"' });
      const small = makeEntry({ body: Buffer.from('s'), etag: '"small"' });
      await Promise.all([store.set('k', big), store.set('k', small)]);
      assert.equal((await store.get('k'))?.etag, '"small"', 'the later set wins');
      await Promise.all([store.set('k', big), store.delete('k')]);
      assert.equal(await store.get('k'), undefined, 'a delete after a set wins');
      await Promise.all([store.delete('k'), store.set('k', small)]);
      assert.equal((await store.get('k'))?.etag, '"small"', 'a set after a delete wins');
    }));

    test('many keys, including unusual ones, each keep their own entry', withStore(async (store) => {
      const keys = [
        'example.test/',
        'EXAMPLE.test/',
        'example.test/a?b=1&c=2',
        'example.test/a?c=2&b=1',
        'example.test/../../etc/passwd',
        'example.test/caf\u00e9/\u{1F600}',
        'example.test/x\nvary:accept-encoding=gzip',
        `example.test/${'long'.repeat(500)}`,
      ];
      for (let i = 0; i < 100; i++) keys.push(`example.test/page/${i}`);
      for (const [i, key] of keys.entries()) await store.set(key, makeEntry({ body: Buffer.from(`body ${i}`), url: `/${i}` }));
      for (const [i, key] of keys.entries()) {
        const e = await store.get(key);
        assert.ok(e, `key ${i} is found`);
        assert.equal(e.body.toString(), `body ${i}`);
        assert.equal(e.url, `/${i}`);
      }
      const s = store.size?.();
      if (s) assert.equal(s.entries, keys.length);
    }));

    test('entries are independent: changing one key leaves the others alone', withStore(async (store) => {
      const shared = Buffer.from('same bytes under two keys');
      await store.set('a', makeEntry({ body: shared, etag: '"a"' }));
      await store.set('b', makeEntry({ body: shared, etag: '"b"' }));
      await store.set('c', makeEntry({ etag: '"c"' }));
      await store.delete('a');
      await store.set('c', makeEntry({ etag: '"c2"' }));
      assert.equal(await store.get('a'), undefined);
      const b = await store.get('b');
      assert.equal(b?.etag, '"b"');
      assert.equal(b?.body.toString(), 'same bytes under two keys');
      assert.equal((await store.get('c'))?.etag, '"c2"');
    }));

    test('an entry past its expiresAt is not returned', withStore(async (store) => {
      const now = Date.now();
      await store.set('short', makeEntry({ staleAt: now + 10, swrUntil: now + 10, sieUntil: now + 10, expiresAt: now + 30 }));
      await store.set('long', makeEntry());
      await sleep(80);
      assert.equal(await store.get('short'), undefined);
      assert.ok(await store.get('long'), 'an unexpired entry is still there');
    }));

    const budgetTest = opts.budget === 'server' ? (t: TestContext) => t.skip('bounded by its server (maxmemory, TTLs), not by the store') : undefined;
    test('the byte budget is respected: oldest entries go, newest stay', budgetTest ?? withStore(async (store) => {
      const bodySize = Math.floor(maxSize / 8);
      const keys: string[] = [];
      let written = 0;
      for (let i = 0; written < 3 * maxSize; i++) {
        const entry = makeEntry({ body: Buffer.alloc(bodySize, i % 256), url: `/big/${i}` });
        const key = `example.test/big/${i}`;
        await store.set(key, entry);
        keys.push(key);
        written += entrySize(entry);
        const s = store.size?.();
        if (s) assert.ok(s.bytes <= maxSize, `after ${i + 1} writes: ${s.bytes} bytes held, budget ${maxSize}`);
      }
      // Everything past the budget's worth of newest entries is gone, oldest first.
      const third = Math.floor(keys.length / 3);
      for (const key of keys.slice(0, third)) assert.equal(await store.get(key), undefined, `${key} was evicted`);
      for (const [i, key] of keys.slice(-2).entries()) {
        const e = await store.get(key);
        assert.ok(e, `${key} (one of the newest) is present`);
        assert.equal(e.body.length, bodySize);
        assert.equal(e.body[0], (keys.length - 2 + i) % 256);
      }
    }));
  });
}
