/**
 * `stratacache demo`: everything the cache does, in numbers, in under a minute. Starts an API
 * server and a render app (slow pages that read the API through the data cache and include a
 * shared fragment), three cache nodes in front of the app on free local ports (each lists the
 * others as peers), then drives a burst of traffic, a flush with refetch and an origin outage, and
 * says what happened. Stops everything it started.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache, type StrataCache } from '../cache.js';
import type { CacheStats } from '../stats.js';
import { send } from './client.js';
import type { Io } from './io.js';
import { parseDuration, parseFlags, parseInteger } from './units.js';

export const DEMO_HELP = `usage: stratacache demo [--render-time DURATION] [--requests N]

Starts a render app (slow pages reading an API through the data cache, a shared fragment), three
cache nodes in front of it on free local ports, and plays a burst of traffic, a flush with
refetch and an origin outage. Prints what happened, then stops everything.

  --render-time DURATION  how long a page takes to render (default 200ms)
  --requests N            requests in the burst (default 600)
  -h, --help              this text`;

const HOST = 'shop.example';
const PAGES = 30;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** The origin's counters and its on/off switch. */
interface Origin {
  down: boolean;
  pageRenders: number;
  fragmentRenders: number;
  apiCalls: number;
  version: number;
}

/** The API the pages read: product JSON, 20 ms a call. */
function api(origin: Origin): http.RequestListener {
  return (req, res) => {
    origin.apiCalls++;
    if (origin.down) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      return void res.end('api down');
    }
    const id = /\/products\/(\d+)/.exec(req.url ?? '')?.[1] ?? '0';
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
      res.end(JSON.stringify({ id, name: `Product ${id}`, price: 10 + Number(id) }));
    }, 20);
  };
}

/** The render app a node wraps: pages that take `renderMs`, read the API and include the nav fragment. */
function app(origin: Origin, cache: () => StrataCache, apiUrl: string, renderMs: number) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (origin.down) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      return void res.end('render tier down');
    }
    if (path === '/fragments/nav') {
      origin.fragmentRenders++;
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=300' });
      return void res.end('<nav>Home · Products · Cart</nav>');
    }
    const id = /^\/products\/(\d+)$/.exec(path)?.[1];
    if (id === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
      return void res.end('not found');
    }
    origin.pageRenders++;
    const [product, nav] = await Promise.all([cache().data.fetch(`${apiUrl}/products/${id}`).then((r) => r.json() as Promise<{ name: string; price: number }>), cache().data.fetch('/fragments/nav').then((r) => r.text())]);
    await sleep(renderMs);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'public, max-age=300' });
    res.end(`<!doctype html>${nav}<h1>${product.name}</h1><p>$${product.price}</p><footer>v${origin.version}</footer>`);
  };
}

/** What a burst of traffic got back. */
interface Tally {
  requests: number;
  byStatus: Map<number, number>;
  byCache: Map<string, number>;
  bodies: Set<string>;
  ms: number[];
}

