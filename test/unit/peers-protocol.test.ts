import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPeerTarget, lookupTarget, parseLookupTarget } from '../../src/peers/protocol.js';
import { assertDocumentedDefaults } from '../helpers/defaults.js';
import { resolveOptions } from '../../src/options/resolve.js';
import { DEFAULTS } from '../../src/options/defaults.js';

const path = '/_stratacache/peer';

test('a lookup target round-trips key, freshness and headers', () => {
  const query = { ns: 'r', key: 'www.example.com/a?b=1&c=2\nx-key:v', headers: { 'accept-language': 'fr, en;q=0.5', 'x-odd': 'a:b&c=d' }, freshAt: 1234 };
  const target = lookupTarget(path, query);
  assert.ok(target.startsWith(`${path}/r?`));
  assert.deepEqual(parseLookupTarget(path, target), query);
  assert.deepEqual(parseLookupTarget(path, `${path}/d?k=x`), { ns: 'd', key: 'x', headers: {}, freshAt: undefined });
});

test('malformed lookups are refused', () => {
  for (const bad of [`${path}/r`, `${path}/r?x=1`, `${path}/r?k=`, `${path}/rr?k=a`, `${path}/R?k=a`, `${path}?k=a`, `${path}/r?k=a&f=soon`, `${path}/r?k=a&h=novalue`, `${path}/r?k=a&h=bad%20name:v`]) {
    assert.equal(parseLookupTarget(path, bad), undefined, bad);
  }
});

test('only the endpoint path itself and what is under it are peer targets', () => {
  assert.equal(isPeerTarget(path, path), true);
  assert.equal(isPeerTarget(path, `${path}/r?k=a`), true);
  assert.equal(isPeerTarget(path, `${path}?x`), true);
  assert.equal(isPeerTarget(path, `${path}x/r`), false);
  assert.equal(isPeerTarget(path, '/page'), false);
});

test('options.peers: defaults, and errors naming the field', () => {
  const none = resolveOptions({}).peers;
  assert.equal(none.enabled, false);
  assert.equal(none.queryTimeout, DEFAULTS.peers.queryTimeout);
  assert.equal(none.maxEntrySize, DEFAULTS.maxEntrySize + 256 * 1024);
  const secret = 'x'.repeat(16);
  const ok = resolveOptions({ peers: { self: 'http://a:1/', nodes: ['http://a:1', 'http://b:2/'], secret } }).peers;
  assert.deepEqual(ok.nodes, ['http://a:1', 'http://b:2']);
  assert.equal(ok.self, 'http://a:1');
  assert.equal(ok.enabled, true);
  assert.equal(ok.strategy, 'all');
  assert.equal(ok.updateLocalCache, true);
  const cases: Array<[unknown, RegExp]> = [
    [{ nodes: ['http://a:1'], self: 'http://a:1' }, /options\.peers\.secret/],
    [{ nodes: ['http://a:1'], secret }, /options\.peers\.self/],
    [{ nodes: () => [], secret }, /options\.peers\.self/],
    [{ secret: 'short' }, /options\.peers\.secret to be at least 16/],
    [{ nodes: ['ftp://a'], self: 'http://a:1', secret }, /options\.peers\.nodes\[0\]/],
    [{ nodes: 'http://a', secret }, /options\.peers\.nodes/],
    [{ secret, queryTimeout: 'fast' }, /options\.peers\.queryTimeout to be a positive integer, got 'fast'/],
    [{ secret, fetchTimeout: 0 }, /options\.peers\.fetchTimeout/],
    [{ secret, strategy: 'random' }, /options\.peers\.strategy/],
    [{ secret, updateLocalCache: 'yes' }, /options\.peers\.updateLocalCache/],
    [{ secret, maxConcurrent: 0 }, /options\.peers\.maxConcurrent/],
    [{ secret, failureThreshold: 1.5 }, /options\.peers\.failureThreshold/],
    [{ secret, coolDown: -1 }, /options\.peers\.coolDown/],
    [{ secret, path: 'peer' }, /options\.peers\.path/],
    [{ secret, path: '/peer/' }, /options\.peers\.path/],
    [{ secret, maxEntrySize: 10 }, /options\.peers\.maxEntrySize/],
    [{ secret, refreshInterval: 5 }, /options\.peers\.refreshInterval/],
    [{ secret, bogus: 1 }, /unknown option options\.peers\.bogus/],
    ['yes', /options\.peers to be an object/],
  ];
  for (const [peers, message] of cases) assert.throws(() => resolveOptions({ peers } as never), message, JSON.stringify(peers));
});

test('every PeersOptions field documents a @default equal to DEFAULTS.peers', () => {
  assertDocumentedDefaults('peers/options.ts', 'PeersOptions', DEFAULTS.peers, 'options.peers');
});
