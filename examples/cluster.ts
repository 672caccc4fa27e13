/**
 * Three cache nodes in front of one origin, in one process: each node lists the others as
 * peers, requests go round-robin across the nodes, each reached on its own port, and every page
 * is rendered once for the whole cluster. A flush on one node reaches the others. Then one node
 * is stopped: the others keep answering, and its breaker opens.
 *
 * The request's Host is part of the cache key, and each node here is asked under its own
 * host:port: without `key.host` no node would find the others' pages. `key: { host }` keys every
 * page under the site's one public name (see docs/cluster.md, "What Host does to keys in a cluster").
 *
 *   npx tsx examples/cluster.ts
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache, type StrataCache } from 'stratacache';

// One shared secret for the cluster (in production: from the environment, at least 16 characters).
const secret = 'example-cluster-secret-change-me';
const renders = new Map<string, number>();

/** The origin every node wraps: a slow render server. */
async function origin(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  renders.set(req.url ?? '', (renders.get(req.url ?? '') ?? 0) + 1);
  await new Promise((r) => setTimeout(r, 30)); // rendering takes a while
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'public, max-age=60');
  res.end(`<h1>${req.url}</h1>`);
}

// Start the servers first, so every node knows the others' URLs.
const servers = await Promise.all(
  [0, 1, 2].map(async () => {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }),
);
const nodes = servers.map((s) => s.url);
const caches: StrataCache[] = servers.map(({ server, url }) => {
  const cache = createCache({ key: { host: 'www.example.com' }, peers: { self: url, nodes, secret, failureThreshold: 2 } });
  server.on('request', cache.wrap(origin));
  return cache;
});
const name = (url: string): string => `node${nodes.indexOf(url) + 1}`;

function get(node: string, path: string): Promise<string> {
  // Each node is asked under its own Host (127.0.0.1:port); key.host makes them one site.
  return new Promise((resolve, reject) => {
    http
      .get(node + path, (res) => {
        res.resume();
        res.on('end', () => resolve(`${res.statusCode} ${String(res.headers['x-cache']).padEnd(4)}`));
      })
      .on('error', reject);
  });
}

console.log('round-robin over 3 nodes, each page requested once on every node:');
let i = 0;
for (const path of ['/', '/products', '/about']) {
  for (let j = 0; j < 3; j++) {
    const node = nodes[(i + j) % 3]!;
    console.log(`  GET ${path.padEnd(10)} -> ${name(node)}  ${await get(node, path)}`);
  }
  i++;
}
console.log(`origin renders: ${[...renders.values()].reduce((a, b) => a + b, 0)} for ${renders.size} pages`);

console.log('\nnode1 flushes /products; the invalidation reaches node2 and node3:');
await caches[0]!.invalidate('/products');
while (caches.slice(1).some((c) => c.stats().invalidationsReceived < 1)) await new Promise((r) => setTimeout(r, 10));
for (const node of nodes) console.log(`  GET /products  -> ${name(node)}  ${await get(node, '/products')}`);
// Each node answered with its stale copy and refreshes it in the background (the grace period).
for (const node of nodes) while (!(await get(node, '/products')).includes('HIT')) await new Promise((r) => setTimeout(r, 10));
console.log(`  every node has the new /products (origin renders of /products: ${renders.get('/products')})`);

console.log('\nnode3 stops; requests go on to node1 and node2:');
servers[2]!.server.closeAllConnections();
servers[2]!.server.close();
for (const path of ['/new/1', '/new/2', '/new/3', '/new/1']) {
  const node = nodes[i++ % 2]!;
  console.log(`  GET ${path.padEnd(10)} -> ${name(node)}  ${await get(node, path)}`);
}
const s = caches[0]!.stats();
console.log(`node1: peerHits=${s.peerHits} peerMisses=${s.peerMisses} peerErrors=${s.peerErrors}`);
for (const p of s.peers) console.log(`  breaker for ${name(p.url)}: ${p.state}`);
console.log(`origin renders: ${[...renders.values()].reduce((a, b) => a + b, 0)}`);

for (const { server } of servers.slice(0, 2)) {
  server.closeAllConnections();
  server.close();
}
await Promise.all(caches.map((c) => c.close()));
