/**
 * Local invalidation epochs judge peer copies: a peer's entry older than an invalidation this
 * node applied is refused (nothing stale comes back from a node that was not flushed), and one
 * rendered after it is accepted, so an invalidated page is rendered once for the cluster.
 * (Propagating the invalidation between nodes is not built yet: the test applies it on each.)
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { request } from '../helpers/http.js';
import { HOST, countingOrigin, startCluster } from '../helpers/cluster.js';

const get = (base: string, path: string) => request(base + path, { headers: { host: HOST } });

describe('invalidation epochs and peers', () => {
  test('a peer copy older than the local invalidation is refused; a newer one is accepted', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(2, origin, { cache: { gracePeriod: 0 } });
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    assert.equal((await get(a.url, '/news.html')).headers['x-cache'], 'MISS');
    assert.equal((await get(b.url, '/news.html')).headers['x-cache'], 'PEER');
    assert.equal(origin.total(), 1);

    // The page is published: both nodes invalidate it (as propagation would).
    await a.cache.invalidate('/news');
    await b.cache.invalidate('/news');

    // b's own copy is invalidated and a's copy is older than b's invalidation: b renders.
    const fresh = await get(b.url, '/news.html');
    assert.equal(fresh.headers['x-cache'], 'MISS');
    assert.equal(origin.total(), 2);
    assert.ok(b.cache.stats().peerMisses >= 1, 'the old peer copy was refused');

    // a's copy is invalidated too, and b's copy is newer than a's invalidation: a takes it.
    const fromPeer = await get(a.url, '/news.html');
    assert.equal(fromPeer.headers['x-cache'], 'PEER');
    assert.equal(origin.total(), 2, 'one render for the cluster after the publication');
  });
});
