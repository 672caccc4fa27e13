/**
 * evaluateResponse (storability and absolute times in shared-cache mode, plus the product's rules)
 * and storedHeaders (what an entry keeps).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { storedHeaders } from '../../src/policy.js';
import { resolveOptions } from '../../src/options/resolve.js';
import { judge, NOW, refused, storable } from '../helpers/policy.js';

/** http-cache-semantics reads the real clock for the response time: allow a few ms of drift. */
function near(actual: number, expected: number, slack = 50): void {
  assert.ok(Math.abs(actual - expected) <= slack, `expected ${actual} to be within ${slack} of ${expected}`);
}

describe('evaluateResponse: refusals', () => {
  test('no-store is never stored, and is remembered as pass', () => {
    assert.equal(refused(judge({ 'cache-control': 'no-store' }), 'no-store').sticky, true);
    refused(judge({ 'cache-control': 'max-age=60, no-store' }), 'no-store');
  });

  test('private is never stored in a shared cache', () => {
    refused(judge({ 'cache-control': 'private, max-age=60' }), 'private');
  });

  test('no-cache is not stored (it would need a render per request anyway)', () => {
    refused(judge({ 'cache-control': 'no-cache, max-age=60' }), 'no-cache');
  });

  test('Set-Cookie is never stored', () => {
    refused(judge({ 'cache-control': 'public, max-age=60', 'set-cookie': 'sid=secret' }), 'set-cookie');
    refused(judge({ 'set-cookie': ['a=1', 'b=2'] }), 'set-cookie');
  });

  test('Vary: * is never stored', () => {
    refused(judge({ 'cache-control': 'max-age=60', vary: '*' }), 'vary *');
    refused(judge({ 'cache-control': 'max-age=60', vary: 'Accept, *' }), 'vary *');
  });

  test('Authorization without public/s-maxage/must-revalidate is not stored, and not remembered', () => {
    const v = refused(judge({ 'cache-control': 'max-age=60' }, { reqHeaders: { authorization: 'Bearer t' } }), 'authorization');
    assert.equal(v.sticky, false);
    refused(judge({}, { reqHeaders: { authorization: 'Bearer t' } }), 'authorization');
  });

  test("a request's own no-store: not stored, and not remembered against the URL", () => {
    const v = refused(judge({ 'cache-control': 'max-age=60' }, { reqHeaders: { 'cache-control': 'no-store' } }), 'request no-store');
    assert.equal(v.sticky, false);
    // The response's own no-store is intrinsic to the URL and is remembered.
    assert.equal(refused(judge({ 'cache-control': 'no-store' }, { reqHeaders: { 'cache-control': 'no-store' } }), 'no-store').sticky, true);
  });

  test('explicit freshness already used up is not stored', () => {
    refused(judge({ 'cache-control': 'max-age=0' }), 'expired');
    const past = new Date(NOW - 60_000).toUTCString();
    refused(judge({ date: new Date(NOW).toUTCString(), expires: past }), 'expired');
    refused(judge({ 'cache-control': 'max-age=10', age: '20' }), 'expired');
  });

  test('defaultTtl 0 stores only explicitly fresh responses', () => {
    refused(judge({}, { options: { defaultTtl: 0 } }), 'expired');
    storable(judge({ 'cache-control': 'max-age=5' }, { options: { defaultTtl: 0 } }));
  });
});

