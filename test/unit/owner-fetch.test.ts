/**
 * `peers.strategy: 'owner-fetch'` without sockets: the option and its `ownerTimeout` (validated
 * at construction), the lookup target that lets the owner render, and what an asker sends
 * (never its credentials; no render at all for a request carrying them).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createCache } from '../../src/index.js';
import { statsTable } from '../../src/cli/stats.js';
import { observedState } from '../../src/observe/metrics.js';
import { resolveOptions } from '../../src/options/resolve.js';
import { DEFAULTS } from '../../src/options/defaults.js';
import { lookupTarget, parseLookupTarget } from '../../src/peers/protocol.js';
import { ownerFetchQuery } from '../../src/engine/owner-fetch.js';

const secret = 'x'.repeat(16);
const path = '/_stratacache/peer';

test("options.peers.strategy 'owner-fetch' and ownerTimeout: defaults and validation naming the field", () => {
  const ok = resolveOptions({ peers: { secret, strategy: 'owner-fetch' } }).peers;
  assert.equal(ok.strategy, 'owner-fetch');
  assert.equal(ok.ownerTimeout, DEFAULTS.peers.ownerTimeout);
  assert.equal(resolveOptions({ peers: { secret, ownerTimeout: 1500 } }).peers.ownerTimeout, 1500);
  // Equal to queryTimeout is the least accepted.
  assert.equal(resolveOptions({ peers: { secret, queryTimeout: 80, ownerTimeout: 80 } }).peers.ownerTimeout, 80);
  const cases: Array<[unknown, RegExp]> = [
    [{ secret, strategy: 'owner_fetch' }, /options\.peers\.strategy to be 'all', 'owner' or 'owner-fetch', got 'owner_fetch'/],
    [{ secret, ownerTimeout: 0 }, /options\.peers\.ownerTimeout/],
    [{ secret, ownerTimeout: '5s' }, /options\.peers\.ownerTimeout to be a positive integer, got '5s'/],
    [{ secret, ownerTimeout: 1.5 }, /options\.peers\.ownerTimeout/],
    [{ secret, queryTimeout: 100, ownerTimeout: 50 }, /options\.peers\.ownerTimeout to be at least peers\.queryTimeout \(100 ms\), got 50/],
  ];
  for (const [peers, message] of cases) assert.throws(() => resolveOptions({ peers } as never), message, JSON.stringify(peers));
  assert.throws(() => resolveOptions({ peers: { secret, queryTimeout: 100, ownerTimeout: 50 } }), RangeError);
});

test('an owner-fetch lookup carries the target and Host, signed with the rest; malformed ones are refused', () => {
  const query = { ns: 'r', key: 'www.example.com/a?b=1', headers: { 'accept-language': 'fr' }, freshAt: 99, fill: { url: '/a?b=1&x=%20y', host: 'www.example.com' } };
  assert.deepEqual(parseLookupTarget(path, lookupTarget(path, query)), query);
  assert.equal(parseLookupTarget(path, `${path}/r?k=a&u=%2Fa`), undefined, 'no Host');
  assert.equal(parseLookupTarget(path, `${path}/r?k=a&u=http%3A%2F%2Fevil%2Fa&a=evil`), undefined, 'not origin-form');
  assert.equal(parseLookupTarget(path, `${path}/r?k=a`)?.fill, undefined);
});

test('what an asker sends: never Cookie or Authorization; a render only for a request without them', () => {
  const sent = { 'accept-language': 'de', cookie: 'session=alice' };
  const plain = ownerFetchQuery({ url: '/p?q=1', headers: { host: 'h.example', 'accept-language': 'de', 'x-tenant': 't1' } }, sent, ['x-tenant']);
  assert.deepEqual(plain, { headers: { 'accept-language': 'de', 'x-tenant': 't1' }, fill: { url: '/p?q=1', host: 'h.example' } });
  const credentials: Array<Record<string, string>> = [{ cookie: 'session=alice' }, { authorization: 'Bearer t' }, { 'proxy-authorization': 'Basic x' }];
  for (const credential of credentials) {
    const q = ownerFetchQuery({ url: '/p', headers: { host: 'h.example', ...credential } }, { ...sent, ...credential }, []);
    assert.equal(q.fill, undefined, JSON.stringify(credential));
    assert.deepEqual(q.headers, { 'accept-language': 'de' });
  }
  // A key computed from a credential header cannot be rendered without it: no render.
  assert.equal(ownerFetchQuery({ url: '/p', headers: { host: 'h' } }, {}, ['authorization']).fill, undefined);
  assert.equal(ownerFetchQuery({ url: '*', headers: { host: 'h' } }, {}, []).fill, undefined);
});

test('stratacache stats shows what owner-fetch sent and rendered for peers', async () => {
  const cache = createCache({ peers: { self: 'http://127.0.0.1:1', nodes: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], secret, strategy: 'owner-fetch' } });
  after(() => cache.close());
  const fresh = statsTable('n', observedState(cache.stats(), cache.data.stats(), []));
  assert.doesNotMatch(fresh, /owner-fetch/);
  const busy = statsTable('n', observedState({ ...cache.stats(), ownerFetches: 3, rendersForPeers: 2 }, cache.data.stats(), []));
  assert.match(busy, /owner-fetch\s+3 sent, 2 pages rendered here for peers/);
});
