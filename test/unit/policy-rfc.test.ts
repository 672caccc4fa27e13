/**
 * evaluateResponse against the RFC details a shared cache gets wrong most often: directive case
 * (RFC 9111 §5.2), requests with cookies, dates (Expires, Age), s-maxage and stale, targeted
 * fields (RFC 9213); and the strict parsers behind them (HTTP-date, Structured Field Dictionary).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseHttpDate } from '../../src/http-date.js';
import { carriesCredentials, evaluateRevalidation, normalizeDirectives, parseAge, type Verdict } from '../../src/policy.js';
import type { CacheOptions } from '../../src/options/types.js';
import { resolveOptions } from '../../src/options/resolve.js';
import { judge, NOW, refused, storable } from '../helpers/policy.js';
import { parseDictionary } from '../../src/structured-fields.js';

const DATE = new Date(NOW).toUTCString();

function freshFor(v: Verdict): number {
  return Math.round((storable(v).staleAt - NOW) / 1000);
}

describe('directive names are case-insensitive (RFC 9111 §5.2)', () => {
  test('Private, PRIVATE and pRiVaTe are refused like private', () => {
    for (const cc of ['Private, max-age=60', 'PRIVATE, MAX-AGE=60', 'pRiVaTe, Max-Age=60']) refused(judge({ 'cache-control': cc }), 'private');
  });

  test('No-Store is refused, No-Cache is not stored', () => {
    refused(judge({ 'cache-control': 'No-Store, max-age=60' }), 'no-store');
    refused(judge({ 'cache-control': 'NO-CACHE, max-age=60' }), 'no-cache');
  });

  test('Max-Age and S-Maxage set freshness; S-Maxage wins', () => {
    assert.equal(freshFor(judge({ 'cache-control': 'Max-Age=120' }, { options: { defaultTtl: 0 } })), 120);
    assert.equal(freshFor(judge({ 'cache-control': 'max-age=10, S-MaxAge=300' }, { options: { defaultTtl: 0 } })), 300);
  });

  test('Must-Revalidate and Proxy-Revalidate forbid stale windows; Stale-While-Revalidate opens one', () => {
    for (const cc of ['max-age=10, Must-Revalidate', 'max-age=10, PROXY-REVALIDATE']) {
      const v = storable(judge({ 'cache-control': `${cc}, stale-while-revalidate=60` }));
      assert.equal(v.swrUntil, v.staleAt);
      assert.equal(v.sieUntil, v.staleAt);
    }
    const v = storable(judge({ 'cache-control': 'max-age=10, Stale-While-Revalidate=60' }));
    assert.equal(v.swrUntil - v.staleAt, 60_000);
  });

  test('Public makes a response to an authorized request shareable', () => {
    assert.equal(storable(judge({ 'cache-control': 'Public, max-age=60' }, { reqHeaders: { authorization: 'Bearer t' } })).shared, true);
  });

  test('Must-Understand, Stale-If-Error and a response Pragma: No-Cache in odd case', () => {
    refused(judge({ 'cache-control': 'max-age=60, Must-Understand, no-store' }, { status: 599 }), 'must-understand');
    const v = storable(judge({ 'cache-control': 's-maxage=10, Stale-If-Error=60' }));
    assert.equal(v.sieUntil - v.staleAt, 60_000);
    refused(judge({ pragma: 'No-Cache' }), 'no-cache');
    // Cache-Control wins over Pragma.
    storable(judge({ pragma: 'no-cache', 'cache-control': 'max-age=60' }));
  });

  test("the request's own No-Store is honoured", () => {
    refused(judge({ 'cache-control': 'max-age=60' }, { reqHeaders: { 'cache-control': 'No-Store' } }), 'request no-store');
  });

  test('normalizeDirectives keeps arguments, quoted or not', () => {
    assert.equal(normalizeDirectives('Private="Set-Cookie, X-Foo", Max-Age=60'), 'private="Set-Cookie, X-Foo", max-age=60');
    assert.equal(normalizeDirectives('No-Cache="A\\"B", S-MAXAGE=5'), 'no-cache="A\\"B", s-maxage=5');
  });
});

describe('requests with cookies', () => {
  const session = { cookie: 'session=alice' };

  test('no explicit freshness: not stored (no default TTL), and not remembered against the URL', () => {
    const v = refused(judge({}, { reqHeaders: session }), 'cookie');
    assert.equal(v.sticky, false);
    refused(judge({ 'cache-control': 'public' }, { reqHeaders: session }));
  });

  test('explicit shared freshness is stored: public, s-maxage, or max-age without private', () => {
    assert.equal(freshFor(judge({ 'cache-control': 'public, max-age=60' }, { reqHeaders: session })), 60);
    assert.equal(freshFor(judge({ 'cache-control': 's-maxage=30' }, { reqHeaders: session })), 30);
    assert.equal(freshFor(judge({ 'cache-control': 'max-age=20' }, { reqHeaders: session })), 20);
    refused(judge({ 'cache-control': 'private, max-age=60' }, { reqHeaders: session }), 'private');
  });

  test('Expires alone does not make a cookie response shareable', () => {
    refused(judge({ date: DATE, expires: new Date(NOW + 60_000).toUTCString() }, { reqHeaders: session }), 'cookie');
  });

  test('Authorization never gets the default TTL', () => {
    refused(judge({ 'cache-control': 'public' }, { reqHeaders: { authorization: 'Bearer t' } }));
  });

  test('ignoreCookies: a request whose cookies are all listed is anonymous', () => {
    const options = { ignoreCookies: ['_ga', '_gid', 'consent*'] };
    assert.equal(freshFor(judge({}, { reqHeaders: { cookie: '_ga=GA1.2; consent_v2=yes; _gid=x' }, options })), 60);
    refused(judge({}, { reqHeaders: { cookie: '_ga=GA1.2; session=alice' }, options }), 'cookie');
  });

  test('carriesCredentials', () => {
    assert.equal(carriesCredentials({}, undefined), false);
    assert.equal(carriesCredentials({ cookie: '' }, undefined), false);
    assert.equal(carriesCredentials({ cookie: 'a=1' }, undefined), true);
    assert.equal(carriesCredentials({ cookie: 'a=1' }, (n) => n === 'a'), false);
    assert.equal(carriesCredentials({ authorization: 'Basic x' }, () => true), true);
  });
});

describe('dates', () => {
  test('an invalid Expires means already stale (RFC 9111 §5.3)', () => {
    for (const expires of ['0', 'Thu, 18 Aug 2050 02:01:18 UTC', 'Thu 18 Aug 2050 02:01:18 GMT', 'Thu, 18-Aug-2050 02:01:18 GMT', 'Thu, 18 Aug 2050 2:01:18 GMT']) {
      refused(judge({ date: DATE, expires }, { options: { serveStaleOnError: false } }), 'expired');
    }
    refused(judge({ date: DATE, expires: ['Thu, 18 Aug 2050 02:01:18 GMT', 'Thu, 18 Aug 2050 02:01:19 GMT'] }, { options: { serveStaleOnError: false } }), 'expired');
  });

  test('a valid Expires in any of the three formats gives freshness', () => {
    const future = new Date(NOW + 3600_000);
    assert.equal(freshFor(judge({ date: DATE, expires: future.toUTCString() })), 3600);
    storable(judge({ date: DATE, expires: 'Thu Aug  8 02:01:18 2050' }));
    storable(judge({ date: DATE, expires: 'Thursday, 18-Aug-50 02:01:18 GMT' }));
  });

  test('max-age wins over an invalid Expires', () => {
    assert.equal(freshFor(judge({ 'cache-control': 'max-age=60', expires: 'garbage' })), 60);
  });

  test('Age: the first integer member counts; anything else is ignored', () => {
    assert.equal(parseAge('7200.0'), undefined);
    assert.equal(parseAge('abc'), undefined);
    assert.equal(parseAge('-7200'), undefined);
    assert.equal(parseAge('7200, 0'), 7200);
    assert.equal(parseAge(['0', '7200']), 0);
    assert.equal(parseAge('2147483649'), 2 ** 31);
    assert.equal(freshFor(judge({ 'cache-control': 'max-age=3600', age: '7200.0' })), 3600);
    refused(judge({ 'cache-control': 'max-age=3600', age: '7200, 0' }, { options: { serveStaleOnError: false } }), 'expired');
    assert.equal(storable(judge({ 'cache-control': 'max-age=3600', age: '600' })).initialAge, 600);
  });

  test('parseHttpDate accepts the three formats, case-insensitive names, and nothing else', () => {
    const t = Date.UTC(2050, 7, 18, 2, 1, 18);
    assert.equal(parseHttpDate('Thu, 18 Aug 2050 02:01:18 GMT'), t);
    assert.equal(parseHttpDate('THU, 18 AUG 2050 02:01:18 gmt'), t);
    assert.equal(parseHttpDate('Thursday, 18-Aug-50 02:01:18 GMT', Date.UTC(2026, 0, 1)), t);
    assert.equal(parseHttpDate('Thu Aug 18 02:01:18 2050'), t);
    for (const bad of ['Thu, 18 Aug 50 02:01:18 GMT', 'Thu, 18  Aug  2050 02:01:18 GMT', 'Thu, 18 Aug 2050 02.01.18 GMT', 'Thu, 18 Aug 2050 02:01:18 AEST', '', '0']) {
      assert.equal(parseHttpDate(bad), undefined, bad);
    }
  });
});

describe('s-maxage and stale (RFC 9111 §5.2.2.10, RFC 5861)', () => {
  test('s-maxage implies proxy-revalidate: no stale windows from the options', () => {
    const v = storable(judge({ 'cache-control': 's-maxage=2' }, { options: { staleWhileRevalidate: 60_000 } }));
    assert.equal(v.swrUntil, v.staleAt);
    assert.equal(v.sieUntil, v.staleAt);
  });

  test("the origin's own stale-if-error, or stale-on-error set by the operator, still applies", () => {
    const own = storable(judge({ 'cache-control': 's-maxage=2, stale-if-error=60' }));
    assert.equal(own.sieUntil - own.staleAt, 60_000);
    const operator = storable(judge({ 'cache-control': 's-maxage=2' }, { options: { serveStaleOnError: true } }));
    assert.equal(operator.sieUntil - operator.staleAt, 86_400_000);
  });
});

describe('targeted cache-control fields (RFC 9213)', () => {
  const cdn = { targetedCacheControl: ['cdn-cache-control'], defaultTtl: 0, serveStaleOnError: false } satisfies CacheOptions;

  test('off by default: CDN-Cache-Control is ignored', () => {
    refused(judge({ 'cdn-cache-control': 'max-age=60' }, { options: { defaultTtl: 0, serveStaleOnError: false } }), 'expired');
  });

  test('when obeyed it replaces Cache-Control and Expires', () => {
    assert.equal(freshFor(judge({ 'cdn-cache-control': 'max-age=600', 'cache-control': 'no-store' }, { options: cdn })), 600);
    assert.equal(freshFor(judge({ 'cdn-cache-control': 'max-age=600', expires: new Date(NOW - 10_000).toUTCString(), date: DATE }, { options: cdn })), 600);
    refused(judge({ 'cdn-cache-control': 'max-age=0', expires: new Date(NOW + 60_000).toUTCString(), date: DATE }, { options: cdn }), 'expired');
    refused(judge({ 'cdn-cache-control': 'no-store', 'cache-control': 'max-age=600' }, { options: cdn }), 'no-store');
    refused(judge({ 'cdn-cache-control': 'private', 'cache-control': 'max-age=600' }, { options: cdn }), 'private');
    refused(judge({ 'cdn-cache-control': 'no-cache', 'cache-control': 'max-age=600' }, { options: cdn }), 'no-cache');
  });

  test('an invalid field is ignored as a whole; Cache-Control then applies', () => {
    refused(judge({ 'cdn-cache-control': 'max-age=10000, &&&&&', 'cache-control': 'no-store' }, { options: cdn }), 'no-store');
    refused(judge({ 'cdn-cache-control': 'max-age="10000"', 'cache-control': 'no-store' }, { options: cdn }), 'no-store');
  });

  test('parseDictionary', () => {
    assert.deepEqual([...parseDictionary('foobar, max-age=3600;x=1, a="q\\"s"')!.keys()], ['foobar', 'max-age', 'a']);
    assert.deepEqual(parseDictionary('max-age=3600')!.get('max-age'), { type: 'integer', value: 3600 });
    for (const bad of ['MaX-aGe=1', 'max-age =1', 'max-age= 1', 'a,', 'a=&&', 'a=(b)']) assert.equal(parseDictionary(bad), undefined, bad);
  });
});

describe('a 304 that repeats no validator (RFC 9111 §4.3.4)', () => {
  // Modified 1000 s before the 304's Date: heuristically fresh for 100 s.
  const lm = new Date(NOW - 1_000_000).toUTCString();
  const stored = { status: 200, headers: [['last-modified', lm], ['content-type', 'text/html']] as Array<[string, string]> };
  const bare = { status: 304, headers: { date: new Date(NOW).toUTCString(), server: 'SimpleHTTP/0.6' } };
  const revalidate = (reqHeaders: Record<string, string>) =>
    evaluateRevalidation({ method: 'GET', url: '/page', headers: { host: 'example.test', ...reqHeaders } }, stored, bare, resolveOptions({ heuristicFreshness: 0.1 }), NOW);

  test('selects the entry whose own validators the request carried; freshness from Last-Modified', () => {
    const merged = revalidate({ 'if-modified-since': lm });
    assert.ok(merged !== undefined);
    const verdict = storable(merged.verdict);
    assert.ok(Math.abs(verdict.staleAt - (NOW + 100_000)) < 2_000, `a tenth of its age, got ${verdict.staleAt - NOW} ms`);
    assert.deepEqual(merged.headers.find(([name]) => name === 'last-modified'), ['last-modified', lm]);
  });

  test('does not select it when the request asked with other validators', () => {
    assert.equal(revalidate({ 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' }), undefined);
    assert.equal(revalidate({}), undefined);
  });
});
