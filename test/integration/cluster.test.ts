/**
 * A cluster of real nodes on 127.0.0.1 in front of one counting origin: a page is rendered once
 * per cluster, not once per node; the strategies, updateLocalCache, Vary, coalescing and the
 * separate-port endpoint behave as documented.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import Koa from 'koa';
import { after, describe, test } from 'node:test';
import { request, sleep } from '../helpers/http.js';
import { HOST, PEER_PATH, SECRET, countingOrigin, kill, lateServer, startCluster, sum, type Node } from '../helpers/cluster.js';
import { Rendezvous } from '../../src/peers/ring.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskStore, createCache, type CacheEvent } from '../../src/index.js';

const get = (base: string, path: string, headers: Record<string, string> = {}) => request(base + path, { headers: { host: HOST, ...headers } });
const urls = Array.from({ length: 100 }, (_, i) => `/page/${i}`);
const three = (nodes: Node[]) => nodes as [Node, Node, Node];

describe('a 3-node cluster, strategy all', () => {
  test('100 distinct URLs requested round-robin on 3 nodes render exactly 100 times', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(3, origin);
    after(() => cluster.close());
    const xcache: Record<string, number> = {};
    for (let i = 0; i < urls.length; i++) {
      for (let j = 0; j < 3; j++) {
        const node = cluster.nodes[(i + j) % 3]!;
        const r = await get(node.url, urls[i]!);
        assert.equal(r.status, 200);
        assert.equal(r.body, `page ${urls[i]}`);
        const x = String(r.headers['x-cache']);
        xcache[x] = (xcache[x] ?? 0) + 1;
        if (x === 'PEER') assert.match(String(r.headers['cache-status']), /hit; detail=peer/);
      }
    }
    assert.equal(origin.total(), 100, `timeouts ${sum(cluster.nodes, 'peerTimeouts')} errors ${sum(cluster.nodes, 'peerErrors')}`);
    assert.deepEqual(xcache, { MISS: 100, PEER: 200 });
    assert.equal(sum(cluster.nodes, 'peerHits'), 200);
    assert.equal(sum(cluster.nodes, 'peerErrors'), 0);
    // updateLocalCache (default): every node now holds every page.
    assert.equal(sum(cluster.nodes, 'entries'), 300);
    const again = await get(cluster.nodes[1]!.url, urls[0]!);
    assert.equal(again.headers['x-cache'], 'HIT');
  });

  test('the same traffic without peers renders 300 times', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(3, origin, { peers: () => null });
    after(() => cluster.close());
    for (let i = 0; i < urls.length; i++) {
      for (let j = 0; j < 3; j++) {
        const r = await get(cluster.nodes[(i + j) % 3]!.url, urls[i]!);
        assert.equal(r.body, `page ${urls[i]}`);
      }
    }
    assert.equal(origin.total(), 300);
    assert.equal(cluster.nodes[0]!.cache.stats().peerLoads, 0);
  });

  test('updateLocalCache: false keeps exactly one copy per key in the cluster', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(3, origin, { peers: (_i, all) => ({ nodes: all, secret: SECRET, updateLocalCache: false }) });
    after(() => cluster.close());
    for (let i = 0; i < urls.length; i++) {
      for (let j = 0; j < 3; j++) assert.equal((await get(cluster.nodes[(i + j) % 3]!.url, urls[i]!)).body, `page ${urls[i]}`);
    }
    assert.equal(origin.total(), 100);
    assert.equal(sum(cluster.nodes, 'entries'), 100);
    // A node without the copy keeps asking its peer.
    const r = await get(cluster.nodes[1]!.url, urls[0]!);
    assert.equal(r.headers['x-cache'], 'PEER');
    assert.equal(sum(cluster.nodes, 'entries'), 100);
  });

  test('concurrent requests for one key on one node send one lookup per peer and are all served', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(3, origin);
    after(() => cluster.close());
    const [a, b, c] = three(cluster.nodes);
    await get(a.url, '/hot');
    const before = a.peerRequests + c.peerRequests;
    const replies = await Promise.all(Array.from({ length: 20 }, () => get(b.url, '/hot')));
    for (const r of replies) {
      assert.equal(r.body, 'page /hot');
      // Waiters on the flight are served the peer's entry; late arrivals find it stored.
      assert.ok(r.headers['x-cache'] === 'PEER' || r.headers['x-cache'] === 'HIT', String(r.headers['x-cache']));
    }
    assert.ok(replies.filter((r) => r.headers['x-cache'] === 'PEER').length >= 1);
    assert.equal(a.peerRequests + c.peerRequests - before, 2); // one flight, asking A and C once each
    assert.equal(origin.total(), 1);
    assert.equal(b.cache.stats().peerLoads, 2);
  });

  test('Vary: a peer resolves the variant from the forwarded headers; another variant is a miss', async () => {
    const origin = countingOrigin(() => ({ vary: 'Accept-Language' }));
    const cluster = await startCluster(3, origin);
    after(() => cluster.close());
    const [a, b, c] = three(cluster.nodes);
    assert.equal((await get(a.url, '/v', { 'accept-language': 'fr' })).body, 'page /v lang=fr');
    const fr = await get(b.url, '/v', { 'accept-language': 'fr' });
    assert.equal(fr.body, 'page /v lang=fr');
    assert.equal(fr.headers['x-cache'], 'PEER');
    const en = await get(c.url, '/v', { 'accept-language': 'en' });
    assert.equal(en.body, 'page /v lang=en');
    assert.equal(en.headers['x-cache'], 'MISS');
    assert.equal(origin.total(), 2);
  });

  test('a page that varies on Cookie is never handed to a request with another cookie', async () => {
    const origin = countingOrigin(() => ({ vary: 'Cookie' }));
    const cluster = await startCluster(2, origin);
    after(() => cluster.close());
    const [a, b] = three(cluster.nodes);
    await get(a.url, '/c', { cookie: 'user=1' });
    const other = await get(b.url, '/c', { cookie: 'user=2' });
    assert.equal(other.headers['x-cache'], 'MISS');
    assert.equal(origin.total(), 2);
  });

  test('a request with Authorization never asks peers', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(2, origin);
    after(() => cluster.close());
    const [a, b] = three(cluster.nodes);
    await get(a.url, '/private');
    const r = await get(b.url, '/private', { authorization: 'Bearer x' });
    assert.equal(r.status, 200);
    assert.notEqual(r.headers['x-cache'], 'PEER');
    assert.equal(a.peerRequests, 0);
  });

  test('a peer copy the local invalidation hook refuses is a miss and the page renders locally', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(2, origin);
    after(() => cluster.close());
    const [a, b] = three(cluster.nodes);
    await get(a.url, '/flushed');
    b.cache.engine.invalidation.isInvalidated = (entry) => entry.url === '/flushed';
    const r = await get(b.url, '/flushed');
    assert.equal(r.headers['x-cache'], 'MISS');
    assert.equal(origin.total(), 2);
    assert.equal(b.cache.stats().peerMisses, 1);
    assert.equal(b.cache.stats().peerHits, 0);
  });

  test('a peer answers from its extra stores (disk) when memory no longer has the page', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stratacache-peer-'));
    after(() => rm(dir, { recursive: true, force: true }));
    const origin = countingOrigin();
    const cluster = await startCluster(2, origin, {
      perNode: (i) => (i === 0 ? { stores: [new DiskStore({ dir, maxSize: 1024 * 1024 })] } : {}),
    });
    after(() => cluster.close());
    const [a, b] = three(cluster.nodes);
    await get(a.url, '/on-disk');
    await sleep(50); // the disk write is asynchronous
    a.cache.engine.memory.delete(`${HOST}/on-disk`);
    const r = await get(b.url, '/on-disk');
    assert.equal(r.headers['x-cache'], 'PEER');
    assert.equal(r.body, 'page /on-disk');
    assert.equal(origin.total(), 1);
  });

  test('peer-hit events name the peer; stats list each peer breaker', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(2, origin);
    after(() => cluster.close());
    const [a, b] = three(cluster.nodes);
    const events: CacheEvent[] = [];
    b.cache.on('peer-hit', (e) => events.push(e));
    await get(a.url, '/e');
    await get(b.url, '/e');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.peer, a.url);
    assert.equal(events[0]!.status, 'PEER');
    assert.deepEqual(b.cache.stats().peers, [{ url: a.url, state: 'closed', failures: 0, hits: 1, errors: 0, timeouts: 0 }]);
    const s = b.cache.stats();
    assert.deepEqual([s.peerLoads, s.peerHits, s.peerMisses, s.peerErrors, s.peerTimeouts], [1, 1, 0, 0, 0]);
  });
});

describe('strategy owner', () => {
  const ownerOf = (all: string[], path: string) => new Rendezvous(all).owner(HOST + path)!;

  test('a miss asks only the rendezvous owner (one request), and nobody when this node owns the key', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(3, origin, { peers: (_i, all) => ({ nodes: all, secret: SECRET, strategy: 'owner' }) });
    after(() => cluster.close());
    const all = cluster.nodes.map((n) => n.url);
    const owned = new Map<string, number>(all.map((u) => [u, 0]));
    for (const path of urls) {
      const owner = ownerOf(all, path);
      const before = cluster.nodes.map((n) => n.peerRequests);
      // The owner misses and renders without asking anyone.
      assert.equal((await get(owner, path)).headers['x-cache'], 'MISS');
      for (const node of cluster.nodes) {
        if (node.url === owner) continue;
        const r = await get(node.url, path);
        assert.equal(r.headers['x-cache'], 'PEER');
        assert.equal(r.body, `page ${path}`);
      }
      // Exactly the owner was asked, once by each of the two other nodes.
      const delta = cluster.nodes.map((n, i) => n.peerRequests - before[i]!);
      assert.deepEqual(delta, cluster.nodes.map((n) => (n.url === owner ? 2 : 0)));
      owned.set(owner, owned.get(owner)! + 1);
    }
    assert.equal(origin.total(), 100);
    assert.equal(sum(cluster.nodes, 'peerLoads'), 200);
    for (const [, n] of owned) assert.ok(n > 10, `owner share ${n}`); // keys spread over the three owners
  });

  test('in any order, a node sends at most one peer request per local miss', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(3, origin, { peers: (_i, all) => ({ nodes: all, secret: SECRET, strategy: 'owner' }) });
    after(() => cluster.close());
    for (let i = 0; i < urls.length; i++) {
      for (let j = 0; j < 3; j++) assert.equal((await get(cluster.nodes[(i + j) % 3]!.url, urls[i]!)).body, `page ${urls[i]}`);
    }
    const leaders = sum(cluster.nodes, 'misses') + sum(cluster.nodes, 'peerHits');
    const endpointRequests = cluster.nodes.reduce((a, n) => a + n.peerRequests, 0);
    assert.ok(endpointRequests <= leaders, `${endpointRequests} peer requests for ${leaders} local misses`);
    assert.equal(endpointRequests, sum(cluster.nodes, 'peerLoads'));
    assert.ok(origin.total() < 300);
  });
});

describe('membership and mounting', () => {
  test('cache.peerHandler() serves the protocol on an internal port', async () => {
    const origin = countingOrigin();
    const internal = await Promise.all([lateServer(), lateServer()]);
    const publics = await Promise.all([lateServer(), lateServer()]);
    const nodes = internal.map((s) => s.url);
    const caches = internal.map((s, i) => {
      const cache = createCache({ peers: { self: s.url, nodes, secret: SECRET } });
      s.bind(cache.peerHandler());
      publics[i]!.bind(cache.wrap(origin.handler));
      return cache;
    });
    after(async () => {
      for (const s of [...internal, ...publics]) await kill(s.server);
      for (const c of caches) await c.close();
    });
    await get(publics[0]!.url, '/x');
    const r = await get(publics[1]!.url, '/x');
    assert.equal(r.headers['x-cache'], 'PEER');
    assert.equal(origin.total(), 1);
    const other = await request(`${internal[0]!.url}/x`);
    assert.equal(other.status, 404);
    assert.throws(() => createCache().peerHandler(), /options\.peers\.secret/);
  });

  test('nodes as an async function: a node that joins is used after the next refresh', async () => {
    const origin = countingOrigin();
    const servers = await Promise.all([lateServer(), lateServer()]);
    // B starts alone (its list names only itself); A knows both all along.
    let members = [servers[1]!.url];
    const lists = [async () => servers.map((s) => s.url), async () => members];
    const caches = servers.map((s, i) => createCache({ peers: { self: s.url, nodes: lists[i]!, secret: SECRET, refreshInterval: 100 } }));
    servers.forEach((s, i) => s.bind(caches[i]!.wrap(origin.handler)));
    after(async () => {
      for (const s of servers) await kill(s.server);
      for (const c of caches) await c.close();
    });
    await get(servers[0]!.url, '/m');
    assert.equal((await get(servers[1]!.url, '/m')).headers['x-cache'], 'MISS'); // B does not know A yet
    members = servers.map((s) => s.url);
    for (let i = 0; i < 50 && caches[1]!.stats().peers.length === 0; i++) await sleep(20);
    assert.deepEqual(caches[1]!.stats().peers.map((p) => p.url), [servers[0]!.url]);
    await get(servers[0]!.url, '/m2');
    assert.equal((await get(servers[1]!.url, '/m2')).headers['x-cache'], 'PEER');
  });

  test('the endpoint answers on the same port through the Koa middleware', async () => {
    const origin = countingOrigin();
    const [sa, sb] = await Promise.all([lateServer(), lateServer()]);
    const nodes = [sa.url, sb.url];
    const caches = [sa, sb].map((s) => createCache({ peers: { self: s.url, nodes, secret: SECRET } }));
    [sa, sb].forEach((s, i) => {
      const app = new Koa();
      app.use(caches[i]!.koa());
      app.use((ctx) => {
        origin.renders.set(ctx.url, (origin.renders.get(ctx.url) ?? 0) + 1);
        ctx.set('cache-control', 'max-age=60');
        ctx.body = `koa ${ctx.url}`;
      });
      s.bind(app.callback());
    });
    after(async () => {
      await kill(sa.server);
      await kill(sb.server);
      for (const c of caches) await c.close();
    });
    await get(sa.url, '/k');
    const r = await get(sb.url, '/k');
    assert.equal(r.headers['x-cache'], 'PEER');
    assert.equal(r.body, 'koa /k');
    assert.equal(origin.total(), 1);
    assert.equal((await request(`${sa.url}${PEER_PATH}/r?k=x`)).status, 401);
  });

  test('the endpoint answers on the same port through Express-style middleware too', async () => {
    const origin = countingOrigin();
    const [sa, sb] = await Promise.all([lateServer(), lateServer()]);
    const nodes = [sa.url, sb.url];
    const ca = createCache({ peers: { self: sa.url, nodes, secret: SECRET } });
    const cb = createCache({ peers: { self: sb.url, nodes, secret: SECRET } });
    const mount = (cache: typeof ca) => {
      const m = cache.middleware({ app: origin.handler });
      return (req: http.IncomingMessage, res: http.ServerResponse) => m(req, res, () => origin.handler(req, res));
    };
    sa.bind(mount(ca));
    sb.bind(mount(cb));
    after(async () => {
      await kill(sa.server);
      await kill(sb.server);
      await ca.close();
      await cb.close();
    });
    await get(sa.url, '/mw');
    const r = await get(sb.url, '/mw');
    assert.equal(r.headers['x-cache'], 'PEER');
    assert.equal(r.body, 'page /mw');
    assert.equal(origin.total(), 1);
    const direct = await request(`${sa.url}${PEER_PATH}/r?k=x`);
    assert.equal(direct.status, 401);
  });
});