/** Sends `paths` round-robin across `nodes`, `concurrency` at a time, with the site's public Host. */
async function drive(nodes: string[], paths: string[], concurrency: number, agent: http.Agent): Promise<Tally> {
  const tally: Tally = { requests: 0, byStatus: new Map(), byCache: new Map(), bodies: new Set(), ms: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const i = next++;
      const started = performance.now();
      const reply = await send(new URL(paths[i]!, nodes[i % nodes.length]!), { agent, headers: { host: HOST } });
      tally.ms.push(performance.now() - started);
      tally.requests++;
      tally.byStatus.set(reply.status, (tally.byStatus.get(reply.status) ?? 0) + 1);
      const cache = String(reply.headers['x-cache'] ?? '-');
      tally.byCache.set(cache, (tally.byCache.get(cache) ?? 0) + 1);
      tally.bodies.add(reply.body.toString('utf8'));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return tally;
}

function percentile(ms: number[], p: number): string {
  const sorted = [...ms].sort((a, b) => a - b);
  return `${Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0)} ms`;
}

const total = (stats: CacheStats[], field: 'loadsDeduped' | 'peerHits' | 'hits' | 'stale' | 'peerRefetches'): number => sum(stats.map((s) => s[field]));

/** Runs the demo; resolves with the exit status. */
export async function runDemo(argv: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(argv, { 'render-time': { type: 'string' }, requests: { type: 'string' } });
  if (values.help === true) {
    io.out(DEMO_HELP);
    return 0;
  }
  const renderMs = parseDuration('--render-time', values['render-time'] ?? '200ms');
  const requests = parseInteger('--requests', values.requests ?? '600', PAGES);
  const began = performance.now();
  const origin: Origin = { down: false, pageRenders: 0, fragmentRenders: 0, apiCalls: 0, version: 1 };
  const apiServer = await listen(api(origin));
  const servers = await Promise.all([0, 1, 2].map(() => listen(() => {})));
  const nodes = servers.map((s) => s.url);
  const secret = 'stratacache-demo-secret-0123456789';
  const caches = nodes.map((self) => createCache({ gracePeriod: 2_000, errorBackoff: 1_000, peers: { self, nodes, secret, queryTimeout: 1_000 }, data: { defaultTtl: 60_000 }, flush: { hosts: [HOST] } }));
  caches.forEach((cache, i) => servers[i]!.server.on('request', cache.wrap(app(origin, () => cache, apiServer.url, renderMs))));
  // Failures are part of the story (the outage): counted and told, not logged line by line.
  let failures = 0;
  for (const cache of caches) cache.on('error', () => void failures++);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const stats = (): CacheStats[] => caches.map((c) => c.stats());
  try {
    io.out('stratacache demo: three cache nodes in front of a render app');
    io.out(`  render app: pages take ${renderMs} ms, read a product API (${apiServer.url}) through the data cache, and include a shared nav fragment`);
    nodes.forEach((n, i) => io.out(`  node${i + 1}: ${n}  (peers: the other two nodes)`));

    // 1. A burst: every page requested many times, round-robin across the nodes, 48 at a time.
    // Pages picked at random (a fixed seed, so every run is alike), nodes in turn: a load balancer.
    let seed = 7;
    const paths = Array.from({ length: requests }, () => `/products/${(seed = (seed * 48271) % 2147483647) % PAGES}`);
    const burst = await drive(nodes, paths, 48, agent);
    const after1 = stats();
    const renders1 = origin.pageRenders;
    io.out(`\n1. Burst: ${burst.requests} requests for ${PAGES} product pages, spread over the 3 nodes, 48 at a time`);
    io.out(`   origin renders: ${renders1} for ${burst.requests} requests, so ${burst.requests - renders1} renders saved (${((1 - renders1 / burst.requests) * 100).toFixed(1)} %)`);
    io.out(`   coalesced: ${total(after1, 'loadsDeduped')} requests waited for a render already under way instead of starting their own`);
    io.out(`   peer hits: ${total(after1, 'peerHits')} requests were answered with a copy another node had rendered (peer lookups: ${sum(after1.map((s) => s.peerLoads))}, ${sum(after1.map((s) => s.peerMisses))} not there yet, ${sum(after1.map((s) => s.peerErrors + s.peerTimeouts))} failed or too slow)`);
    io.out(`   data cache: ${origin.apiCalls} API calls and ${origin.fragmentRenders} nav fragment render(s) for ${renders1} page renders`);
    io.out(`   answers: ${[...burst.byCache].map(([k, v]) => `${v} ${k}`).join(', ')}; latency p50 ${percentile(burst.ms, 50)}, p99 ${percentile(burst.ms, 99)}`);

    // 2. A publication: /products/1 changed; the flush endpoint of node1 is told to refetch it
    // (under the site's name, an admin host by flush.hosts, so the refetch renders for that site).
    origin.version = 2;
    const before2 = origin.pageRenders;
    const flushed = await send(new URL('/dispatcher/invalidate.cache', nodes[0]!), {
      method: 'POST',
      headers: { 'content-type': 'application/json', host: HOST },
      body: JSON.stringify({ paths: ['/products/1'], refetch: ['/products/1'] }),
    });
    // The refetch runs in the background; wait until every node serves the new version.
    let check: Tally | undefined;
    for (let i = 0; i < 100; i++) {
      await sleep(50);
      check = await drive(nodes, nodes.map(() => '/products/1'), 3, agent);
      if ([...check.bodies].every((b) => b.includes('v2'))) break;
    }
    const reads = await drive(nodes, Array.from({ length: 90 }, () => '/products/1'), 9, agent);
    io.out(`\n2. Flush with refetch: /products/1 was published; node1's flush endpoint answered ${flushed.status} ${flushed.body.toString().trim()}`);
    io.out(`   renders caused by the flush: ${origin.pageRenders - before2} for 3 nodes (${total(stats(), 'peerRefetches')} node(s) took the new page from the node that rendered it); clients were served the old page until then`);
    io.out(`   then ${reads.requests} requests: ${[...reads.byCache].map(([k, v]) => `${v} ${k}`).join(', ')}; ${[...reads.bodies].every((b) => b.includes('v2')) ? 'every one got the new version' : 'some got the old version'}`);

    // 3. An outage: the render app and the API answer 503; a site-wide publication marks everything stale.
    origin.down = true;
    const before3 = { renders: origin.pageRenders, stale: total(stats(), 'stale'), failures };
    await caches[0]!.invalidate('/');
    await sleep(100);
    const outage = await drive(nodes, paths.slice(0, 300), 30, agent);
    const ok = outage.byStatus.get(200) ?? 0;
    io.out(`\n3. Origin outage: the render app and its API answer 503, and a site-wide flush has made every page stale`);
    io.out(`   ${outage.requests} requests: ${ok} answered 200 (${outage.byCache.get('STALE') ?? 0} with the stale copy), ${outage.requests - ok} errors reached a client`);
    io.out(`   stale answers during the outage: ${total(stats(), 'stale') - before3.stale}; origin renders: ${origin.pageRenders - before3.renders}; background refreshes that failed (the stale copies stayed): ${failures - before3.failures}`);
    origin.down = false;

    const s = stats();
    io.out(`\nIn all: ${origin.pageRenders} page renders for ${burst.requests + reads.requests + outage.requests + (check?.requests ?? 0)} requests; hits ${total(s, 'hits')}, peer hits ${total(s, 'peerHits')}, coalesced ${total(s, 'loadsDeduped')}, stale ${total(s, 'stale')}`);
  } finally {
    agent.destroy();
    await Promise.all(servers.map((s) => close(s.server)));
    await Promise.all(caches.map((c) => c.close()));
    await close(apiServer.server);
  }
  io.out(`Stopped the 3 nodes, the render app and the API after ${((performance.now() - began) / 1000).toFixed(1)} s.`);
  return 0;
}
