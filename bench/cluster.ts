/**
 * Cluster benchmark (issues 4 and 20), in one run:
 *  1. origin renders per distinct URL across 3- and 5-node clusters behind a round-robin load
 *     balancer: every URL is requested once on each node, the first request on a node that
 *     moves one step per URL, with peers (strategy 'all', 'owner', 'owner-fetch') and without;
 *     peer requests per client request and per local miss (a request not answered from the
 *     node's own tiers);
 *  2. the latency a peer hit adds: the same warmed pages requested on the node that holds them
 *     (local HIT) and on a node that does not (PEER, `updateLocalCache: false` so every request
 *     is a peer hit), interleaved, p50/p99 of each; for strategy 'all' (the node asks both other
 *     nodes) and 'owner-fetch' (it asks the owner, which holds the pages).
 *
 * Run: `npx tsx bench/cluster.ts`.
 *
 * Everything (three nodes, the origin and the client) shares one process and event loop, with
 * sequential requests over keep-alive connections: the latencies are end-to-end as a client
 * sees them on an idle machine, including the peer round trip over loopback; they are not a
 * throughput claim. A network between nodes adds its round-trip time to the peer hit.
 *
 * Environment variables (all optional):
 *   BENCH_URLS        distinct URLs in part 1                  (default 300)
 *   BENCH_SAMPLES     latency samples per kind in part 2       (default 2000)
 *   BENCH_BODY_BYTES  body size in bytes                       (default 20480)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache, type StrataCache } from 'stratacache';
import type { PeersOptions } from '../src/peers/options.js';
import { Rendezvous } from '../src/peers/ring.js';

const URLS = Number(process.env.BENCH_URLS ?? 300);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 2000);
const BODY = Buffer.alloc(Number(process.env.BENCH_BODY_BYTES ?? 20480), 'x');
const SECRET = 'bench-cluster-secret-0123456789';
const HOST = 'www.example.com';

let renders = 0;
function origin(_req: http.IncomingMessage, res: http.ServerResponse): void {
  renders++;
  res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=600' });
  res.end(BODY);
}

interface Cluster {
  urls: string[];
  caches: StrataCache[];
  close(): Promise<void>;
}

type BenchPeers = Omit<PeersOptions, 'self' | 'nodes' | 'secret'> | null;

async function startCluster(peers: BenchPeers, size = 3): Promise<Cluster> {
  const servers = await Promise.all(
    Array.from({ length: size }, async () => {
      const server = http.createServer();
      server.keepAliveTimeout = 30_000;
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    }),
  );
  const urls = servers.map((s) => s.url);
  const caches = servers.map(({ server, url }) => {
    const cache = createCache(peers === null ? {} : { peers: { ...peers, self: url, nodes: urls, secret: SECRET } });
    server.on('request', cache.wrap(origin));
    return cache;
  });
  return {
    urls,
    caches,
    async close() {
      for (const { server } of servers) {
        server.closeAllConnections();
        server.close();
      }
      await Promise.all(caches.map((c) => c.close()));
    },
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
function get(base: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(base + path, { agent, headers: { host: HOST } }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => {
          if (res.statusCode !== 200 || bytes !== BODY.length) reject(new Error(`bad reply ${res.statusCode} ${bytes}`));
          else resolve(String(res.headers['x-cache']));
        });
      })
      .on('error', reject);
  });
}

async function rendersPerUrl(label: string, peers: BenchPeers, size: number): Promise<void> {
  const cluster = await startCluster(peers, size);
  renders = 0;
  for (let i = 0; i < URLS; i++) {
    for (let j = 0; j < size; j++) await get(cluster.urls[(i + j) % size]!, `/r/${i}`);
  }
  const total = (f: 'peerLoads' | 'hits' | 'peerErrors' | 'peerTimeouts'): number => cluster.caches.reduce((a, c) => a + c.stats()[f], 0);
  const requests = size * URLS;
  const localMisses = requests - total('hits');
  const failed = total('peerErrors') + total('peerTimeouts');
  console.log(
    `  | ${size} | ${label} | ${(renders / URLS).toFixed(2)} (${renders}) | ${(total('peerLoads') / requests).toFixed(2)} | ${localMisses === 0 ? '-' : (total('peerLoads') / localMisses).toFixed(2)} |${failed === 0 ? '' : ` ${failed} peer errors/timeouts`}`,
  );
  await cluster.close();
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function peerLatency(strategy: 'all' | 'owner-fetch'): Promise<void> {
  const cluster = await startCluster({ updateLocalCache: false, queryTimeout: 1000, strategy });
  const [a, b] = cluster.urls as [string, string];
  // Pages A owns, so that with 'owner-fetch' B asks A (and A never asks anyone).
  const ring = new Rendezvous(cluster.urls);
  const pages: string[] = [];
  for (let i = 0; pages.length < 200; i++) if (ring.owner(`${HOST}/l/${i}`) === a) pages.push(`/l/${i}`);
  renders = 0;
  for (const p of pages) await get(a, p); // A holds every page; B never copies them
  // Warm-up: JIT, connections, both paths.
  for (let i = 0; i < 300; i++) {
    await get(a, pages[i % pages.length]!);
    await get(b, pages[i % pages.length]!);
  }
  const local: number[] = [];
  const peer: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const p = pages[i % pages.length]!;
    // Interleaved, alternating which goes first, so drift on a shared machine hits both alike.
    const order: Array<[string, number[], string]> = i % 2 === 0 ? [[a, local, 'HIT'], [b, peer, 'PEER']] : [[b, peer, 'PEER'], [a, local, 'HIT']];
    for (const [node, into, expected] of order) {
      const t0 = performance.now();
      const status = await get(node, p);
      into.push(performance.now() - t0);
      if (status !== expected) throw new Error(`expected ${expected}, got ${status}`);
    }
  }
  local.sort((x, y) => x - y);
  peer.sort((x, y) => x - y);
  const fmt = (ms: number): string => `${(ms * 1000).toFixed(0).padStart(5)} µs`;
  console.log(`  strategy '${strategy}'`);
  console.log(`  local HIT  p50 ${fmt(quantile(local, 0.5))}  p99 ${fmt(quantile(local, 0.99))}`);
  console.log(`  PEER hit   p50 ${fmt(quantile(peer, 0.5))}  p99 ${fmt(quantile(peer, 0.99))}`);
  console.log(`  added by the peer lookup: p50 +${fmt(quantile(peer, 0.5) - quantile(local, 0.5)).trim()}, p99 +${fmt(quantile(peer, 0.99) - quantile(local, 0.99)).trim()}`);
  const s = cluster.caches[1]!.stats();
  console.log(`  (node B: ${s.peerHits} peer hits, ${s.peerErrors} errors, ${s.peerTimeouts} timeouts; ${renders} renders)`);
  await cluster.close();
}

console.log(`stratacache cluster bench: nodes on 127.0.0.1, one process, ${BODY.length}-byte pages, node ${process.version}\n`);
console.log(`1. origin renders per distinct URL (${URLS} URLs, each requested once on every node, round-robin)\n`);
console.log('  | nodes | peers | origin renders per URL | peer requests per client request | peer requests per local miss |');
console.log('  | --- | --- | --- | --- | --- |');
for (const size of [3, 5]) {
  await rendersPerUrl('none', null, size);
  for (const strategy of ['all', 'owner', 'owner-fetch'] as const) await rendersPerUrl(`\`'${strategy}'\``, { strategy, queryTimeout: 1000 }, size);
}
console.log(`\n2. latency of a peer hit vs a local hit, 3 nodes (${SAMPLES} sequential requests each, keep-alive)`);
await peerLatency('all');
await peerLatency('owner-fetch');
agent.destroy();