describe('evaluateResponse: statuses', () => {
  test('404 and 410 are stored by default (error pages)', () => {
    near(storable(judge({}, { status: 404 })).staleAt, NOW + 60_000, 0);
    storable(judge({ 'cache-control': 'max-age=30' }, { status: 410 }));
  });

  test('without explicit freshness, statuses outside cacheStatuses are refused; 5xx are not remembered', () => {
    const s500 = refused(judge({}, { status: 500 }), 'status 500');
    assert.equal(s500.sticky, false);
    const s302 = refused(judge({}, { status: 302 }), 'status 302');
    assert.equal(s302.sticky, true);
    refused(judge({}, { status: 404, options: { cacheStatuses: [200] } }), 'status 404');
  });

  test('any final status with explicit freshness is stored (RFC 9111 §3), on its own freshness only', () => {
    for (const status of [302, 303, 307, 400, 500, 502, 503, 599]) {
      near(storable(judge({ 'cache-control': 'max-age=60' }, { status })).staleAt, NOW + 60_000);
    }
    storable(judge({ 'cache-control': 'max-age=60' }, { status: 404, options: { cacheStatuses: [200] } }));
    const expires = new Date(NOW + 30_000).toUTCString();
    storable(judge({ date: new Date(NOW).toUTCString(), expires }, { status: 503 }));
  });

  test('partial, interim and 304 responses are never stored', () => {
    for (const status of [103, 206, 304]) refused(judge({ 'cache-control': 'max-age=60' }, { status }), `status ${status}`);
  });

  test('must-understand: an understood status ignores no-store; an unknown status is refused', () => {
    storable(judge({ 'cache-control': 'max-age=60, must-understand, no-store' }));
    refused(judge({ 'cache-control': 'max-age=60, must-understand, no-store' }, { status: 599 }), 'must-understand');
  });

  test('a configured status http-cache-semantics does not know is judged like 200', () => {
    storable(judge({ 'cache-control': 'max-age=60' }, { status: 299, options: { cacheStatuses: [200, 299] } }));
    refused(judge({ 'cache-control': 'no-store' }, { status: 299, options: { cacheStatuses: [200, 299] } }), 'no-store');
  });
});

