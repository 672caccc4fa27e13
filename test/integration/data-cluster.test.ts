/**
 * The data cache in a cluster of real nodes on 127.0.0.1 (peer namespace `d`): a value, an API
 * response or an internal sub-request is loaded once per cluster, not once per node; a local
 * delete or tag invalidation is never undone by a peer's older copy; a killed node, a node
 * answering garbage and a wrong secret only make the load local, counted.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
import { request, sleep } from '../helpers/http.js';
import { HOST, SECRET, countingOrigin, kill, lateServer, startCluster, type Node, type Origin } from '../helpers/cluster.js';
import { encodeEntry, type Entry, type StrataCache } from '../../src/index.js';
import { REPLY_SIGNATURE_HEADER, SIGNATURE_HEADER, replyMac } from '../../src/peers/auth.js';
import { testEntry } from '../helpers/entry.js';

const KEYS = Array.from({ length: 30 }, (_, i) => `item:${i}`);
/** The request a relative sub-request is made for: every node sees the same Host, as behind a load balancer. */
const onHost = { headers: { host: HOST } } as IncomingMessage;

/** A loader factory counting its calls per key; the value says which call produced it. */
function countingLoader(): { calls: Map<string, number>; total(): number; load(key: string): () => Promise<string> } {
  const calls = new Map<string, number>();
  return {
    calls,
    total: () => [...calls.values()].reduce((a, b) => a + b, 0),
    load: (key) => async () => {
      const n = (calls.get(key) ?? 0) + 1;
      calls.set(key, n);
      return `${key} v${n}`;
    },
  };
}

/** Polls (real time) until `check` holds, for background work. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await sleep(10);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Sums a data-cache counter over nodes. */
function dataSum(nodes: Node[], field: 'peerLoads' | 'peerHits' | 'peerMisses' | 'peerErrors' | 'peerTimeouts' | 'entries' | 'loads'): number {
  return nodes.reduce((a, n) => a + n.cache.data.stats()[field], 0);
}

/** An API server counting requests per URL (`page <url>`, max-age=60). */
async function countingApi(): Promise<Origin & { url: string }> {
  const origin = countingOrigin();
  const s = await lateServer();
  s.bind(origin.handler);
  after(() => kill(s.server));
  return { ...origin, url: s.url };
}

/**
 * An origin whose `/page/<key>` renders read `cache.data.get(<key>)` on the node serving them
 * (found by the local port), and whose other paths are the counting origin (sub-request targets).
 */
function pageOrigin(loader: ReturnType<typeof countingLoader>): Origin & { caches: Map<number, StrataCache> } {
  const base = countingOrigin();
  const caches = new Map<number, StrataCache>();
  return {
    ...base,
    caches,
    handler(req: IncomingMessage, res: ServerResponse) {
      const url = req.url ?? '';
      if (!url.startsWith('/page/')) return base.handler(req, res);
      base.renders.set(url, (base.renders.get(url) ?? 0) + 1);
      const key = url.slice('/page/'.length);
      const cache = caches.get(req.socket.localPort ?? 0)!;
      void cache.data.get(key, loader.load(key)).then((value) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
        res.end(`page ${value}`);
      });
    },
  };
}

