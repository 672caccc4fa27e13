/**
 * `peers.strategy: 'owner-fetch'` on real nodes on 127.0.0.1: a miss asks only the key's owner,
 * which answers from its tiers or renders the page once for the cluster (coalesced with its own
 * requests); an owner that is down, slow or breaker-open leaves the asker to render; a private
 * page never travels; credentials never leave the node; refreshes and refetches go to the owner.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
import { request, sleep } from '../helpers/http.js';
import { until } from '../helpers/origin.js';
import { HOST, SECRET, lateServer, kill, startCluster, sum, type Node, type Origin } from '../helpers/cluster.js';
import { Rendezvous } from '../../src/peers/ring.js';
import type { PeersOptions } from '../../src/peers/options.js';

const get = (base: string, path: string, headers: Record<string, string> = {}) => request(base + path, { headers: { host: HOST, ...headers } });
const ownerFetch = (extra: Partial<PeersOptions> = {}) => (_i: number, nodes: string[]): PeersOptions => ({ nodes, secret: SECRET, strategy: 'owner-fetch', ...extra });

/** The first of `candidates` whose key the node `owner` owns among `nodes`. */
function ownedBy(owner: string, nodes: string[], candidates: string[]): string {
  const ring = new Rendezvous(nodes);
  const page = candidates.find((p) => ring.owner(`${HOST}${p}`) === owner);
  assert.ok(page !== undefined, `some page is owned by ${owner}`);
  return page;
}
const pages = (prefix: string) => Array.from({ length: 60 }, (_, i) => `${prefix}/p${i}`);

/**
 * A counting origin whose renders can be held (`hold()` ... `release()`), that records the Cookie
 * header each render saw, and answers `/private/*` with `Cache-Control: private` and `/session/*`
 * with a Set-Cookie (each render numbered, so a user can tell whose page they got).
 */
function gatedOrigin(cacheControl = 'max-age=60') {
  const state = { version: 1, held: false, fail: false, waiting: [] as Array<() => void>, cookies: [] as Array<string | undefined>, serial: 0 };
  const renders = new Map<string, number>();
  const origin: Origin & { state: typeof state; hold(): void; release(): void } = {
    state,
    renders,
    total: () => [...renders.values()].reduce((a, b) => a + b, 0),
    hold: () => void (state.held = true),
    release() {
      state.held = false;
      for (const go of state.waiting.splice(0)) go();
    },
    handler(req: IncomingMessage, res: ServerResponse) {
      const url = req.url ?? '';
      renders.set(url, (renders.get(url) ?? 0) + 1);
      state.cookies.push(req.headers.cookie);
      const n = ++state.serial;
      const send = () => {
        if (res.destroyed) return;
        if (state.fail) {
          res.writeHead(503, { 'content-type': 'text/plain' });
          return void res.end('unavailable');
        }
        if (url.startsWith('/private/')) res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'private, max-age=60' });
        else if (url.startsWith('/session/')) res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60', 'set-cookie': `session=s${n}` });
        else res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': cacheControl });
        res.end(`v${state.version} ${url} #${n}`);
      };
      if (state.held) state.waiting.push(send);
      else send();
    },
  };
  return origin;
}