describe('evaluateResponse: freshness', () => {
  test('max-age sets staleAt in absolute ms', () => {
    const v = storable(judge({ 'cache-control': 'max-age=120' }));
    near(v.staleAt, NOW + 120_000);
    assert.equal(v.swrUntil, v.staleAt);
    // serveStaleOnError is on by default: the staleIfError option sets the window (RFC 5861 §4).
    assert.equal(v.sieUntil, v.staleAt + 86_400_000);
    const off = storable(judge({ 'cache-control': 'max-age=120' }, { options: { staleIfError: 0 } }));
    assert.equal(off.sieUntil, off.staleAt);
    assert.equal(v.shared, false);
    assert.deepEqual(v.vary, []);
  });

  test('s-maxage wins over max-age in a shared cache, and makes the entry shareable', () => {
    const v = storable(judge({ 'cache-control': 'max-age=10, s-maxage=300' }));
    near(v.staleAt, NOW + 300_000);
    assert.equal(v.shared, true);
  });

  test('Expires relative to Date gives the freshness', () => {
    const date = new Date(NOW).toUTCString();
    const expires = new Date(Date.parse(date) + 30_000).toUTCString();
    near(storable(judge({ date, expires })).staleAt, NOW + 30_000, 1_100);
  });

  test('max-age takes precedence over Expires', () => {
    const date = new Date(NOW).toUTCString();
    const expires = new Date(Date.parse(date) + 3_600_000).toUTCString();
    near(storable(judge({ date, expires, 'cache-control': 'max-age=5' })).staleAt, NOW + 5_000);
  });

  test('Age reduces the remaining freshness and is kept as initialAge', () => {
    const v = storable(judge({ 'cache-control': 'max-age=60', age: '15' }));
    near(v.staleAt, NOW + 45_000);
    assert.equal(v.initialAge, 15);
  });

  test('defaultTtl applies only when the origin gives no explicit freshness', () => {
    assert.equal(storable(judge({}, { options: { defaultTtl: 7_000 } })).staleAt, NOW + 7_000);
    assert.equal(storable(judge({ etag: '"x"' }, { options: { defaultTtl: 7_000 } })).staleAt, NOW + 7_000);
    near(storable(judge({ 'cache-control': 'max-age=2' }, { options: { defaultTtl: 7_000 } })).staleAt, NOW + 2_000);
  });

  test('heuristicFreshness: 10% of the Last-Modified age (RFC 9111 §4.2.2) instead of defaultTtl', () => {
    const date = new Date(NOW).toUTCString();
    const lastModified = new Date(NOW - 1_000_000).toUTCString();
    const options = { defaultTtl: 0, heuristicFreshness: 0.1 };
    near(storable(judge({ date, 'last-modified': lastModified }, { options })).staleAt, NOW + 100_000, 1_500);
    // Explicit freshness wins; no Last-Modified falls back to defaultTtl (here 0: not stored).
    near(storable(judge({ date, 'last-modified': lastModified, 'cache-control': 'max-age=2' }, { options })).staleAt, NOW + 2_000, 1_500);
    // Without Last-Modified, or with the heuristic off (the default), no freshness is given: not
    // stored, or stored only to be revalidated (stale at once).
    const notFresh = (v: ReturnType<typeof judge>): void => assert.ok(!v.storable || v.staleAt <= NOW, JSON.stringify(v));
    notFresh(judge({ date }, { options }));
    notFresh(judge({ date, 'last-modified': lastModified }, { options: { defaultTtl: 0 } }));
    assert.throws(() => resolveOptions({ heuristicFreshness: 2 }), /expected options.heuristicFreshness to be a number from 0 to 1, got 2/);
  });

  test('maxTtl caps explicit and default lifetimes', () => {
    assert.equal(storable(judge({ 'cache-control': 'max-age=100000' }, { options: { maxTtl: 5_000 } })).staleAt, NOW + 5_000);
    assert.equal(storable(judge({ 'cache-control': 's-maxage=100000' }, { options: { maxTtl: 5_000 } })).staleAt, NOW + 5_000);
    assert.equal(storable(judge({}, { options: { defaultTtl: 60_000, maxTtl: 1_000 } })).staleAt, NOW + 1_000);
  });

  test('stale-while-revalidate and stale-if-error extend the absolute windows', () => {
    const v = storable(judge({ 'cache-control': 'max-age=10, stale-while-revalidate=30, stale-if-error=300' }));
    near(v.staleAt, NOW + 10_000);
    assert.equal(v.swrUntil, v.staleAt + 30_000);
    assert.equal(v.sieUntil, v.staleAt + 300_000);
  });

  test('max-age=0 with stale-while-revalidate is stored (stale at once)', () => {
    const v = storable(judge({ 'cache-control': 'max-age=0, stale-while-revalidate=30' }));
    near(v.staleAt, NOW);
    assert.equal(v.swrUntil, v.staleAt + 30_000);
  });

  test('must-revalidate forbids serving stale', () => {
    const v = storable(judge({ 'cache-control': 'max-age=10, must-revalidate, stale-while-revalidate=30, stale-if-error=30' }));
    near(v.staleAt, NOW + 10_000);
    assert.equal(v.swrUntil, v.staleAt);
    assert.equal(v.sieUntil, v.staleAt);
  });

  test('proxy-revalidate: fresh for max-age, then no stale window', () => {
    const v = storable(judge({ 'cache-control': 'max-age=10, proxy-revalidate, stale-if-error=30, stale-while-revalidate=30' }));
    near(v.staleAt, NOW + 10_000);
    assert.equal(v.swrUntil, v.staleAt);
    assert.equal(v.sieUntil, v.staleAt);
  });

  test('Vary names are lower-cased and listed', () => {
    assert.deepEqual(storable(judge({ 'cache-control': 'max-age=60', vary: 'Accept-Language, Accept-Encoding' })).vary, ['accept-language', 'accept-encoding']);
    assert.deepEqual(storable(judge({ 'cache-control': 'max-age=60', vary: ['Accept', 'Origin'] })).vary, ['accept', 'origin']);
  });

  test('numeric header values are accepted', () => {
    storable(judge({ 'cache-control': 'max-age=60', 'content-length': 12 }));
  });
});

