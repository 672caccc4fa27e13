/**
 * The data cache without sockets: value serialization (and its refusals), coalescing of get,
 * ESI template parsing, the entry fields it adds, the dependency index and its options.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DependencyIndex, digest } from '../../src/data/scope.js';
import { parseTemplate, templateOf, type Include } from '../../src/data/esi.js';
import { deserializeValue, serializeValue } from '../../src/data/serialize.js';
import { decodeEntry, encodeEntry, type Entry } from '../../src/entry.js';
import { createCache, DataSerializeError, DEFAULTS, type CacheError } from '../../src/index.js';
import { assertDocumentedDefaults } from '../helpers/defaults.js';
import { resolveOptions } from '../../src/options/resolve.js';
import { type CacheOptions } from '../../src/options/types.js';

describe('serializeValue', () => {
  test('JSON values, strings and Buffers round-trip with their media types', () => {
    const cases: Array<[unknown, string]> = [
      [{ a: 1, b: [true, null, 'x'], c: { d: -2.5 } }, 'application/json'],
      [[1, 2, 3], 'application/json'],
      [0, 'application/json'],
      [null, 'application/json'],
      ['héllo', 'text/plain; charset=utf-8'],
      [Buffer.from([0, 255, 1]), 'application/octet-stream'],
    ];
    for (const [value, type] of cases) {
      const { body, contentType } = serializeValue(value, 'k');
      assert.equal(contentType, type);
      assert.deepEqual(deserializeValue(body, contentType, 'k'), value);
    }
  });

  test('refuses what JSON would change or drop, naming the path', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const cases: Array<[unknown, RegExp]> = [
      [() => 1, /\$ is a function/],
      [{ n: 10n }, /\$\.n is a BigInt/],
      [{ list: [1, Symbol('s')] }, /\$\.list\[1\] is a symbol/],
      [cyclic, /\$\.self is a cycle/],
      [{ when: new Date(0) }, /\$\.when is a Date instance/],
      [new Map(), /\$ is a Map instance/],
      [{ x: Number.NaN }, /\$\.x is NaN/],
      [undefined, /\$ is undefined/],
      [[undefined], /\$\[0\] is undefined/],
      [{ [Symbol('k')]: 1 }, /symbol keys/],
    ];
    for (const [value, message] of cases) {
      assert.throws(
        () => serializeValue(value, 'key'),
        (e: unknown) => e instanceof DataSerializeError && e.code === 'ERR_DATA_SERIALIZE' && message.test(e.message),
        String(message),
      );
    }
  });

  test('a shared (not cyclic) object is fine; an undefined property is dropped as JSON does', () => {
    const shared = { x: 1 };
    assert.deepEqual(deserializeValue(serializeValue({ a: shared, b: shared }, 'k').body, 'application/json', 'k'), { a: { x: 1 }, b: { x: 1 } });
    assert.deepEqual(deserializeValue(serializeValue({ a: 1, b: undefined }, 'k').body, 'application/json', 'k'), { a: 1 });
  });
});

describe('cache.data.get', () => {
  test('an unserializable value rejects with ERR_DATA_SERIALIZE and stores nothing', async () => {
    const cache = createCache();
    let loads = 0;
    const loader = (): unknown => (loads++, { id: 1n });
    await assert.rejects(cache.data.get('big', loader as () => never), (e: unknown) => e instanceof DataSerializeError && /"big"/.test(e.message));
    await assert.rejects(cache.data.get('big', loader as () => never), DataSerializeError);
    assert.equal(loads, 2, 'not cached as a miss or as a value');
    assert.equal(cache.data.stats().entries, 0);
    await cache.close();
  });

  test('concurrent calls for one key run the loader once; each caller gets its own copy', async () => {
    const cache = createCache();
    let loads = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const loader = async (): Promise<{ items: number[] }> => {
      loads++;
      await gate;
      return { items: [1, 2] };
    };
    const calls = Array.from({ length: 20 }, () => cache.data.get('list', loader));
    release();
    const values = await Promise.all(calls);
    assert.equal(loads, 1);
    for (const v of values) assert.deepEqual(v, { items: [1, 2] });
    values[0]!.items.push(3);
    assert.deepEqual(values[1], { items: [1, 2] }, 'mutating one answer does not change another');
    assert.deepEqual(await cache.data.get('list', loader), { items: [1, 2] });
    const stats = cache.data.stats();
    assert.equal(stats.gets, 21);
    assert.equal(stats.loads, 1);
    assert.equal(stats.loadsDeduped, 19);
    assert.equal(stats.misses, 20);
    assert.equal(stats.hits, 1);
    assert.equal(stats.entries, 1);
    await cache.close();
  });

  test('a rejecting loader rejects every waiter with its own error, and is not cached', async () => {
    const cache = createCache();
    const boom = new Error('boom');
    let loads = 0;
    const loader = async (): Promise<string> => {
      loads++;
      await Promise.resolve();
      throw boom;
    };
    const reported: unknown[] = [];
    cache.on('error', (e) => reported.push(e));
    const results = await Promise.allSettled([cache.data.get('e', loader), cache.data.get('e', loader)]);
    for (const r of results) assert.ok(r.status === 'rejected' && r.reason === boom);
    assert.equal(loads, 1);
    await assert.rejects(cache.data.get('e', loader), (e) => e === boom);
    assert.equal(loads, 2);
    assert.equal(cache.data.stats().errors, 2);
    assert.deepEqual(
      reported.map((e) => [(e as CacheError).code, (e as CacheError).cause]),
      [
        ['ERR_DATA_LOAD', boom],
        ['ERR_DATA_LOAD', boom],
      ],
    );
    await cache.close();
  });

  test('a loader that asks for its own key (through another) fails with ERR_DATA_LOOP instead of hanging', async () => {
    const cache = createCache();
    const a = (): Promise<unknown> => cache.data.get('a', () => cache.data.get('b', a));
    await assert.rejects(a(), (e: unknown) => (e as CacheError).code === 'ERR_DATA_LOOP' && /get\(a\) -> get\(b\) -> get\(a\)/.test((e as Error).message));
    // Not a loop: the same key read twice in sequence, or by two loaders side by side.
    assert.equal(await cache.data.get('c', async () => (await cache.data.get('d', () => 1)) + (await cache.data.get('d', () => 2))), 2);
    await cache.close();
  });

  test('delete removes a value; bad arguments throw TypeError at once', async () => {
    const cache = createCache();
    let loads = 0;
    await cache.data.get('d', () => ++loads);
    assert.equal(cache.data.delete('d'), true);
    assert.equal(cache.data.delete('d'), false);
    assert.equal(await cache.data.get('d', () => ++loads), 2);
    await assert.rejects(cache.data.get('', () => 1), TypeError);
    await assert.rejects(cache.data.get('x', () => 1, { ttl: -1 }), /options\.ttl/);
    await cache.close();
  });
});

describe('parseTemplate', () => {
  const render = (segments: ReturnType<typeof parseTemplate>): string =>
    segments.map((s) => (Buffer.isBuffer(s) ? s.toString('utf8') : `[${(s as Include).src}${(s as Include).continueOnError ? ' continue' : ''}]`)).join('');

  test('splits literal bytes and same-origin includes, keeping any encoding intact', () => {
    const body = Buffer.from('<p>é</p><esi:include src="/a?x=1&amp;y=2"/>mid<esi:include onerror="continue" src=\'/b\'></esi:include>end', 'utf8');
    assert.equal(render(parseTemplate(body)), '<p>é</p>[/a?x=1&y=2]mid[/b continue]end');
  });

  test('leaves other includes as written (absolute, protocol-relative, relative without a slash)', () => {
    const body = Buffer.from('<esi:include src="https://cdn.example/x"/><esi:include src="//evil/x"/><esi:include src="x"/>');
    assert.equal(render(parseTemplate(body)), body.toString());
    assert.equal(templateOf(body), undefined, 'no include to fill: not a template, served on the plain hit path');
    assert.equal(templateOf(Buffer.from('<p>no includes</p>')), undefined);
    assert.equal(templateOf(Buffer.from('<esi:include src="/h"/>'))?.length, 1);
  });
});

describe('entry fields of the data layer', () => {
  const base: Entry = {
    status: 200,
    headers: [['content-type', 'text/html']],
    body: Buffer.from('<esi:include src="/h"/>'),
    storedAt: 1,
    initialAge: 0,
    staleAt: 2,
    swrUntil: 2,
    sieUntil: 2,
    expiresAt: 2,
    etag: undefined,
    lastModified: undefined,
    shared: false,
    url: '/',
    host: '',
    vary: [],
    tags: [],
  };

  test('deps and esi round-trip; an entry without them encodes without them', () => {
    const decoded = decodeEntry(encodeEntry({ ...base, deps: ['v:product:42'], esi: true }));
    assert.deepEqual(decoded.deps, ['v:product:42']);
    assert.equal(decoded.esi, true);
    const plain = decodeEntry(encodeEntry(base));
    assert.equal('deps' in plain, false);
    assert.equal('esi' in plain, false);
    assert.equal(encodeEntry(base).includes('"deps"'), false);
  });

  test('malformed deps or esi are refused', () => {
    const bytes = encodeEntry({ ...base, deps: ['x'] });
    const tampered = Buffer.from(bytes.toString('latin1').replace('"deps":["x"]', '"deps":[17] '), 'latin1');
    assert.throws(() => decodeEntry(tampered), /bad deps/);
  });
});

describe('DependencyIndex', () => {
  test('onIdle runs when the last open scope closes, once, and not for a scope closed twice', () => {
    let idle = 0;
    const index = new DependencyIndex({ maxKeys: 10, maxDependents: 10, onIdle: () => idle++ });
    const a = index.open({ chain: ['/a'], host: '', runner: undefined });
    const b = index.open({ chain: ['/b'], host: '', runner: undefined });
    index.close(a);
    assert.equal(idle, 0, 'b is still open');
    index.close(a);
    assert.equal(idle, 0, 'closing a twice does not count');
    index.close(b);
    assert.equal(idle, 1);
    assert.equal(index.openScopes, 0);
  });

  test('a change to bytes returns the dependents once; the same bytes change nothing', () => {
    const index = new DependencyIndex({ maxKeys: 10, maxDependents: 10 });
    index.link('rpage', ['k'], () => digest(Buffer.from('v1')));
    assert.equal(index.changed('k', digest(Buffer.from('v1'))), false);
    assert.equal(index.changed('k', digest(Buffer.from('v2'))), true);
    assert.deepEqual(index.take('k'), ['rpage']);
    assert.deepEqual(index.take('k'), []);
  });

  test('bounded: past maxDependents the oldest is forgotten; past maxKeys the least recent key', () => {
    const index = new DependencyIndex({ maxKeys: 2, maxDependents: 2 });
    for (const d of ['r1', 'r2', 'r3']) index.link(d, ['k'], () => undefined);
    assert.deepEqual(index.take('k'), ['r2', 'r3']);
    index.link('r1', ['a', 'b', 'c'], () => undefined);
    assert.equal(index.size, 2);
    assert.deepEqual(index.take('a'), []);
  });

  test('unlink drops a dependent (its entry left); an open scope that read a key is tainted', () => {
    const index = new DependencyIndex({ maxKeys: 10, maxDependents: 10 });
    index.link('r1', ['k'], () => undefined);
    index.unlink('r1', ['k']);
    assert.equal(index.size, 0);
    const scope = index.open({ chain: [], host: '', runner: undefined });
    scope.reads.add('k');
    index.take('k');
    assert.equal(scope.tainted, true);
  });
});

describe('options.data and options.includes', () => {
  const refuses = (options: unknown, kind: typeof TypeError | typeof RangeError, path: string): void =>
    assert.throws(
      () => resolveOptions(options as CacheOptions),
      (e: unknown) => e instanceof kind && (e as Error).message.includes(`options.${path}`),
    );

  test('defaults', () => {
    const o = resolveOptions();
    assert.equal(o.includes, false);
    assert.equal(o.data.maxSize, DEFAULTS.data.maxSize);
    assert.equal(o.data.fetchTimeout, DEFAULTS.data.fetch.timeout);
    assert.equal(o.data.maxConcurrentPerOrigin, DEFAULTS.data.fetch.maxConcurrentPerOrigin);
    assert.equal(o.data.includeErrors, 'fail');
    const custom = resolveOptions({ data: { fetch: { timeout: 5 } } });
    assert.equal(custom.data.fetchTimeout, 5);
    assert.equal(custom.data.maxConcurrentPerOrigin, DEFAULTS.data.fetch.maxConcurrentPerOrigin);
  });

  test('bad values name options.data.<field>', () => {
    refuses({ data: 3 }, TypeError, 'data');
    refuses({ data: { maxSize: 0 } }, RangeError, 'data.maxSize');
    refuses({ data: { maxSize: 100, maxEntrySize: 101 } }, RangeError, 'data.maxEntrySize');
    refuses({ data: { defaultTtl: -1 } }, RangeError, 'data.defaultTtl');
    refuses({ data: { fetch: { timeout: 'soon' } } }, TypeError, 'data.fetch.timeout');
    refuses({ data: { fetch: { maxConcurrentPerOrigin: 0 } } }, RangeError, 'data.fetch.maxConcurrentPerOrigin');
    refuses({ data: { fetch: { retries: 1 } } }, TypeError, 'data.fetch.retries');
    refuses({ data: { maxIncludeDepth: 0 } }, RangeError, 'data.maxIncludeDepth');
    refuses({ data: { includeErrors: 'ignore' } }, TypeError, 'data.includeErrors');
    refuses({ data: { maxTrackedKeys: 0 } }, RangeError, 'data.maxTrackedKeys');
    refuses({ data: { maxDependents: 1.5 } }, RangeError, 'data.maxDependents');
    refuses({ data: { size: 1 } }, TypeError, 'data.size');
    refuses({ includes: 'yes' }, TypeError, 'includes');
  });
});

describe('MemoryStore onEvict (keeps the dependency index in step)', () => {
  test('called when an entry leaves by space or by age, not on delete', async () => {
    const { MemoryStore } = await import('../../src/stores/memory.js');
    const { mock } = await import('node:test');
    mock.timers.enable({ apis: ['Date'], now: 1_000 });
    try {
      const left: string[] = [];
      const store = new MemoryStore({ maxSize: 2_000, onEvict: (key) => left.push(key) });
      const entry = (expiresAt: number): Entry => ({
        status: 200, headers: [], body: Buffer.alloc(600), storedAt: 1_000, initialAge: 0, staleAt: expiresAt,
        swrUntil: expiresAt, sieUntil: expiresAt, expiresAt, etag: undefined, lastModified: undefined,
        shared: true, url: '/', host: '', vary: [], tags: [],
      });
      store.set('old', entry(2_000));
      store.set('deleted', entry(9_000));
      store.delete('deleted');
      mock.timers.tick(1_500);
      assert.equal(store.get('old'), undefined);
      assert.deepEqual(left, ['old']);
      store.set('a', entry(9_000));
      store.set('b', entry(9_000));
      store.set('c', entry(9_000)); // 3 x ~740 B (packed) > 2000 B: 'a' is evicted
      assert.deepEqual(left, ['old', 'a']);
    } finally {
      mock.timers.reset();
    }
  });
});

describe('documented defaults of DataOptions', () => {
  test('every field documents a @default equal to DEFAULTS.data', () => {
    assertDocumentedDefaults('data/options.ts', 'DataOptions', DEFAULTS.data, 'options.data');
  });
});

describe('tag invalidation of data values', () => {
  test('invalidating a tag several values carry ends, and each value is loaded again', async () => {
    // Regression: the scan of the data memory tier read each key while iterating lru-cache's
    // keys, which moved it to the front and looped forever once two values were stored.
    const cache = createCache();
    let loads = 0;
    const load = (v: string) => () => (loads++, v);
    for (const k of ['a', 'b', 'c']) await cache.data.get(k, load(k), { tags: ['t'] });
    assert.equal(loads, 3);
    await cache.invalidateTags(['t']);
    for (const k of ['a', 'b', 'c']) assert.equal(await cache.data.get(k, load(`${k}2`), { tags: ['t'] }), `${k}2`);
    assert.equal(loads, 6);
    await cache.close();
  });
});
