/**
 * Namespaces of the data cache (issue 24): `cache.data.namespace(name)` has the same get / fetch
 * / delete over keys of its own, and `clear()` drops the whole namespace (nested ones too) on
 * every node through the invalidation propagation, with no key scan on the other nodes: tested
 * on one node, then on two real nodes on 127.0.0.1 (peers).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { createCache, DataNamespace } from '../../src/index.js';
import { closedAfterFile, listen } from '../helpers/http.js';
import { countingOrigin, startCluster, type Node } from '../helpers/cluster.js';
import { until } from '../helpers/origin.js';

const tracked = closedAfterFile();

/** A loader factory: each call of `load(name)` answers `<name> v<n>`, n counting that name's loads. */
function versions(): { load: (name: string) => () => string; count: (name: string) => number } {
  const counts = new Map<string, number>();
  return {
    load: (name) => () => {
      const n = (counts.get(name) ?? 0) + 1;
      counts.set(name, n);
      return `${name} v${n}`;
    },
    count: (name) => counts.get(name) ?? 0,
  };
}

describe('cache.data.namespace on one node', () => {
  test('get / delete over prefixed keys; clear() drops the namespace and its nested ones, nothing else', async () => {
    const cache = createCache();
    tracked.caches.push(cache);
    const v = versions();
    const user42 = cache.data.namespace('user:42');
    const posts = user42.namespace('posts');
    assert.ok(user42 instanceof DataNamespace);
    assert.equal(posts.name, 'user:42:posts');
    assert.equal(await user42.get('profile', v.load('profile 42')), 'profile 42 v1');
    assert.equal(await cache.data.get('user:42:profile', v.load('other')), 'profile 42 v1', 'the namespace prefixes its keys with <name>:');
    assert.equal(await posts.get('list', v.load('posts 42')), 'posts 42 v1');
    assert.equal(await cache.data.namespace('user:43').get('profile', v.load('profile 43')), 'profile 43 v1');
    assert.equal(await cache.data.get('global', v.load('global')), 'global v1');

    assert.equal(user42.delete('profile'), true);
    assert.equal(await user42.get('profile', v.load('profile 42')), 'profile 42 v2');

    user42.clear();
    assert.equal(await user42.get('profile', v.load('profile 42')), 'profile 42 v3');
    assert.equal(await posts.get('list', v.load('posts 42')), 'posts 42 v2', 'nested namespace cleared too');
    assert.equal(await cache.data.namespace('user:43').get('profile', v.load('profile 43')), 'profile 43 v1', 'another namespace untouched');
    assert.equal(await cache.data.get('global', v.load('global')), 'global v1');

    posts.clear();
    assert.equal(await posts.get('list', v.load('posts 42')), 'posts 42 v3');
    assert.equal(await user42.get('profile', v.load('profile 42')), 'profile 42 v3', 'clearing a nested namespace leaves its parent');
    assert.throws(() => cache.data.namespace('has space'), /namespace name/);
    assert.throws(() => user42.namespace(''), /namespace name/);
  });

  test('clear() is hard: a cleared value is not served even on a loader error inside staleIfError', async () => {
    const cache = createCache();
    tracked.caches.push(cache);
    const ns = cache.data.namespace('tenant:a');
    assert.equal(await ns.get('k', () => 'old', { ttl: 0, staleIfError: 60_000 }), 'old');
    assert.equal(await ns.get('k', () => Promise.reject(new Error('down')), { staleIfError: 60_000 }), 'old', 'stale-if-error before clear()');
    ns.clear();
    await assert.rejects(ns.get('k', () => Promise.reject(new Error('down')), { staleIfError: 60_000 }), /down/);
  });

  test('fetch in a namespace: an entry of its own, cleared with the namespace', async () => {
    let hits = 0;
    const api = await listen((_req, res) => {
      hits++;
      res.setHeader('cache-control', 'max-age=60');
      res.end(`api ${hits}`);
    });
    tracked.servers.push(api);
    const cache = createCache();
    tracked.caches.push(cache);
    const ns = cache.data.namespace('tenant:b');
    assert.equal((await ns.fetch(`${api.url}/x`)).text(), 'api 1');
    assert.equal((await ns.fetch(`${api.url}/x`)).cache, 'HIT');
    assert.equal((await cache.data.fetch(`${api.url}/x`)).text(), 'api 2', 'the namespace keeps its own entry');
    ns.clear();
    const again = await ns.fetch(`${api.url}/x`);
    assert.equal(again.cache, 'MISS');
    assert.equal(again.text(), 'api 3');
    assert.equal((await cache.data.fetch(`${api.url}/x`)).cache, 'HIT', 'the entry outside the namespace stays');
  });
});

describe('cache.data.namespace on two nodes', { timeout: 20_000 }, () => {
  test('clear() on one node invalidates the namespace on the other, through the invalidation propagation', async () => {
    const cluster = await startCluster(2, countingOrigin());
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    const v = versions();
    const onA = a.cache.data.namespace('user:42');
    const onB = b.cache.data.namespace('user:42');
    assert.equal(await onB.get('profile', v.load('profile')), 'profile v1');
    assert.equal(await onB.get('cart', v.load('cart')), 'cart v1');
    assert.equal(await b.cache.data.namespace('user:43').get('profile', v.load('other')), 'other v1');
    assert.equal(await onA.get('profile', v.load('profile')), 'profile v1', 'A took B’s copy (peer namespace d)');
    assert.equal(v.count('profile'), 1);

    onA.clear();
    assert.equal(await until(() => b.cache.stats().invalidationsReceived === 1), true, 'B got the record');
    assert.equal(b.cache.data.stats().entries, 1, 'B dropped the namespace’s two values, kept user:43’s');
    assert.equal(await onB.get('profile', v.load('profile')), 'profile v2');
    assert.equal(await onB.get('cart', v.load('cart')), 'cart v2');
    assert.equal(await b.cache.data.namespace('user:43').get('profile', v.load('other')), 'other v1');
    assert.equal(await onA.get('profile', v.load('profile')), 'profile v2', 'A refused its own old copy and took B’s new one');
    assert.equal(v.count('profile'), 2);
  });
});

describe('examples/data-cache.ts', () => {
  test('runs as docs/data-cache.md shows it', { timeout: 60_000 }, async () => {
    const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(tsx, ['examples/data-cache.ts'], { timeout: 60_000 });
    assert.deepEqual(stdout.trim().split('\n'), [
      'token: token-1',
      'report v1',
      'after the soft timeout: report v1',
      'hard timeout: ERR_DATA_TIMEOUT',
      'after clear: {"name":"Ada Lovelace"}',
      'loads 7, soft timeouts 1, hard timeouts 1',
    ]);
  });
});
