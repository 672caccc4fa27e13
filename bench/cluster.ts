/**
 * Cluster benchmark (issue 4), in one run:
 *  1. origin renders per distinct URL across a 3-node cluster: every URL is requested once on
 *     each node, round-robin, with peers (strategy 'all', then 'owner') and without;
 *  2. the latency a peer hit adds: the same warmed pages requested on the node that holds them
 *     (local HIT) and on a node that does not (PEER, `updateLocalCache: false` so every request
 *     is a peer hit), interleaved, p50/p99 of each.
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

async function startCluster(peers: Omit<PeersOptions, 'self' | 'nodes' | 'secret'> | null): Promise<Cluster> {
  const servers = await Promise.all(
    [0, 1, 2].map(async () => {
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

async function rendersPerUrl(label: string, peers: Omit<PeersOptions, 'self' | 'nodes' | 'secret'> | null): Promise<void> {
  const cluster = await startCluster(peers);
  renders = 0;
  for (let i = 0; i < URLS; i++) {
    for (let j = 0; j < 3; j++) await get(cluster.urls[(i + j) % 3]!, `/r/${i}`);
  }
  const loads = cluster.caches.reduce((a, c) => a + c.stats().peerLoads, 0);
  console.log(
    `  ${label.padEnd(26)} ${String(renders).padStart(5)} renders for ${URLS} URLs x 3 nodes = ${(renders / URLS).toFixed(2)} per URL, ${(loads / (3 * URLS)).toFixed(2)} peer requests per client request`,
  );
  await cluster.close();
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function peerLatency(): Promise<void> {
  const cluster = await startCluster({ updateLocalCache: false, queryTimeout: 1000 });
  const [a, b] = cluster.urls as [string, string];
  const pages = Array.from({ length: 200 }, (_, i) => `/l/${i}`);
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
  console.log(`  local HIT  p50 ${fmt(quantile(local, 0.5))}  p99 ${fmt(quantile(local, 0.99))}`);
  console.log(`  PEER hit   p50 ${fmt(quantile(peer, 0.5))}  p99 ${fmt(quantile(peer, 0.99))}`);
  console.log(`  added by the peer lookup: p50 +${fmt(quantile(peer, 0.5) - quantile(local, 0.5)).trim()}, p99 +${fmt(quantile(peer, 0.99) - quantile(local, 0.99)).trim()}`);
  const s = cluster.caches[1]!.stats();
  console.log(`  (node B: ${s.peerHits} peer hits, ${s.peerErrors} errors, ${s.peerTimeouts} timeouts; ${renders} renders)`);
  await cluster.close();
}

console.log(`stratacache cluster bench: 3 nodes on 127.0.0.1, one process, ${BODY.length}-byte pages, node ${process.version}\n`);
console.log('1. origin renders per distinct URL (each URL requested once on every node, round-robin)');
await rendersPerUrl('no peers', null);
await rendersPerUrl("peers, strategy 'all'", { strategy: 'all', queryTimeout: 1000 });
await rendersPerUrl("peers, strategy 'owner'", { strategy: 'owner', queryTimeout: 1000 });
console.log(`\n2. latency of a peer hit vs a local hit (${SAMPLES} sequential requests each, keep-alive)`);
await peerLatency();
agent.destroy();
