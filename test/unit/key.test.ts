/**
 * Key normalisation: query order, ignored parameters (names, globs, predicate), host policy and
 * default ports, extra keyed headers, and the Vary secondary key.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { normalizeHost, normalizeTarget, primaryKey, variantKey } from '../../src/key.js';
import { globPredicate } from '../../src/options/validate.js';
import { resolveOptions } from '../../src/options/resolve.js';
import { type CacheOptions } from '../../src/options/types.js';

/** A request as the key functions see it: url, headers and a socket that may be TLS. */
function fakeRequest(url: string, headers: Record<string, string> = {}, encrypted = false): IncomingMessage {
  return { url, headers, socket: { encrypted } } as unknown as IncomingMessage;
}

const keyOf = (url: string, headers: Record<string, string> = {}, options: CacheOptions = {}): string | undefined =>
  primaryKey(fakeRequest(url, headers), resolveOptions(options));

describe('normalizeTarget', () => {
  test('sorts the query by name and keeps the path', () => {
    assert.equal(normalizeTarget('/p?b=2&a=1&c=3', undefined), '/p?a=1&b=2&c=3');
    assert.equal(normalizeTarget('/p?a=1&b=2', undefined), normalizeTarget('/p?b=2&a=1', undefined));
  });

  test('keeps the order of repeated names (stable sort)', () => {
    assert.equal(normalizeTarget('/p?z=0&a=2&a=1', undefined), '/p?a=2&a=1&z=0');
    assert.notEqual(normalizeTarget('/p?a=2&a=1', undefined), normalizeTarget('/p?a=1&a=2', undefined));
  });

  test('drops the fragment, and the "?" when every parameter is ignored', () => {
    assert.equal(normalizeTarget('/p?a=1#frag', undefined), '/p?a=1');
    assert.equal(normalizeTarget('/p#frag', undefined), '/p');
    assert.equal(normalizeTarget('/p?utm_source=x', (n) => n.startsWith('utm_')), '/p');
  });

  test('removes ignored names, exact and globbed', () => {
    const ignore = globPredicate('ignoreUrlParams', ['utm_*', 'fbclid', '*_ts']);
    assert.ok(ignore);
    assert.equal(normalizeTarget('/a?utm_source=x&id=7&fbclid=abc&utm_medium=y&cache_ts=9', ignore), '/a?id=7');
    // A glob matches the whole name, not a substring: "xutm_a" and "fbclid2" are kept.
    assert.equal(normalizeTarget('/a?xutm_a=1&fbclid2=2', ignore), '/a?fbclid2=2&xutm_a=1');
  });

  test('glob metacharacters other than * are literal', () => {
    const ignore = globPredicate('ignoreUrlParams', ['a.b', 'x+*']);
    assert.ok(ignore);
    // Names are matched decoded: "x%2By" is "x+y" ("+" in a query would decode to a space).
    assert.equal(normalizeTarget('/?a.b=1&aXb=2&x%2By=3&xxy=4', ignore), '/?aXb=2&xxy=4');
  });

  test('an empty pattern list ignores nothing', () => {
    assert.equal(globPredicate('ignoreUrlParams', []), undefined);
  });

  test('a predicate decides per name', () => {
    assert.equal(normalizeTarget('/s?q=1&session=2&sid=3', (n) => n.startsWith('s')), '/s?q=1');
  });

  test('absolute-form targets keep path and query; other forms are not cacheable', () => {
    assert.equal(normalizeTarget('http://Example.com/x?b=1&a=2', undefined), '/x?a=2&b=1');
    assert.equal(normalizeTarget('*', undefined), undefined);
    assert.equal(normalizeTarget('', undefined), undefined);
    assert.equal(normalizeTarget('ftp://example.com/x', undefined), undefined);
  });
});

describe('normalizeHost', () => {
  test('lower-cases and drops the default port of the scheme', () => {
    assert.equal(normalizeHost('Example.COM', false), 'example.com');
    assert.equal(normalizeHost('example.com:80', false), 'example.com');
    assert.equal(normalizeHost('example.com:443', true), 'example.com');
  });

  test('keeps a port that is not the default of the scheme', () => {
    assert.equal(normalizeHost('example.com:443', false), 'example.com:443');
    assert.equal(normalizeHost('example.com:80', true), 'example.com:80');
    assert.equal(normalizeHost('example.com:8080', false), 'example.com:8080');
    assert.equal(normalizeHost('[::1]:80', false), '[::1]');
  });

  test('no Host gives an empty host part', () => {
    assert.equal(normalizeHost(undefined, false), '');
  });

  test('drops the trailing dot of a fully qualified name, with or without a port', () => {
    assert.equal(normalizeHost('site.test.', false), 'site.test');
    assert.equal(normalizeHost('SITE.TEST.:80', false), 'site.test');
    assert.equal(normalizeHost('site.test.:8080', false), 'site.test:8080');
    assert.equal(normalizeHost('[::ffff:10.0.0.1]:8080', false), '[::ffff:10.0.0.1]:8080');
  });
});