describe('data entries shared through a 3-node cluster', () => {
  test(`${KEYS.length} values loaded round-robin on 3 nodes: each loader runs once (3 times each without peers)`, async () => {
    for (const withPeers of [true, false]) {
      const loader = countingLoader();
      const cluster = await startCluster(3, countingOrigin(), withPeers ? {} : { peers: () => null });
      try {
        for (let i = 0; i < KEYS.length; i++) {
          for (let j = 0; j < 3; j++) {
            const node = cluster.nodes[(i + j) % 3]!;
            // Without peers each node runs the loader: the j-th node gets the j-th load.
            assert.equal(await node.cache.data.get(KEYS[i]!, loader.load(KEYS[i]!)), `${KEYS[i]} v${withPeers ? 1 : j + 1}`);
          }
        }
        if (withPeers) {
          assert.equal(loader.total(), KEYS.length, `peer errors ${dataSum(cluster.nodes, 'peerErrors')} timeouts ${dataSum(cluster.nodes, 'peerTimeouts')}`);
          for (const key of KEYS) assert.equal(loader.calls.get(key), 1, key);
          assert.equal(dataSum(cluster.nodes, 'peerHits'), 2 * KEYS.length);
          assert.equal(dataSum(cluster.nodes, 'peerErrors'), 0);
          // updateLocalCache (default): every node holds every value.
          assert.equal(dataSum(cluster.nodes, 'entries'), 3 * KEYS.length);
          // Data lookups are counted by the data cache, not as response-cache peer traffic.
          assert.equal(cluster.nodes.reduce((a, n) => a + n.cache.stats().peerLoads, 0), 0);
        } else {
          assert.equal(loader.total(), 3 * KEYS.length);
          assert.equal(dataSum(cluster.nodes, 'peerLoads'), 0);
        }
      } finally {
        await cluster.close();
      }
    }
  });

  test('absolute URLs fetched round-robin: the API answers once per URL, the others get PEER', async () => {
    const api = await countingApi();
    const cluster = await startCluster(3, countingOrigin());
    after(() => cluster.close());
    const seen: Record<string, number> = {};
    for (let i = 0; i < KEYS.length; i++) {
      for (let j = 0; j < 3; j++) {
        const r = await cluster.nodes[(i + j) % 3]!.cache.data.fetch(`${api.url}/api/${i}`);
        assert.equal(r.status, 200);
        assert.equal(r.text(), `page /api/${i}`);
        seen[r.cache] = (seen[r.cache] ?? 0) + 1;
      }
    }
    assert.equal(api.total(), KEYS.length);
    assert.deepEqual(seen, { MISS: KEYS.length, PEER: 2 * KEYS.length });
    // A copy is stored locally: the next fetch on a node that got it from a peer is a local hit.
    assert.equal((await cluster.nodes[1]!.cache.data.fetch(`${api.url}/api/0`)).cache, 'HIT');
  });

  test('internal sub-requests fetched round-robin: the app renders each path once', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(3, origin);
    after(() => cluster.close());
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 3; j++) {
        const r = await cluster.nodes[(i + j) % 3]!.cache.data.fetch(`/fragment/${i}`, { req: onHost });
        assert.equal(r.text(), `page /fragment/${i}`);
        assert.equal(r.cache, j === 0 ? 'MISS' : 'PEER');
      }
    }
    assert.equal(origin.total(), 10);
    assert.equal(dataSum(cluster.nodes, 'peerHits'), 20);
  });

  test('the same traffic without peers requests every URL 3 times', async () => {
    const api = await countingApi();
    const cluster = await startCluster(3, countingOrigin(), { peers: () => null });
    after(() => cluster.close());
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 3; j++) await cluster.nodes[(i + j) % 3]!.cache.data.fetch(`${api.url}/api/${i}`);
    }
    assert.equal(api.total(), 30);
  });

  test('updateLocalCache: false keeps exactly one copy per key in the cluster', async () => {
    const loader = countingLoader();
    const api = await countingApi();
    const cluster = await startCluster(3, countingOrigin(), { peers: (_i, all) => ({ nodes: all, secret: SECRET, updateLocalCache: false }) });
    after(() => cluster.close());
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 3; j++) {
        const node = cluster.nodes[(i + j) % 3]!;
        assert.equal(await node.cache.data.get(KEYS[i]!, loader.load(KEYS[i]!)), `${KEYS[i]} v1`);
        assert.equal((await node.cache.data.fetch(`${api.url}/api/${i}`)).text(), `page /api/${i}`);
      }
    }
    assert.equal(loader.total(), 10);
    assert.equal(api.total(), 10);
    assert.equal(dataSum(cluster.nodes, 'entries'), 20);
    // A node without the copy keeps asking its peer.
    const again = await cluster.nodes[1]!.cache.data.fetch(`${api.url}/api/0`);
    assert.equal(again.cache, 'PEER');
    assert.equal(dataSum(cluster.nodes, 'entries'), 20);
  });

  test("strategy 'owner': at most one peer lookup per data miss", async () => {
    const loader = countingLoader();
    const cluster = await startCluster(3, countingOrigin(), { peers: (_i, all) => ({ nodes: all, secret: SECRET, strategy: 'owner' }) });
    after(() => cluster.close());
    for (let i = 0; i < KEYS.length; i++) {
      for (let j = 0; j < 3; j++) await cluster.nodes[(i + j) % 3]!.cache.data.get(KEYS[i]!, loader.load(KEYS[i]!));
    }
    for (const node of cluster.nodes) {
      const s = node.cache.data.stats();
      assert.ok(s.peerLoads <= s.misses, `${s.peerLoads} lookups for ${s.misses} misses`);
    }
    assert.ok(dataSum(cluster.nodes, 'peerHits') > 0);
    assert.ok(loader.total() < 3 * KEYS.length, `${loader.total()} loads`);
  });

  test('concurrent gets of one key on one node: one flight, one lookup per peer, no load', async () => {
    const loader = countingLoader();
    const cluster = await startCluster(3, countingOrigin());
    after(() => cluster.close());
    const [a, b, c] = cluster.nodes as [Node, Node, Node];
    await a.cache.data.get('hot', loader.load('hot'));
    const before = a.peerRequests + c.peerRequests;
    const values = await Promise.all(Array.from({ length: 20 }, () => b.cache.data.get('hot', loader.load('hot'))));
    assert.deepEqual(new Set(values), new Set(['hot v1']));
    assert.equal(a.peerRequests + c.peerRequests - before, 2);
    assert.equal(loader.total(), 1);
    assert.equal(b.cache.data.stats().loadsDeduped, 19);
  });
});

