import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULTS } from '../../src/options/defaults.js';
import { resolveOptions } from '../../src/options/resolve.js';
import { type CacheOptions } from '../../src/options/types.js';

describe('invalidation and stale options', () => {
  test('defaults resolve', () => {
    const o = resolveOptions();
    assert.deepEqual([...o.staleOnErrorStatuses], [500, 502, 503, 504]);
    assert.equal(o.staleIfError, 86_400_000);
    assert.equal(o.staleWhileRevalidate, 0);
    assert.equal(o.originTimeout, 30_000);
    assert.equal(o.gracePeriod, 10_000);
    assert.equal(o.statLevel, 0);
    assert.ok(o.autoInvalidate?.('/a/b.html') && o.autoInvalidate('/a.json') && !o.autoInvalidate('/a.png'));
    assert.equal(o.tagHeader, 'surrogate-key');
    assert.deepEqual(o.flush, { path: '/dispatcher/invalidate.cache', allowedClients: ['127.0.0.0/8', '::1'], trustProxy: [], hosts: [], token: undefined, maxBodyBytes: 1048576, maxLines: 10000 });
    assert.equal(o.refetchConcurrency, 4);
    assert.equal(o.propagate, true);
    assert.ok(Object.isFrozen(DEFAULTS.flush) && Object.isFrozen(DEFAULTS.refetch) && Object.isFrozen(DEFAULTS.invalidation));
  });

  test('flush: false disables the endpoint; autoInvalidate [] disables auto-invalidation', () => {
    assert.equal(resolveOptions({ flush: false }).flush, undefined);
    assert.equal(resolveOptions({ autoInvalidate: [] }).autoInvalidate, undefined);
    assert.deepEqual([...resolveOptions({ serveStaleOnError: false }).staleOnErrorStatuses], []);
    assert.deepEqual([...resolveOptions({ serveStaleOnError: [429, 503] }).staleOnErrorStatuses], [429, 503]);
    assert.equal(resolveOptions({ flush: { token: 's3cret' } }).flush?.path, '/dispatcher/invalidate.cache');
    // Admin host names are compared in lower case, without a trailing dot.
    assert.deepEqual(resolveOptions({ flush: { hosts: ['Cache.Internal.', 'admin'] } }).flush?.hosts, ['cache.internal', 'admin']);
    assert.deepEqual(resolveOptions({ flush: { trustProxy: ['10.0.0.2', 'fd00::/8'] } }).flush?.trustProxy, ['10.0.0.2', 'fd00::/8']);
  });

  test('bad values name the option path', () => {
    const cases: Array<[CacheOptions, RegExp]> = [
      [{ serveStaleOnError: 'yes' as never }, /options\.serveStaleOnError/],
      [{ serveStaleOnError: [200] }, /options\.serveStaleOnError\[0\]/],
      [{ staleIfError: -1 }, /options\.staleIfError/],
      [{ staleWhileRevalidate: 1.5 }, /options\.staleWhileRevalidate/],
      [{ originTimeout: 'slow' as never }, /options\.originTimeout/],
      [{ gracePeriod: -5 }, /options\.gracePeriod/],
      [{ statLevel: 100 }, /options\.statLevel/],
      [{ autoInvalidate: '*.html' as never }, /options\.autoInvalidate/],
      [{ autoInvalidate: [''] }, /options\.autoInvalidate\[0\]/],
      [{ tagHeader: 'bad header' }, /options\.tagHeader/],
      [{ flush: true as never }, /options\.flush/],
      [{ flush: { path: 'nope' } }, /options\.flush\.path/],
      [{ flush: { allowedClients: ['localhost'] } }, /options\.flush\.allowedClients\[0\]/],
      [{ flush: { allowedClients: ['10.0.0.0/33'] } }, /options\.flush\.allowedClients\[0\]/],
      [{ flush: { token: '' } }, /options\.flush\.token/],
      [{ flush: { trustProxy: '127.0.0.1' as never } }, /options\.flush\.trustProxy/],
      [{ flush: { trustProxy: ['127.0.0.1', 'nginx'] } }, /options\.flush\.trustProxy\[1\].*'nginx'/],
      [{ flush: { trustProxy: ['10.0.0.0/40'] } }, /options\.flush\.trustProxy\[0\]/],
      [{ flush: { hosts: 'cache.internal' as never } }, /options\.flush\.hosts/],
      [{ flush: { hosts: ['cache.internal:9000'] } }, /options\.flush\.hosts\[0\].*'cache\.internal:9000'/],
      [{ flush: { hosts: ['bad host'] } }, /options\.flush\.hosts\[0\]/],
      [{ flush: { maxBodyBytes: 0 } }, /options\.flush\.maxBodyBytes/],
      [{ flush: { maxLines: 0 } }, /options\.flush\.maxLines/],
      [{ refetch: { concurrency: 0 } }, /options\.refetch\.concurrency/],
      [{ invalidation: { propagate: 'yes' as never } }, /options\.invalidation\.propagate/],
    ];
    for (const [options, message] of cases) assert.throws(() => resolveOptions(options), message, JSON.stringify(options));
  });
});