describe('primaryKey', () => {
  test('host is part of the key by default, normalised', () => {
    assert.equal(keyOf('/a', { host: 'Example.com:80' }), keyOf('/a', { host: 'example.com' }));
    assert.notEqual(keyOf('/a', { host: 'a.example' }), keyOf('/a', { host: 'b.example' }));
  });

  test('TLS sockets drop :443, not :80', () => {
    const options = resolveOptions({});
    assert.equal(primaryKey(fakeRequest('/a', { host: 'x.test:443' }, true), options), primaryKey(fakeRequest('/a', { host: 'x.test' }), options));
    assert.notEqual(primaryKey(fakeRequest('/a', { host: 'x.test:443' }, false), options), primaryKey(fakeRequest('/a', { host: 'x.test' }), options));
  });

  test('a fixed host or false makes the Host header irrelevant', () => {
    assert.equal(keyOf('/a', { host: 'one.test' }, { key: { host: 'Site.test' } }), keyOf('/a', { host: 'two.test' }, { key: { host: 'site.test' } }));
    assert.equal(keyOf('/a', { host: 'one.test' }, { key: { host: false } }), '/a');
  });

  test('query order and ignored params do not change the key', () => {
    const options = { ignoreUrlParams: ['utm_*'] };
    assert.equal(keyOf('/p?b=2&a=1&utm_source=x', { host: 'h' }, options), keyOf('/p?a=1&b=2', { host: 'h' }, options));
    assert.notEqual(keyOf('/p?a=1', { host: 'h' }, options), keyOf('/p?a=2', { host: 'h' }, options));
  });

  test('unkeyed headers do not change the key; key.headers do', () => {
    assert.equal(keyOf('/a', { host: 'h', 'x-forwarded-host': 'evil.test' }), keyOf('/a', { host: 'h' }));
    const options = { key: { headers: ['x-tenant'] } };
    assert.notEqual(keyOf('/a', { host: 'h', 'x-tenant': 'one' }, options), keyOf('/a', { host: 'h', 'x-tenant': 'two' }, options));
    assert.equal(keyOf('/a', { host: 'h', 'x-tenant': ' one ' }, options), keyOf('/a', { host: 'h', 'x-tenant': 'one' }, options));
  });

  test('a key function replaces the whole key', () => {
    assert.equal(keyOf('/a?x=1', { host: 'h' }, { key: (req) => `custom:${req.url}` }), 'custom:/a?x=1');
  });

  test('an uncacheable target has no key', () => {
    assert.equal(keyOf('*', { host: 'h' }), undefined);
  });

  test('a key remembered from an earlier request is the one its own request builds (host, TLS, host policy, target)', () => {
    const byHeader = resolveOptions({});
    const fixed = resolveOptions({ key: { host: 'fixed.test' } });
    const none = resolveOptions({ key: { host: false } });
    const requests: Array<[string, Record<string, string>, boolean]> = [];
    for (const url of ['/', '/a', '/b', '/a/b', '/page/1', '/page/2', '/page/10', `/${'x'.repeat(300)}`]) {
      for (const host of ['Site.test', 'site.test:80', 'site.test:443', 'other.test', 'site.test.:8080']) for (const tls of [false, true]) requests.push([url, { host }, tls]);
      requests.push([url, {}, false]);
    }
    const expected = (url: string, headers: Record<string, string>, tls: boolean, policy: 'header' | string | false): string => {
      const host = policy === 'header' ? (headers.host === undefined ? '' : normalizeHost(headers.host, tls)) : policy === false ? '' : policy;
      return host + url;
    };
    // Twice over, interleaving caches of three host policies: the second round is answered from memory.
    for (let round = 0; round < 2; round++) {
      for (const [url, headers, tls] of requests) {
        assert.equal(primaryKey(fakeRequest(url, headers, tls), byHeader), expected(url, headers, tls, 'header'));
        assert.equal(primaryKey(fakeRequest(url, headers, tls), fixed), expected(url, headers, tls, 'fixed.test'));
        assert.equal(primaryKey(fakeRequest(url, headers, tls), none), expected(url, headers, tls, false));
      }
    }
  });
});

describe('variantKey', () => {
  test('no Vary: the primary key itself', () => {
    assert.equal(variantKey('h/a', [], { 'accept-language': 'fr' }), 'h/a');
  });

  test('different values of a varied header give different keys; others do not matter', () => {
    const fr = variantKey('h/a', ['accept-language'], { 'accept-language': 'fr', cookie: 'a=1' });
    const de = variantKey('h/a', ['accept-language'], { 'accept-language': 'de', cookie: 'a=1' });
    const fr2 = variantKey('h/a', ['accept-language'], { 'accept-language': 'fr', cookie: 'b=2' });
    assert.notEqual(fr, de);
    assert.equal(fr, fr2);
    assert.notEqual(fr, 'h/a');
  });

  test('a missing header is its own variant, and whitespace is normalised', () => {
    const none = variantKey('h/a', ['accept-encoding'], {});
    const gzip = variantKey('h/a', ['accept-encoding'], { 'accept-encoding': 'gzip' });
    assert.notEqual(none, gzip);
    assert.equal(variantKey('h/a', ['accept-encoding'], { 'accept-encoding': 'gzip,   br' }), variantKey('h/a', ['accept-encoding'], { 'accept-encoding': 'gzip, br' }));
  });

  test('two varied headers are both keyed', () => {
    const names = ['accept-language', 'accept-encoding'];
    const a = variantKey('h/a', names, { 'accept-language': 'fr', 'accept-encoding': 'gzip' });
    const b = variantKey('h/a', names, { 'accept-language': 'fr', 'accept-encoding': 'br' });
    assert.notEqual(a, b);
  });
});
