/**
 * The operator console and Prometheus metrics of a cache node in a small cluster: the site on one
 * port, the console and /metrics on an internal admin port, a second node as peer, and a third
 * peer that is down (its breaker opens). Traffic keeps flowing so the charts move.
 *
 *   npx tsx examples/console.ts            # site on PORT (3000), admin on ADMIN_PORT (9000), Ctrl-C to stop
 *   npx tsx examples/console.ts --check    # free ports, some traffic and a flush, prints what the console reports, exits
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache } from 'stratacache';

const check = process.argv.includes('--check');
const secret = 'example-console-secret-change-me';
let renders = 0;

async function origin(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  renders++;
  await new Promise((r) => setTimeout(r, 20 + Math.random() * 60)); // a render server
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', req.url?.startsWith('/account') ? 'private' : 'public, max-age=30');
  res.setHeader('surrogate-key', `page ${req.url?.split('/')[1] ?? ''}`);
  res.end(`<h1>${req.url}</h1>`);
}

async function listen(server: http.Server, port: number): Promise<string> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const site = http.createServer();
const peer = http.createServer();
const siteUrl = await listen(site, check ? 0 : Number(process.env.PORT ?? 3000));
const peerUrl = await listen(peer, 0);
const downUrl = 'http://127.0.0.1:9'; // nobody listens there: a node that is down
const nodes = [siteUrl, peerUrl, downUrl];

// Flushes stay on this node here (invalidation.propagate: false): the console shows its own refetches.
const invalidation = { propagate: false };
const cache = createCache({ flush: { token: process.env.FLUSH_TOKEN }, peers: { self: siteUrl, nodes, secret, failureThreshold: 2 }, invalidation });
const other = createCache({ peers: { self: peerUrl, nodes, secret, failureThreshold: 2 }, invalidation });
site.on('request', cache.wrap(origin));
peer.on('request', other.wrap(origin));

// The admin port: the console under /console/, the metrics for Prometheus under /metrics.
const consoleHandler = cache.consoleHandler();
const metrics = cache.metricsHandler();
const admin = http.createServer((req, res) => {
  if (req.url === '/metrics') return metrics(req, res);
  if (req.url?.startsWith('/console')) {
    req.url = req.url.slice('/console'.length) || '/';
    return consoleHandler(req, res);
  }
  res.writeHead(302, { location: '/console/' }).end();
});
const adminUrl = await listen(admin, check ? 0 : Number(process.env.ADMIN_PORT ?? 9000));
console.log(`site on ${siteUrl}/, console on ${adminUrl}/console/, metrics on ${adminUrl}/metrics`);

const paths = ['/', '/products', '/products/1', '/products/2', '/about', '/news', '/account'];
async function traffic(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    // Mostly popular pages, some of them first seen on the peer node.
    const path = paths[Math.floor(Math.random() ** 2 * paths.length)]!;
    const base = Math.random() < 0.2 ? peerUrl : siteUrl;
    await fetch(base + path).then((r) => r.arrayBuffer());
  }
}

if (check) {
  await traffic(40);
  await cache.invalidate('/products', { refetch: ['/products'] });
  type State = {
    stats: { hits: number; misses: number; peers: Array<{ url: string; state: string }> };
    events: Array<{ kind: string; outcome: string; target: string }>;
  };
  let state: State;
  for (let i = 0; ; i++) {
    state = (await (await fetch(`${adminUrl}/console/stats.json`)).json()) as State;
    if (state.events.some((e) => e.kind === 'refetch') || i === 100) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(`console: ${state.stats.hits} hits, ${state.stats.misses} misses`);
  for (const p of state.stats.peers) console.log(`  peer ${p.url === downUrl ? 'down' : 'up'}: breaker ${p.state}`);
  for (const e of state.events) console.log(`  ${e.kind} ${e.outcome} ${e.target}`);
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  console.log(text.split('\n').find((l) => l.startsWith('stratacache_requests_total{status="hit"}')));
  for (const s of [site, peer, admin]) {
    s.closeAllConnections();
    s.close();
  }
  await Promise.all([cache.close(), other.close()]);
} else {
  // A steady trickle, a flush now and then.
  setInterval(() => void traffic(8), 1000);
  setInterval(() => void cache.invalidate(paths[Math.floor(Math.random() * paths.length)]!, { refetch: true }), 20_000);
}