describe('local rules judge a peer copy of data', () => {
  test('a value deleted on node A is not brought back from node B; A loads it again', async () => {
    const loader = countingLoader();
    const cluster = await startCluster(2, countingOrigin());
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    assert.equal(await b.cache.data.get('k', loader.load('k')), 'k v1');
    assert.equal(await a.cache.data.get('k', loader.load('k')), 'k v1'); // from B
    assert.equal(loader.total(), 1);
    assert.equal(a.cache.data.delete('k'), true);
    // B still holds v1 (deletes are local); A refuses it and runs the loader.
    const misses = a.cache.data.stats().peerMisses;
    assert.equal(await a.cache.data.get('k', loader.load('k')), 'k v2');
    assert.equal(loader.total(), 2);
    assert.equal(a.cache.data.stats().peerMisses, misses + 1);
    assert.equal(a.cache.data.stats().peerHits, 1);
  });

  test('with updateLocalCache: false too (the delete leaves nothing local, the record refuses the copy)', async () => {
    const loader = countingLoader();
    const cluster = await startCluster(2, countingOrigin(), { peers: (_i, all) => ({ nodes: all, secret: SECRET, updateLocalCache: false }) });
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    await b.cache.data.get('k', loader.load('k'));
    assert.equal(await a.cache.data.get('k', loader.load('k')), 'k v1');
    assert.equal(a.cache.data.delete('k'), false); // nothing stored on A
    assert.equal(await a.cache.data.get('k', loader.load('k')), 'k v2');
    assert.equal(loader.total(), 2);
  });

  test('a URL and a path deleted on A: their responses are fetched again, not taken from B', async () => {
    const api = await countingApi();
    const origin = countingOrigin();
    const cluster = await startCluster(2, origin);
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    await b.cache.data.fetch(`${api.url}/api/x`, { headers: { accept: 'text/plain' } });
    await b.cache.data.fetch('/fragment/x', { req: onHost });
    assert.equal((await a.cache.data.fetch(`${api.url}/api/x`, { headers: { accept: 'text/plain' } })).cache, 'PEER');
    assert.equal((await a.cache.data.fetch('/fragment/x', { req: onHost })).cache, 'PEER');
    a.cache.data.delete(`${api.url}/api/x`); // every set of request headers of the URL
    a.cache.data.delete('/fragment/x'); // the path on any host
    assert.equal((await a.cache.data.fetch(`${api.url}/api/x`, { headers: { accept: 'text/plain' } })).cache, 'MISS');
    assert.equal((await a.cache.data.fetch('/fragment/x', { req: onHost })).cache, 'MISS');
    assert.equal(api.total(), 2);
    assert.equal(origin.renders.get('/fragment/x'), 2);
  });

  test('a tag invalidated on A refuses B’s older tagged value', async () => {
    const loader = countingLoader();
    const cluster = await startCluster(2, countingOrigin());
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    await b.cache.data.get('t', loader.load('t'), { tags: ['product'] });
    await a.cache.invalidateTags(['product']);
    assert.equal(await a.cache.data.get('t', loader.load('t'), { tags: ['product'] }), 't v2');
    assert.equal(loader.total(), 2);
  });

  test('a node does not ship a value it holds from before an invalidation of its tags', async () => {
    const loader = countingLoader();
    const cluster = await startCluster(2, countingOrigin());
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    await b.cache.data.get('t', loader.load('t'), { tags: ['product'] });
    await b.cache.invalidateTags(['product']); // on B only: A knows nothing of it
    assert.equal(await a.cache.data.get('t', loader.load('t'), { tags: ['product'] }), 't v2');
    assert.equal(a.cache.data.stats().peerMisses, 1); // B answered "not here"
    assert.equal(a.cache.data.stats().peerHits, 0);
  });

  test('a fetch sending authorization or cookie never asks peers (its key carries the credentials)', async () => {
    const api = await countingApi();
    const cluster = await startCluster(2, countingOrigin());
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    const credentials: Array<Record<string, string>> = [{ authorization: 'Bearer x' }, { cookie: 'session=1' }];
    for (const headers of credentials) {
      await b.cache.data.fetch(`${api.url}/private`, { headers });
      assert.equal((await a.cache.data.fetch(`${api.url}/private`, { headers })).cache, 'MISS');
    }
    assert.equal(api.total(), 4);
    assert.equal(a.cache.data.stats().peerLoads + b.cache.data.stats().peerLoads, 0);
    assert.equal(a.peerRequests + b.peerRequests, 0);
  });

  test('a page rendered from a peer value depends on it: deleting the key on that node makes the page stale', async () => {
    for (const updateLocalCache of [true, false]) {
      const loader = countingLoader();
      const origin = pageOrigin(loader);
      const cluster = await startCluster(2, origin, { peers: (_i, all) => ({ nodes: all, secret: SECRET, updateLocalCache }) });
      try {
        for (const n of cluster.nodes) origin.caches.set(Number(new URL(n.url).port), n.cache);
        const [a, b] = cluster.nodes as [Node, Node];
        await b.cache.data.get('product', loader.load('product'));
        // The page is rendered on A (B has no page to give) and reads the value from B.
        const first = await request(`${a.url}/page/product`, { headers: { host: HOST } });
        assert.equal(first.body, 'page product v1');
        assert.equal(a.cache.data.stats().peerHits, 1);
        assert.equal((await request(`${a.url}/page/product`, { headers: { host: HOST } })).headers['x-cache'], 'HIT');
        a.cache.data.delete('product');
        const after = await request(`${a.url}/page/product`, { headers: { host: HOST } });
        assert.equal(after.headers['x-cache'], 'STALE', `updateLocalCache ${updateLocalCache}`);
        assert.equal(loader.total(), 1);
      } finally {
        await cluster.close();
      }
    }
  });
  test('updateLocalCache: false: a page read a peer value; a different value later loaded here makes it stale', async () => {
    const loader = countingLoader();
    const origin = pageOrigin(loader);
    const cluster = await startCluster(2, origin, { peers: (_i, all) => ({ nodes: all, secret: SECRET, updateLocalCache: false }) });
    after(() => cluster.close());
    for (const n of cluster.nodes) origin.caches.set(Number(new URL(n.url).port), n.cache);
    const [a, b] = cluster.nodes as [Node, Node];
    await b.cache.data.get('price', loader.load('price'));
    assert.equal((await request(`${a.url}/page/price`, { headers: { host: HOST } })).body, 'page price v1');
    b.cache.data.delete('price'); // gone from the cluster: A's next get loads it here
    assert.equal(await a.cache.data.get('price', loader.load('price')), 'price v2');
    assert.equal((await request(`${a.url}/page/price`, { headers: { host: HOST } })).headers['x-cache'], 'STALE');
  });

  test('a peer value inside its stale-while-revalidate window is answered at once and refreshed here in the background', async () => {
    const loader = countingLoader();
    const cluster = await startCluster(2, countingOrigin());
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    const life = { ttl: 1, staleWhileRevalidate: 60_000 };
    assert.equal(await b.cache.data.get('w', loader.load('w'), life), 'w v1');
    await sleep(10); // past its 1 ms of freshness
    assert.equal(await a.cache.data.get('w', loader.load('w'), life), 'w v1');
    assert.equal(a.cache.data.stats().stale, 1);
    await until(() => loader.total() === 2, 'the background refresh on A');
    await until(() => a.cache.data.stats().entries === 1 && a.cache.data.stats().loads === 1, 'the refreshed value stored on A');
    assert.equal(await a.cache.data.get('w', loader.load('w'), { ...life, ttl: 60_000 }), 'w v2');
  });
});

