/**
 * Per-route rules: glob compilation, first-match order, method and host filters, validation
 * errors naming the rule, and what the policy does with a rule (ttl where the origin is silent,
 * the origin's Cache-Control winning unless `override`, stale windows, statuses, and what no
 * rule can make storable). Pure: fixed clock, no sockets.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildServePlan } from '../../src/cli/config.js';
import { resolveOptions } from '../../src/options/resolve.js';
import type { CacheOptions } from '../../src/options/types.js';
import { evaluateResponse, type PolicyResponse } from '../../src/policy.js';
import { pathGlob, resolveRules, type RouteRule } from '../../src/rules.js';
import { refused, storable } from '../helpers/policy.js';

const NOW = 1_700_000_000_000;

function judgeAt(url: string, headers: PolicyResponse['headers'], options: CacheOptions, at: { status?: number; host?: string; cookie?: string } = {}) {
  const reqHeaders: Record<string, string> = { host: at.host ?? 'example.test' };
  if (at.cookie !== undefined) reqHeaders.cookie = at.cookie;
  return evaluateResponse({ method: 'GET', url, headers: reqHeaders }, { status: at.status ?? 200, headers }, resolveOptions(options), NOW);
}

describe('rule globs', () => {
  test('* stays in a segment, ** crosses them, a trailing /** also matches the bare prefix', () => {
    assert.ok(pathGlob('/blog/*').test('/blog/a'));
    assert.ok(!pathGlob('/blog/*').test('/blog/a/b'));
    assert.ok(pathGlob('/blog/**').test('/blog/a/b'));
    assert.ok(pathGlob('/blog/**').test('/blog'));
    assert.ok(!pathGlob('/blog/**').test('/blogs'));
    assert.ok(pathGlob('/**/*.json').test('/a/b/c.json'));
    assert.ok(!pathGlob('/*.html').test('/a/b.html'));
    assert.ok(pathGlob('/a.b').test('/a.b') && !pathGlob('/a.b').test('/aXb'), 'dots are literal');
  });

  test('the first matching rule applies; method and host narrow it; the query is not matched', () => {
    const rules = resolveRules([
      { match: '/api/**', method: 'POST', bypass: true },
      { match: '/api/**', host: '*.example.com', ttl: 1000, name: 'api-sub' },
      { match: '/api/**', ttl: 2000 },
      { match: '/**', ttl: 3000 },
    ])!;
    assert.equal(rules.match('POST', 'x', '/api/a')?.index, 0);
    assert.equal(rules.match('GET', 'www.example.com:8080', '/api/a?x=/b')?.name, 'api-sub');
    assert.equal(rules.match('HEAD', 'WWW.Example.COM', '/api/a')?.name, 'api-sub', 'HEAD counts as GET, hosts are case-insensitive');
    assert.equal(rules.match('GET', 'a.b.example.com', '/api/a')?.ttl, 2000, '* is one label');
    assert.equal(rules.match('GET', 'other.test', '/page?q=/api/x')?.ttl, 3000);
    assert.equal(rules.match('GET', undefined, 'http://h/api/z')?.ttl, 2000, 'absolute-form targets are matched on their path');
    assert.equal(rules.bypasses({ method: 'POST', url: '/api/x', headers: {} }), true);
    assert.equal(rules.bypasses({ method: 'GET', url: '/api/x', headers: {} }), false);
  });

  test('bad rules are refused at construction, naming the rule and the field', () => {
    const refuses = (rules: unknown, pattern: RegExp) => assert.throws(() => resolveOptions({ rules: rules as RouteRule[] }), pattern);
    refuses({}, /expected options.rules to be an array of rules/);
    refuses([{ ttl: 5 }], /options.rules\[0\].match .*path glob/);
    refuses([{ match: '/a' }, { match: '/b', ttl: -1 }], /options.rules\[1\].ttl to be a non-negative integer, got -1/);
    refuses([{ match: '/a', ttl: '10s' }], /options.rules\[0\].ttl .*got '10s'/);
    refuses([{ match: '/a', cacheStatuses: [200, 99] }], /options.rules\[0\].cacheStatuses\[1\]/);
    refuses([{ match: '/a', tags: ['a b'] }], /options.rules\[0\].tags\[0\]/);
    refuses([{ match: '/a', method: [] }], /options.rules\[0\].method/);
    refuses([{ match: '/a', override: 'yes' }], /options.rules\[0\].override to be a boolean/);
    refuses([{ match: '/a', tll: 5 }], /unknown option options.rules\[0\].tll/);
    assert.equal(resolveOptions({}).rules, undefined, 'no rules: nothing is matched per request');
  });
});

