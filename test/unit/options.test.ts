/**
 * Option validation (every bad option throws TypeError/RangeError naming `options.<path>` and the
 * value it got) and the documentation check: every `@default` in the TSDoc of CacheOptions and
 * KeyOptions must equal DEFAULTS.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCache } from '../../src/index.js';
import { DEFAULTS } from '../../src/options/defaults.js';
import { resolveOptions } from '../../src/options/resolve.js';
import { type CacheOptions } from '../../src/options/types.js';
import { assertDocumentedDefaults, documentedDefaults, parseLeadingLiteral, plain, sourceOf } from '../helpers/defaults.js';

type ErrorKind = typeof TypeError | typeof RangeError;

/** Asserts that `options` is refused with `kind`, naming the path and showing the bad value. */
function refuses(options: unknown, kind: ErrorKind, path: string, shown: string): void {
  const check = (error: unknown): true => {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`);
    assert.equal((error as Error).constructor, kind, `expected exactly ${kind.name}, got ${(error as Error).name}`);
    const message = (error as Error).message;
    assert.ok(message.includes(`options.${path}`), `message ${JSON.stringify(message)} does not name options.${path}`);
    assert.ok(message.includes(shown), `message ${JSON.stringify(message)} does not show ${shown}`);
    return true;
  };
  assert.throws(() => resolveOptions(options as CacheOptions), check);
  // The public factory validates the same way, at construction.
  assert.throws(() => createCache(options as CacheOptions), check);
}

describe('resolveOptions refuses bad options', () => {
  test('maxSize', () => {
    refuses({ maxSize: 'big' }, TypeError, 'maxSize', "'big'");
    refuses({ maxSize: Number.NaN }, TypeError, 'maxSize', 'NaN');
    refuses({ maxSize: null }, TypeError, 'maxSize', 'null');
    refuses({ maxSize: 0 }, RangeError, 'maxSize', 'got 0');
    refuses({ maxSize: -1 }, RangeError, 'maxSize', '-1');
    refuses({ maxSize: 1.5 }, RangeError, 'maxSize', '1.5');
    refuses({ maxSize: Number.POSITIVE_INFINITY }, RangeError, 'maxSize', 'Infinity');
  });

  test('maxEntrySize, including larger than maxSize', () => {
    refuses({ maxEntrySize: '1mb' }, TypeError, 'maxEntrySize', "'1mb'");
    refuses({ maxEntrySize: 0 }, RangeError, 'maxEntrySize', 'got 0');
    refuses({ maxSize: 1000, maxEntrySize: 1001 }, RangeError, 'maxEntrySize', '1001');
    refuses({ maxSize: 1000, maxEntrySize: 1001 }, RangeError, 'maxSize', '1000');
    // Against the default maxSize too.
    refuses({ maxEntrySize: DEFAULTS.maxSize + 1 }, RangeError, 'maxEntrySize', String(DEFAULTS.maxSize + 1));
  });

  test('defaultTtl and maxTtl', () => {
    refuses({ defaultTtl: -1 }, RangeError, 'defaultTtl', '-1');
    refuses({ defaultTtl: '60s' }, TypeError, 'defaultTtl', "'60s'");
    refuses({ defaultTtl: 0.5 }, RangeError, 'defaultTtl', '0.5');
    refuses({ maxTtl: 0 }, RangeError, 'maxTtl', 'got 0');
    refuses({ maxTtl: true }, TypeError, 'maxTtl', 'true');
  });

  test('ignoreUrlParams', () => {
    refuses({ ignoreUrlParams: [3] }, TypeError, 'ignoreUrlParams[0]', '3');
    refuses({ ignoreUrlParams: ['utm_*', ''] }, TypeError, 'ignoreUrlParams[1]', "''");
    refuses({ ignoreUrlParams: 'utm_*' }, TypeError, 'ignoreUrlParams', "'utm_*'");
    refuses({ ignoreUrlParams: null }, TypeError, 'ignoreUrlParams', 'null');
  });

  test('storeHeaders', () => {
    refuses({ storeHeaders: 'etag' }, TypeError, 'storeHeaders', "'etag'");
    refuses({ storeHeaders: ['etag', 'bad header'] }, TypeError, 'storeHeaders[1]', "'bad header'");
    refuses({ storeHeaders: [42] }, TypeError, 'storeHeaders[0]', '42');
  });

  test('cacheStatuses', () => {
    refuses({ cacheStatuses: 200 }, TypeError, 'cacheStatuses', '200');
    refuses({ cacheStatuses: [200, 99] }, RangeError, 'cacheStatuses[1]', '99');
    refuses({ cacheStatuses: [600] }, RangeError, 'cacheStatuses[0]', '600');
    refuses({ cacheStatuses: ['404'] }, TypeError, 'cacheStatuses[0]', "'404'");
  });

  test('key', () => {
    refuses({ key: { host: 5 } }, TypeError, 'key.host', '5');
    refuses({ key: { host: '' } }, TypeError, 'key.host', "''");
    refuses({ key: { host: true } }, TypeError, 'key.host', 'true');
    refuses({ key: 'host' }, TypeError, 'key', "'host'");
    refuses({ key: null }, TypeError, 'key', 'null');
    refuses({ key: { headers: 'x-tenant' } }, TypeError, 'key.headers', "'x-tenant'");
    refuses({ key: { headers: ['x-tenant', 7] } }, TypeError, 'key.headers[1]', '7');
  });

  test('bypass', () => {
    refuses({ bypass: true }, TypeError, 'bypass', 'true');
    refuses({ bypass: '/admin' }, TypeError, 'bypass', "'/admin'");
  });

  test('statusHeader and cacheName', () => {
    refuses({ statusHeader: 'foo' }, TypeError, 'statusHeader', "'foo'");
    refuses({ statusHeader: true }, TypeError, 'statusHeader', 'true');
    refuses({ statusHeader: 'X-Cache' }, TypeError, 'statusHeader', "'X-Cache'");
    refuses({ cacheName: 'my cache' }, TypeError, 'cacheName', "'my cache'");
    refuses({ cacheName: '' }, TypeError, 'cacheName', "''");
    refuses({ cacheName: 3 }, TypeError, 'cacheName', '3');
  });

  test('maxVariants and passTtl', () => {
    refuses({ maxVariants: 0 }, RangeError, 'maxVariants', 'got 0');
    refuses({ maxVariants: 2000 }, RangeError, 'maxVariants', '2000');
    refuses({ maxVariants: 'many' }, TypeError, 'maxVariants', "'many'");
    refuses({ passTtl: -5 }, RangeError, 'passTtl', '-5');
    refuses({ errorBackoff: -1 }, RangeError, 'errorBackoff', '-1');
    refuses({ errorBackoff: 'soon' }, TypeError, 'errorBackoff', 'soon');
  });

  test('unkeyedHeaders', () => {
    refuses({ unkeyedHeaders: 'x-forwarded-host' }, TypeError, 'unkeyedHeaders', "'x-forwarded-host'");
    refuses({ unkeyedHeaders: ['x-ok', 'not ok'] }, TypeError, 'unkeyedHeaders[1]', "'not ok'");
  });

  test('stores', () => {
    refuses({ stores: {} }, TypeError, 'stores', 'an object');
    refuses({ stores: [{ get() {} }] }, TypeError, 'stores[0]', 'an object');
    refuses({ stores: [null] }, TypeError, 'stores[0]', 'null');
  });

  test('an unknown option name', () => {
    refuses({ maxsize: 10 }, TypeError, 'maxsize', 'maxsize');
    refuses({ ttl: 1000 }, TypeError, 'ttl', 'ttl');
  });

  test('options that are not an object', () => {
    for (const bad of [null, 'fast', 42]) {
      assert.throws(() => resolveOptions(bad as unknown as CacheOptions), (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, /^expected options to be an object, got /);
        return true;
      });
    }
  });
});

describe('resolveOptions accepts good options', () => {
  test('no options: the defaults', () => {
    const o = resolveOptions();
    assert.equal(o.maxSize, DEFAULTS.maxSize);
    assert.equal(o.maxEntrySize, DEFAULTS.maxEntrySize);
    assert.equal(o.defaultTtl, DEFAULTS.defaultTtl);
    assert.equal(o.maxTtl, DEFAULTS.maxTtl);
    assert.equal(o.ignoreParam, undefined);
    assert.equal(o.storeHeaders, undefined);
    assert.deepEqual([...o.cacheStatuses], [...DEFAULTS.cacheStatuses]);
    assert.equal(o.keyHost, 'header');
    assert.deepEqual(o.keyHeaders, []);
    assert.equal(o.statusHeader, 'both');
    assert.deepEqual(o.unkeyedHeaders, [...DEFAULTS.unkeyedHeaders]);
    assert.ok(Object.isFrozen(o));
    assert.ok(Object.isFrozen(DEFAULTS));
  });

  test('undefined fields fall back to their defaults', () => {
    assert.equal(resolveOptions({ maxSize: undefined, statusHeader: undefined }).maxSize, DEFAULTS.maxSize);
  });

  test('values are normalised: header names and fixed host lower-cased, key.headers keyed not stripped', () => {
    const o = resolveOptions({
      storeHeaders: ['ETag'],
      key: { host: 'WWW.Example.com', headers: ['X-Forwarded-Host'] },
      statusHeader: false,
      defaultTtl: 0,
      passTtl: 0,
    });
    assert.deepEqual([...(o.storeHeaders ?? [])], ['etag']);
    assert.equal(o.keyHost, 'www.example.com');
    assert.deepEqual(o.keyHeaders, ['x-forwarded-host']);
    assert.ok(!o.unkeyedHeaders.includes('x-forwarded-host'));
    assert.equal(o.statusHeader, false);
    assert.equal(o.defaultTtl, 0);
  });

  test('ignoreUrlParams: globs and a function', () => {
    const globbed = resolveOptions({ ignoreUrlParams: ['utm_*', 'fbclid'] }).ignoreParam;
    assert.ok(globbed);
    assert.deepEqual(['utm_source', 'fbclid', 'id', 'xutm_a'].map(globbed), [true, true, false, false]);
    const fn = (name: string): boolean => name === 'x';
    assert.equal(resolveOptions({ ignoreUrlParams: fn }).ignoreParam, fn);
  });
});

// ---------------------------------------------------------------------------------------------
// Documentation check: the TSDoc `@default` of every option equals DEFAULTS.

describe('documented defaults match DEFAULTS', () => {
  const source = sourceOf('options/types.ts');

  test('the literal parser reads the readable forms the docs use', () => {
    assert.equal(parseLeadingLiteral('67108864 (64 MiB)'), 67108864);
    assert.equal(parseLeadingLiteral('60_000'), 60000);
    assert.equal(parseLeadingLiteral('undefined (no bypass)'), undefined);
    assert.deepEqual(parseLeadingLiteral("{ host: 'header', headers: [] }"), { host: 'header', headers: [] });
    assert.deepEqual(parseLeadingLiteral("['a', 'b',] trailing words"), ['a', 'b']);
    assert.throws(() => parseLeadingLiteral('about a minute'));
  });

  test('every CacheOptions field documents a @default equal to DEFAULTS', () => {
    assertDocumentedDefaults('options/types.ts', 'CacheOptions', DEFAULTS, 'options');
  });

  test('every KeyOptions field documents a @default equal to DEFAULTS.key', () => {
    assertDocumentedDefaults('options/types.ts', 'KeyOptions', DEFAULTS.key, 'options.key');
  });

  test('every FlushOptions, RefetchOptions and InvalidationOptions field documents its default', () => {
    for (const [name, defaults] of [
      ['FlushOptions', DEFAULTS.flush],
      ['RefetchOptions', DEFAULTS.refetch],
      ['InvalidationOptions', DEFAULTS.invalidation],
    ] as const) {
      assertDocumentedDefaults('invalidation/options.ts', name, defaults, name);
    }
  });

  test('every MetricsOptions field documents its default', () => {
    assertDocumentedDefaults('observe/options.ts', 'MetricsOptions', DEFAULTS.metrics, 'MetricsOptions');
  });

  test('the check notices drift: a changed default fails the comparison', () => {
    const docs = documentedDefaults(source.replace('@default 60000', '@default 30000'), 'CacheOptions');
    assert.notDeepEqual(parseLeadingLiteral(docs.get('defaultTtl')!), DEFAULTS.defaultTtl);
    const unkeyed = documentedDefaults(source.replace("'x-matched-path']", "'x-matched-path', 'x-extra']"), 'CacheOptions');
    assert.notDeepEqual(parseLeadingLiteral(unkeyed.get('unkeyedHeaders')!), plain(DEFAULTS.unkeyedHeaders));
  });
});

describe('unset size options follow their budget', () => {
  test('maxSize below the default maxEntrySize: the entry bound follows it', () => {
    assert.equal(resolveOptions({ maxSize: 50_000 }).maxEntrySize, 50_000);
    assert.doesNotThrow(() => createCache({ maxSize: 50_000 }).close());
    assert.equal(resolveOptions({}).maxEntrySize, DEFAULTS.maxEntrySize);
    // Set explicitly, the bound is still checked against the budget.
    refuses({ maxSize: 50_000, maxEntrySize: 60_000 }, RangeError, 'maxEntrySize', '60000');
  });

  test('data.maxSize below the default data.maxEntrySize', () => {
    assert.equal(resolveOptions({ data: { maxSize: 100_000 } }).data.maxEntrySize, 100_000);
    assert.doesNotThrow(() => createCache({ data: { maxSize: 100_000 } }).close());
    refuses({ data: { maxSize: 100_000, maxEntrySize: 200_000 } }, RangeError, 'data.maxEntrySize', '200000');
  });
});

describe('cookie and targeted-field options', () => {
  test('ignoreCookies and targetedCacheControl are validated', () => {
    refuses({ ignoreCookies: '_ga' }, TypeError, 'ignoreCookies', "'_ga'");
    refuses({ ignoreCookies: [''] }, TypeError, 'ignoreCookies[0]', "''");
    refuses({ targetedCacheControl: ['cdn cache'] }, TypeError, 'targetedCacheControl[0]', "'cdn cache'");
    assert.deepEqual(resolveOptions({ targetedCacheControl: ['CDN-Cache-Control'] }).targetedCacheControl, ['cdn-cache-control']);
    assert.equal(resolveOptions({ ignoreCookies: ['_ga', 'consent*'] }).ignoreCookie?.('consent_ads'), true);
  });
});