describe("strategy 'owner-fetch'", () => {
  test('100 URLs round-robin on 3 nodes: 100 renders, at most one peer request per local miss', async () => {
    const origin = gatedOrigin();
    const cluster = await startCluster(3, origin, { peers: ownerFetch() });
    after(() => cluster.close());
    const xcache: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      for (let j = 0; j < 3; j++) {
        const r = await get(cluster.nodes[(i + j) % 3]!.url, `/page/${i}`);
        assert.equal(r.status, 200);
        assert.match(r.body, new RegExp(`^v1 /page/${i} #`));
        xcache[String(r.headers['x-cache'])] = (xcache[String(r.headers['x-cache'])] ?? 0) + 1;
      }
    }
    assert.equal(origin.total(), 100, JSON.stringify(xcache));
    // Every render ran on the key's owner: on its own miss (MISS) or for a peer (PEER elsewhere).
    const rendersForPeers = cluster.nodes.reduce((a, n) => a + n.cache.stats().rendersForPeers, 0);
    assert.equal(rendersForPeers + sum(cluster.nodes, 'misses'), 100);
    const localMisses = 300 - sum(cluster.nodes, 'hits');
    assert.ok(sum(cluster.nodes, 'peerLoads') <= localMisses, `${sum(cluster.nodes, 'peerLoads')} peer requests for ${localMisses} local misses`);
    assert.equal(sum(cluster.nodes, 'peerLoads'), cluster.nodes.reduce((a, n) => a + n.cache.stats().ownerFetches, 0));
    assert.equal(sum(cluster.nodes, 'peerErrors') + sum(cluster.nodes, 'peerTimeouts'), 0);
    assert.equal((xcache.PEER ?? 0) + (xcache.HIT ?? 0) + (xcache.MISS ?? 0), 300);
  });

  test('30 concurrent requests for one URL spread round-robin over 3 nodes: exactly 1 origin render', async () => {
    const origin = gatedOrigin();
    const cluster = await startCluster(3, origin, { peers: ownerFetch() });
    after(() => cluster.close());
    const nodes = cluster.nodes;
    const owner = nodes.find((n) => n.url === nodes[0]!.cache.engine.peers!.owner(`${HOST}/hot`))!;
    origin.hold();
    const replies = Promise.all(Array.from({ length: 30 }, (_, i) => get(nodes[i % 3]!.url, '/hot')));
    // Both other nodes' leaders asked the owner (one peer request each), and the render is held.
    assert.ok(await until(() => owner.peerRequests === 2 && origin.total() >= 1), `owner got ${owner.peerRequests} peer requests`);
    origin.release();
    const all = await replies;
    for (const r of all) {
      assert.equal(r.status, 200);
      assert.equal(r.body, 'v1 /hot #1');
    }
    assert.equal(origin.total(), 1);
    assert.equal(owner.cache.stats().rendersForPeers + owner.cache.stats().misses, 1);
    assert.equal(sum(nodes, 'peerLoads'), 2);
  });

  test('the owner killed while it renders: the askers render themselves and answer 200', async () => {
    const origin = gatedOrigin();
    const cluster = await startCluster(3, origin, { peers: ownerFetch() });
    after(() => cluster.close());
    const [a, b, c] = cluster.nodes as [Node, Node, Node];
    const page = ownedBy(c.url, [a.url, b.url, c.url], pages('/killed'));
    origin.hold();
    const replies = Promise.all([get(a.url, page), get(b.url, page)]);
    assert.ok(await until(() => c.peerRequests === 2 && origin.total() === 1), 'both askers wait on the owner');
    await c.kill();
    // Each asker renders on its own now (its client is still waiting).
    assert.ok(await until(() => origin.total() === 3), `renders: ${origin.total()}`);
    origin.release();
    for (const r of await replies) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-cache'], 'MISS');
      assert.match(r.body, new RegExp(`^v1 ${page} #[23]$`));
    }
    assert.equal(sum([a, b], 'peerErrors'), 2);
  });

  test('an owner slower than ownerTimeout, then breaker-open: the asker renders at once, asking nobody', async () => {
    const origin = gatedOrigin();
    // A node that accepts peer requests and never answers them.
    const silent = await lateServer();
    silent.bind(() => {});
    after(() => kill(silent.server));
    const cluster = await startCluster(2, origin, { peers: ownerFetch({ queryTimeout: 100, ownerTimeout: 200, failureThreshold: 1, coolDown: 60_000 }), extraNodes: [silent.url] });
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    const [first, second] = pages('/silent').filter((p) => new Rendezvous([a.url, b.url, silent.url]).owner(`${HOST}${p}`) === silent.url) as [string, string];
    const r1 = await get(a.url, first);
    assert.equal(r1.status, 200);
    assert.equal(r1.headers['x-cache'], 'MISS');
    assert.equal(a.cache.stats().peerTimeouts, 1);
    assert.equal(a.cache.stats().peers.find((p) => p.url === silent.url)?.state, 'open');
    const loads = a.cache.stats().peerLoads;
    const r2 = await get(a.url, second);
    assert.equal(r2.status, 200);
    assert.equal(r2.headers['x-cache'], 'MISS');
    assert.equal(a.cache.stats().peerLoads, loads, 'breaker open: the owner is not asked, nobody is waited for');
    assert.equal(origin.total(), 2);
  });

  for (const kind of ['private', 'session'] as const) {
    test(`the owner's render is ${kind === 'private' ? 'Cache-Control: private' : 'Set-Cookie'}: never sent, never stored on the asker, never served to another user`, async () => {
      const origin = gatedOrigin();
      const cluster = await startCluster(3, origin, { peers: ownerFetch() });
      after(() => cluster.close());
      const [a, b, c] = cluster.nodes as [Node, Node, Node];
      const page = ownedBy(c.url, [a.url, b.url, c.url], pages(`/${kind}`));
      const seen = new Set<string>();
      for (const node of [a, b, a, b]) {
        const r = await get(node.url, page);
        assert.equal(r.status, 200);
        // Rendered for this request (PASS once the asker remembers the page is not storable).
        assert.match(String(r.headers['x-cache']), /^(MISS|PASS)$/);
        assert.ok(!seen.has(r.body), `${r.body} served twice`);
        seen.add(r.body);
        if (kind === 'session') assert.ok(String(r.headers['set-cookie']).includes(r.body.split('#')[1]!), 'the cookie of its own render');
      }
      assert.equal(a.cache.stats().entries + b.cache.stats().entries + c.cache.stats().entries, 0, 'stored nowhere');
      assert.equal(sum([a, b], 'peerHits'), 0);
      // The owner rendered it once for a peer; then it knows the page is not storable and
      // answers "render it yourself" without rendering again (hit-for-miss), as each asker
      // renders its own without asking again.
      assert.equal(c.cache.stats().rendersForPeers, 1);
      assert.equal(origin.total(), 5);
      assert.deepEqual([a.cache.stats().peerLoads, b.cache.stats().peerLoads], [1, 1]);
    });
  }

  test('Cookie and Authorization never reach the owner; their requests never make it render', async () => {
    const origin = gatedOrigin();
    const cluster = await startCluster(3, origin, { peers: ownerFetch() });
    after(() => cluster.close());
    const [a, b, c] = cluster.nodes as [Node, Node, Node];
    const [withCookie, withAuth] = pages('/creds').filter((p) => new Rendezvous([a.url, b.url, c.url]).owner(`${HOST}${p}`) === c.url) as [string, string];
    // A request with a cookie only looks the owner up (it has nothing): it renders on A, with its cookie.
    const r1 = await get(a.url, withCookie, { cookie: 'session=alice' });
    assert.equal(r1.status, 200);
    assert.equal(r1.headers['x-cache'], 'MISS');
    assert.equal(a.cache.stats().peerLoads, 1);
    assert.equal(a.cache.stats().ownerFetches, 0);
    assert.equal(c.cache.stats().rendersForPeers, 0);
    // Authorization asks nobody.
    const r2 = await get(b.url, withAuth, { authorization: 'Bearer secret-token' });
    assert.equal(r2.status, 200);
    assert.equal(b.cache.stats().peerLoads, 0);
    // A plain request for the same page on B: the owner renders it, without anyone's credentials.
    const r3 = await get(b.url, withAuth);
    assert.equal(r3.headers['x-cache'], 'PEER');
    assert.equal(c.cache.stats().rendersForPeers, 1);
    assert.deepEqual(origin.state.cookies, ['session=alice', undefined, undefined]);
  });

  test('a background refresh asks the owner, which renders the new version once', async () => {
    const origin = gatedOrigin();
    const cluster = await startCluster(3, origin, { peers: ownerFetch(), cache: { gracePeriod: 60_000 } });
    after(() => cluster.close());
    const [a, b, c] = cluster.nodes as [Node, Node, Node];
    const page = ownedBy(c.url, [a.url, b.url, c.url], pages('/refresh'));
    assert.equal((await get(a.url, page)).headers['x-cache'], 'PEER');
    assert.equal(c.cache.stats().rendersForPeers, 1);
    origin.state.version = 2;
    // Soft invalidation on A, propagated to the owner: both copies are stale within grace.
    await a.cache.invalidate(page);
    assert.ok(await until(() => c.cache.stats().invalidationsReceived === 1), 'the owner got the invalidation');
    const stale = await get(a.url, page);
    assert.equal(stale.headers['x-cache'], 'STALE');
    assert.match(stale.body, /^v1 /);
    assert.ok(await until(async () => (await get(a.url, page)).body.startsWith('v2 ')), 'A serves the refreshed page');
    assert.equal(origin.total(), 2);
    assert.equal(c.cache.stats().rendersForPeers, 2, 'the refresh was rendered by the owner');
    assert.equal(a.cache.stats().misses, 0);
    // The owner keeps the new version: a third node's miss is a peer hit, no render.
    assert.match((await get(b.url, page)).body, /^v2 /);
    assert.equal(origin.total(), 2);
  });

  test('a flush with a refetch list: each page is rendered once, by its owner', async () => {
    const origin = gatedOrigin();
    const cluster = await startCluster(3, origin, { peers: ownerFetch(), cache: { gracePeriod: 60_000 } });
    after(() => cluster.close());
    const nodes = cluster.nodes;
    const list = ['/content/x/a.html', '/content/x/b.html', '/content/x/c.html'];
    for (const p of list) for (const n of nodes) assert.equal((await get(n.url, p)).status, 200);
    assert.equal(origin.total(), 3);
    origin.state.version = 2;
    const flushed = await request(`${nodes[0]!.url}/dispatcher/invalidate.cache`, {
      method: 'POST',
      headers: { host: HOST, 'cq-action': 'Activate', 'cq-handle': '/content/x', 'content-type': 'text/plain' },
      body: list.join('\n'),
    });
    assert.equal(flushed.status, 200);
    const everywhere = async () => (await Promise.all(nodes.flatMap((n) => list.map((p) => get(n.url, p))))).every((r) => r.body.startsWith('v2 '));
    assert.ok(await until(everywhere, 10_000), 'every node serves v2');
    assert.equal(origin.total(), 6, `renders: ${JSON.stringify([...origin.renders])}`);
    for (const p of list) assert.equal(origin.renders.get(p), 2, p);
  });

  test("the owner's render fails: its old copy comes back as the asker's stale-if-error fallback", async () => {
    const origin = gatedOrigin('max-age=1, stale-if-error=60');
    const cluster = await startCluster(2, origin, { peers: ownerFetch() });
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    const page = ownedBy(a.url, [a.url, b.url], pages('/fails'));
    assert.equal((await get(a.url, page)).headers['x-cache'], 'MISS');
    await sleep(1_100); // the owner's copy goes stale (max-age=1)
    origin.state.fail = true;
    const res = await get(b.url, page);
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-cache'], 'STALE');
    assert.match(res.body, new RegExp(`^v1 ${page} #1$`));
    // The owner tried once for the peer, then the asker once for its own client.
    assert.equal(a.cache.stats().rendersForPeers, 1);
    assert.equal(origin.total(), 3);
    assert.equal(b.cache.stats().entries, 0, 'a stale fallback is not stored');
  });
});
