/**
 * Three cache nodes in front of one origin, in one process: each node lists the others as
 * peers, requests go round-robin across the nodes (as a load balancer would send them), and
 * every page is rendered once for the whole cluster. Then one node is stopped: the others keep
 * answering, and its breaker opens.
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
  const cache = createCache({ peers: { self: url, nodes, secret, failureThreshold: 2 } });
  server.on('request', cache.wrap(origin));
  return cache;
});
const name = (url: string): string => `node${nodes.indexOf(url) + 1}`;

function get(node: string, path: string): Promise<string> {
  // Every node sees the same public Host, as behind a load balancer: it is part of the key.
  return new Promise((resolve, reject) => {
    http
      .get(node + path, { headers: { host: 'www.example.com' } }, (res) => {
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
