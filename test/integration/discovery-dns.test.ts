/**
 * Members found in DNS, with real nodes on loopback and a real DNS server on loopback (the test's
 * table): a node that appears in DNS becomes a peer at the next resolution and answers peer hits;
 * one removed leaves; DNS failing keeps the last members; SRV records give each node its port, and
 * A records a shared port on several loopback addresses. `self` in the answer is not a peer.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache, type StrataCache } from '../../src/index.js';
import type { MembershipChange } from '../../src/peers/membership.js';
import { HOST, SECRET, countingOrigin, kill, lateServer } from '../helpers/cluster.js';
import { startDns, type DnsServer } from '../helpers/dns.js';
import { request } from '../helpers/http.js';
import { nextError, peersOf, untilPeers } from '../helpers/membership.js';

const SERVICE = '_http._tcp.web.test';
const INTERVAL = 100;
const get = (base: string, path: string) => request(base + path, { headers: { host: HOST } });

/** The SRV record set naming `urls` (each `http://127.0.0.1:<port>`), and an A record per target. */
function publish(dns: DnsServer, urls: readonly string[]): void {
  dns.set(
    SERVICE,
    urls.map((url, i) => ({ type: 'SRV', target: `node-${new URL(url).port}.web.test`, port: Number(new URL(url).port), weight: i })),
  );
  for (const url of urls) dns.set(`node-${new URL(url).port}.web.test`, [{ type: 'A', address: '127.0.0.1' }]);
}

describe('peers.discover: { dns } with SRV records', async () => {
  const dns = await startDns();
  const origin = countingOrigin();
  const servers = await Promise.all([lateServer(), lateServer(), lateServer()]);
  const urls = servers.map((s) => s.url);
  const caches: StrataCache[] = servers.map((s) => {
    const cache = createCache({
      flush: { hosts: [HOST] },
      peers: { self: s.url, secret: SECRET, queryTimeout: 2_000, discover: { dns: SERVICE, servers: [dns.address], interval: INTERVAL, timeout: 500 } },
    });
    s.bind(cache.wrap(origin.handler));
    cache.on('error', () => undefined); // the failures this file provokes are awaited where they matter
    return cache;
  });
  const [a, b, c] = caches as [StrataCache, StrataCache, StrataCache];
  after(async () => {
    await Promise.all(servers.map((s) => kill(s.server)));
    await Promise.all(caches.map((cache) => cache.close()));
    await dns.close();
  });

  test('nodes in DNS find each other, and a page rendered on one is a peer hit on another', async () => {
    publish(dns, [urls[0]!, urls[1]!]);
    await untilPeers(a, [urls[1]!]);
    await untilPeers(b, [urls[0]!]);
    assert.equal((await get(urls[0]!, '/a')).headers['x-cache'], 'MISS');
    const second = await get(urls[1]!, '/a');
    assert.equal(second.headers['x-cache'], 'PEER');
    assert.equal(second.body, 'page /a');
    assert.equal(origin.renders.get('/a'), 1);
    assert.equal(a.stats().members, 2);
  });

  test('a node that appears in DNS joins at the next resolution: a membership event, peer hits flow', async () => {
    const joined = new Promise<MembershipChange>((resolve) => a.once('membership', resolve));
    publish(dns, urls);
    assert.deepEqual(await joined, { joined: [urls[2]], left: [], nodes: [...urls].sort() });
    await untilPeers(b, [urls[0]!, urls[2]!]);
    await untilPeers(c, [urls[0]!, urls[1]!]);
    assert.equal((await get(urls[2]!, '/b')).headers['x-cache'], 'MISS');
    const fromNew = await get(urls[0]!, '/b');
    assert.equal(fromNew.headers['x-cache'], 'PEER');
    assert.equal(origin.renders.get('/b'), 1);
    assert.equal(a.stats().peerJoins, 2);
  });

  test('a node removed from DNS leaves; its peers stop asking it', async () => {
    const left = new Promise<MembershipChange>((resolve) => a.once('membership', resolve));
    publish(dns, [urls[0]!, urls[2]!]);
    assert.deepEqual((await left).left, [urls[1]]);
    await untilPeers(c, [urls[0]!]);
    assert.equal(a.stats().peerLeaves, 1);
    const loadsBefore = a.stats().peerLoads;
    await get(urls[0]!, '/c');
    // Asked: the one peer left (node c), not the removed node.
    assert.equal(a.stats().peerLoads - loadsBefore, 1);
  });

  test('DNS failing or silent keeps the last members; answering again updates them', async () => {
    dns.mode = 'failing';
    const failed = await nextError(a);
    assert.equal(failed.code, 'ERR_PEER');
    assert.match(failed.message, /dns _http\._tcp\.web\.test failed; keeping the previous members/);
    assert.deepEqual(peersOf(a), [urls[2]]);
    dns.mode = 'silent';
    await nextError(a);
    assert.deepEqual(peersOf(a), [urls[2]]);
    // Still a working cluster meanwhile.
    assert.equal((await get(urls[2]!, '/d')).headers['x-cache'], 'MISS');
    assert.equal((await get(urls[0]!, '/d')).headers['x-cache'], 'PEER');
    dns.mode = 'answer';
    publish(dns, urls);
    await untilPeers(a, [urls[1]!, urls[2]!]);
  });
});

describe('peers.discover: { dns, port } with A records', () => {
  test('each address is a node on the one port; this node (self) is recognised in the answer', async (t) => {
    // Three nodes on one port, on three loopback addresses, as pods behind a headless service.
    const first = http.createServer();
    await new Promise<void>((resolve) => first.listen(0, '127.0.0.1', resolve));
    const port = (first.address() as AddressInfo).port;
    const listening: http.Server[] = [first];
    for (const address of ['127.0.0.2', '127.0.0.3']) {
      const server = http.createServer();
      const ok = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, address, () => resolve(true));
      });
      if (!ok) {
        await Promise.all(listening.map((s) => kill(s)));
        return t.skip(`could not listen on ${address}:${port} (a loopback address this machine does not route)`);
      }
      listening.push(server);
    }
    const dns = await startDns();
    dns.set('web.test', ['127.0.0.1', '127.0.0.2', '127.0.0.3'].map((address) => ({ type: 'A' as const, address })));
    const origin = countingOrigin();
    const nodes = ['127.0.0.1', '127.0.0.2', '127.0.0.3'].map((address) => `http://${address}:${port}`);
    const caches = listening.map((server, i) => {
      const cache = createCache({ peers: { self: nodes[i], secret: SECRET, queryTimeout: 2_000, discover: { dns: 'web.test', port, servers: [dns.address], interval: INTERVAL } } });
      server.on('request', cache.wrap(origin.handler));
      return cache;
    });
    after(async () => {
      await Promise.all(listening.map((s) => kill(s)));
      await Promise.all(caches.map((cache) => cache.close()));
      await dns.close();
    });
    for (const [i, cache] of caches.entries()) await untilPeers(cache, nodes.filter((_, j) => j !== i));
    assert.equal((await get(nodes[1]!, '/x')).headers['x-cache'], 'MISS');
    assert.equal((await get(nodes[2]!, '/x')).headers['x-cache'], 'PEER');
    assert.equal(origin.renders.get('/x'), 1);
  });
});