describe('faults do not break data loads', () => {
  test('a killed node: loads run locally, counted, and the breaker opens', async () => {
    const loader = countingLoader();
    const cluster = await startCluster(3, countingOrigin(), { peers: (_i, all) => ({ nodes: all, secret: SECRET, failureThreshold: 2 }) });
    after(() => cluster.close());
    const [a, , c] = cluster.nodes as [Node, Node, Node];
    await c.kill();
    for (let i = 0; i < 5; i++) assert.equal(await a.cache.data.get(`dead:${i}`, loader.load(`dead:${i}`)), `dead:${i} v1`);
    assert.equal(loader.total(), 5);
    const s = a.cache.data.stats();
    assert.equal(s.peerErrors, 2, 'two failures open the breaker; later loads do not ask C');
    assert.equal(s.peerMisses, 5); // B answered "not here" every time
    assert.equal(a.cache.stats().peers.find((p) => p.url === c.url)?.state, 'open');
  });

  describe('a node answering garbage: a miss or an error, counted, loaded locally, never used', () => {
    const now = Date.now();
    const entry = (over: Partial<Entry>): Entry =>
      testEntry({ headers: [['content-type', 'application/json']], body: Buffer.from('"poisoned"'), url: 'g', ...over }, now);
    const cases: Array<{ name: string; body: Buffer; counter: 'peerErrors' | 'peerMisses' }> = [
      { name: 'random bytes, signed', body: Buffer.from('this is not an entry at all'), counter: 'peerErrors' },
      { name: 'a value whose bytes are not the JSON its type says', body: encodeEntry(entry({ body: Buffer.from('{not json') })), counter: 'peerMisses' },
      { name: 'an entry for another key', body: encodeEntry(entry({ url: 'other' })), counter: 'peerMisses' },
      { name: 'an expired entry', body: encodeEntry(entry({ staleAt: now - 1, swrUntil: now - 1, sieUntil: now + 60_000 })), counter: 'peerMisses' },
      { name: 'a value with a status other than 200', body: encodeEntry(entry({ status: 404 })), counter: 'peerMisses' },
    ];
    for (const { name, body, counter } of cases) {
      test(name, async () => {
        const fake = await lateServer();
        let asked = 0;
        fake.bind((req, res) => {
          asked++;
          const sig = replyMac(SECRET, String(req.headers[SIGNATURE_HEADER]), 200).update(body).digest('base64url');
          res.writeHead(200, { 'content-type': 'application/octet-stream', [REPLY_SIGNATURE_HEADER]: sig });
          res.end(body);
        });
        after(() => kill(fake.server));
        const loader = countingLoader();
        const cluster = await startCluster(1, countingOrigin(), { peers: (_i, all) => ({ nodes: all, secret: SECRET, failureThreshold: 100 }), extraNodes: [fake.url] });
        after(() => cluster.close());
        const [a] = cluster.nodes as [Node];
        assert.equal(await a.cache.data.get('g', loader.load('g')), 'g v1');
        assert.equal(asked, 1);
        assert.equal(loader.total(), 1);
        const s = a.cache.data.stats();
        assert.equal(s[counter], 1);
        assert.equal(s.peerHits, 0);
      });
    }
  });

  test('wrong secret: no data changes hands, the loader runs on each side', async () => {
    const loader = countingLoader();
    const cluster = await startCluster(2, countingOrigin(), {
      peers: (i, all) => ({ nodes: all, secret: i === 1 ? 'a-different-secret-0123456789' : SECRET, failureThreshold: 100 }),
    });
    after(() => cluster.close());
    const [a, d] = cluster.nodes as [Node, Node];
    assert.equal(await a.cache.data.get('s', loader.load('s')), 's v1');
    assert.equal(await d.cache.data.get('s', loader.load('s')), 's v2');
    assert.equal(await d.cache.data.get('only-d', loader.load('only-d')), 'only-d v1');
    assert.equal(await a.cache.data.get('only-d', loader.load('only-d')), 'only-d v2');
    assert.equal(loader.total(), 4);
    assert.equal(a.cache.data.stats().peerHits + d.cache.data.stats().peerHits, 0);
    assert.equal(d.cache.data.stats().peerErrors, 2);
    assert.equal(a.cache.data.stats().peerErrors, 2);
  });
});