describe('evaluateResponse: Authorization (RFC 9111 §3.5)', () => {
  const auth = { reqHeaders: { authorization: 'Basic dTpw' } };

  test('public makes it storable and shareable', () => {
    const v = storable(judge({ 'cache-control': 'public, max-age=60' }, auth));
    assert.equal(v.shared, true);
    near(v.staleAt, NOW + 60_000);
  });

  test('s-maxage makes it storable and shareable', () => {
    assert.equal(storable(judge({ 'cache-control': 's-maxage=60' }, auth)).shared, true);
  });

  test('must-revalidate makes it storable and shareable', () => {
    assert.equal(storable(judge({ 'cache-control': 'max-age=60, must-revalidate' }, auth)).shared, true);
  });

  test('private still wins over public', () => {
    refused(judge({ 'cache-control': 'public, private, max-age=60' }, auth), 'private');
  });

  test('without Authorization, a plain max-age response is not marked shareable', () => {
    assert.equal(storable(judge({ 'cache-control': 'max-age=60' })).shared, false);
    assert.equal(storable(judge({ 'cache-control': 'public, max-age=60' })).shared, true);
  });
});

describe('storedHeaders', () => {
  const all = resolveOptions({});

  test('drops hop-by-hop, computed headers and Set-Cookie; keeps the rest (Date too) in order', () => {
    const headers = {
      'Content-Type': 'text/html',
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      te: 'trailers',
      trailer: 'x-checksum',
      upgrade: 'h2c',
      'proxy-authenticate': 'Basic',
      'proxy-connection': 'keep-alive',
      date: 'Mon, 01 Jan 2024 00:00:00 GMT',
      age: '3',
      'content-length': 10,
      'set-cookie': ['a=1', 'b=2'],
      'x-cache': 'MISS',
      'cache-status': 'stratacache; fwd=uri-miss',
      etag: '"v1"',
      'cache-control': 'max-age=60',
    };
    assert.deepEqual(storedHeaders(headers, all), [
      ['content-type', 'text/html'],
      // The origin's Date is kept: a hit serves it, with Age (RFC 9110 §6.6.1).
      ['date', 'Mon, 01 Jan 2024 00:00:00 GMT'],
      ['etag', '"v1"'],
      ['cache-control', 'max-age=60'],
    ]);
  });

  test('drops the headers Connection names (RFC 9110 §7.6.1)', () => {
    const headers = { connection: 'close, X-Private-Hop', 'x-private-hop': 'secret', 'x-kept': 'yes' };
    assert.deepEqual(storedHeaders(headers, all), [['x-kept', 'yes']]);
  });

  test('repeated values become repeated pairs; numbers become strings', () => {
    assert.deepEqual(storedHeaders({ link: ['</a>; rel=preload', '</b>; rel=preload'], 'x-count': 3 }, all), [
      ['link', '</a>; rel=preload'],
      ['link', '</b>; rel=preload'],
      ['x-count', '3'],
    ]);
  });

  test('an allowlist keeps only its headers plus representation metadata', () => {
    const options = resolveOptions({ storeHeaders: ['ETag', 'cache-control'] });
    const headers = {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      'content-language': 'fr',
      vary: 'Accept-Encoding',
      etag: '"v2"',
      'cache-control': 'max-age=5',
      'x-internal': 'do not keep',
      server: 'origin',
    };
    assert.deepEqual(storedHeaders(headers, options), [
      ['content-type', 'application/json'],
      ['content-encoding', 'gzip'],
      ['content-language', 'fr'],
      ['vary', 'Accept-Encoding'],
      ['etag', '"v2"'],
      ['cache-control', 'max-age=5'],
    ]);
  });

  test('an allowlist naming Set-Cookie or a hop-by-hop header still drops it', () => {
    const options = resolveOptions({ storeHeaders: ['set-cookie', 'transfer-encoding', 'x-ok'] });
    assert.deepEqual(storedHeaders({ 'set-cookie': 'sid=1', 'transfer-encoding': 'chunked', 'x-ok': '1' }, options), [['x-ok', '1']]);
  });
});