describe('rules in the policy', () => {
  const rules: RouteRule[] = [
    { match: '/news/**', ttl: 5_000, staleWhileRevalidate: 2_000, staleIfError: 0 },
    { match: '/forced/**', ttl: 7_000, override: true },
    { match: '/errors/**', ttl: 1_000, cacheStatuses: [200, 500] },
    { match: '/zero/**', ttl: 0 },
  ];

  test('a rule ttl and windows replace the defaults where the origin gives no freshness', () => {
    const v = storable(judgeAt('/news/a', {}, { rules }));
    assert.equal(v.staleAt, NOW + 5_000);
    assert.equal(v.swrUntil, NOW + 7_000);
    assert.equal(v.sieUntil, NOW + 5_000, 'staleIfError 0: only the directive');
    assert.equal(v.rule, '/news/**');
    const other = storable(judgeAt('/other', {}, { rules }));
    assert.equal(other.staleAt, NOW + 60_000, 'no rule: defaultTtl');
    assert.equal(other.rule, undefined);
  });

  test("the origin's Cache-Control wins unless the rule says override", () => {
    // Within a second: the origin's age is computed to the millisecond.
    assert.ok(Math.abs(storable(judgeAt('/news/a', { 'cache-control': 'max-age=100' }, { rules })).staleAt - (NOW + 100_000)) <= 1000);
    assert.ok(Math.abs(storable(judgeAt('/news/a', { 'cache-control': 'max-age=100, stale-while-revalidate=9' }, { rules })).swrUntil - (NOW + 109_000)) <= 1000);
    const forced = storable(judgeAt('/forced/a', { 'cache-control': 'max-age=100, stale-while-revalidate=9' }, { rules }));
    assert.equal(forced.staleAt, NOW + 7_000);
    assert.equal(forced.swrUntil, NOW + 7_000, 'the directive gives way too (the global option is 0)');
    assert.equal(storable(judgeAt('/forced/a', { expires: new Date(NOW - 1000).toUTCString() }, { rules })).staleAt, NOW + 7_000);
  });

  test('override never makes private, no-store, Set-Cookie or a personalised request storable', () => {
    refused(judgeAt('/forced/a', { 'cache-control': 'private, max-age=100' }, { rules }), 'private');
    refused(judgeAt('/forced/a', { 'cache-control': 'no-store' }, { rules }), 'no-store');
    refused(judgeAt('/forced/a', { 'set-cookie': 'a=b' }, { rules }), 'set-cookie');
    refused(judgeAt('/forced/a', {}, { rules }, { cookie: 'session=1' }), 'cookie');
    refused(judgeAt('/news/a', {}, { rules }, { cookie: 'session=1' }), 'cookie');
  });

  test('a rule ttl is capped by maxTtl; ttl 0 stores only explicit freshness', () => {
    assert.equal(storable(judgeAt('/news/a', {}, { rules, maxTtl: 1_000 })).staleAt, NOW + 1_000);
    refused(judgeAt('/zero/a', {}, { rules }), 'expired');
    assert.ok(Math.abs(storable(judgeAt('/zero/a', { 'cache-control': 'max-age=3' }, { rules })).staleAt - (NOW + 3_000)) <= 1000);
  });

  test("a rule's cacheStatuses replace the global list for its paths", () => {
    assert.equal(storable(judgeAt('/errors/a', {}, { rules }, { status: 500 })).staleAt, NOW + 1_000);
    refused(judgeAt('/errors/a', {}, { rules }, { status: 404 }), 'status 404');
    refused(judgeAt('/news/a', {}, { rules }, { status: 500 }), 'status 500');
    storable(judgeAt('/news/a', {}, { rules }, { status: 404 }));
  });
});

test('config files give rule durations with units', () => {
  const plan = buildServePlan({ upstream: 'http://127.0.0.1:1', rules: [{ match: '/a/**', ttl: '5m', staleIfError: '1h', staleWhileRevalidate: '30s', tags: ['a'] }] }, {}, { env: {} });
  assert.deepEqual(plan.cache.rules, [{ match: '/a/**', ttl: 300_000, staleIfError: 3_600_000, staleWhileRevalidate: 30_000, tags: ['a'] }]);
  assert.throws(() => buildServePlan({ upstream: 'http://127.0.0.1:1', rules: [{ match: '/a', ttl: '5 parsecs' }] }, {}, { env: {} }), /config.rules\[0\].ttl/);
});
