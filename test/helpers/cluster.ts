/**
 * Test helpers for clusters: several real nodes on 127.0.0.1, each its own http server with
 * cache.wrap() around one shared counting origin handler, configured with each other's URLs
 * once they listen. Counts the peer-protocol requests each node's endpoint receives.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache, type StrataCache } from '../../src/index.js';
import type { CacheOptions } from '../../src/options/types.js';
import type { PeersOptions } from '../../src/peers/options.js';

/** The shared test secret. */
export const SECRET = 'test-secret-0123456789abcdef';
/** The Host every client request carries, as behind a load balancer (the key's host part). */
export const HOST = 'www.example.test';
export const PEER_PATH = '/_stratacache/peer';

/** An origin that counts renders per URL. */
export interface Origin {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  renders: Map<string, number>;
  total(): number;
}

/** A counting origin: `page <url>`, fresh for a minute, optional extra headers per request. */
export function countingOrigin(extra: (req: IncomingMessage) => Record<string, string> = () => ({})): Origin {
  const renders = new Map<string, number>();
  return {
    renders,
    total: () => [...renders.values()].reduce((a, b) => a + b, 0),
    handler(req, res) {
      const url = req.url ?? '';
      renders.set(url, (renders.get(url) ?? 0) + 1);
      const body = `page ${url}${req.headers['accept-language'] ? ` lang=${req.headers['accept-language']}` : ''}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60', ...extra(req) });
      res.end(body);
    },
  };
}

/** One running node. */
export interface Node {
  url: string;
  server: http.Server;
  cache: StrataCache;
  /** Peer-protocol requests this node's endpoint received. */
  peerRequests: number;
  /** Closes the server and destroys its connections (a crash, from the cluster's point of view). */
  kill(): Promise<void>;
}

/** A listening server whose handler is bound later. */
export async function lateServer(): Promise<{ server: http.Server; url: string; bind(h: http.RequestListener): void }> {
  let handler: http.RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, bind: (h) => (handler = h) };
}

/** Closes a server and every connection to it. */
export function kill(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/**
 * Starts `count` nodes around `origin`. `peers(i, urls)` gives node i's peers options (without
 * self); `null` disables peers. `extraNodes` are URLs of foreign servers added to every node's list.
 */
export async function startCluster(
  count: number,
  origin: Origin,
  options: {
    peers?: (i: number, urls: string[]) => PeersOptions | null;
    cache?: CacheOptions;
    /** Extra cache options for node i (merged over `cache`). */
    perNode?: (i: number) => CacheOptions;
    extraNodes?: string[];
  } = {},
): Promise<{ nodes: Node[]; close(): Promise<void> }> {
  const servers = await Promise.all(Array.from({ length: count }, () => lateServer()));
  const urls = servers.map((s) => s.url);
  const allUrls = [...urls, ...(options.extraNodes ?? [])];
  const nodes: Node[] = servers.map((s, i) => {
    // Exact render counts must not depend on machine load: a generous queryTimeout unless a test sets one.
    const peerOptions = options.peers ? options.peers(i, allUrls) : { nodes: allUrls, secret: SECRET };
    if (peerOptions !== null) peerOptions.queryTimeout ??= 2_000;
    // The site's name is an admin host: tests flush under it as an AEM agent configured with it does.
    const cache = createCache({ flush: { hosts: [HOST] }, ...options.cache, ...options.perNode?.(i), ...(peerOptions === null ? {} : { peers: { self: s.url, ...peerOptions } }) });
    const wrapped = cache.wrap(origin.handler);
    const node: Node = {
      url: s.url,
      server: s.server,
      cache,
      peerRequests: 0,
      kill: () => kill(s.server),
    };
    s.bind((req, res) => {
      if (req.url?.startsWith(PEER_PATH)) node.peerRequests++;
      wrapped(req, res);
    });
    return node;
  });
  return {
    nodes,
    async close() {
      await Promise.all(nodes.map(async (n) => {
        if (n.server.listening) await kill(n.server);
        await n.cache.close();
      }));
    },
  };
}

/** Sums a stats counter over nodes. */
export function sum(nodes: Node[], field: 'entries' | 'peerLoads' | 'peerHits' | 'peerMisses' | 'peerErrors' | 'peerTimeouts' | 'misses' | 'hits'): number {
  return nodes.reduce((a, n) => a + n.cache.stats()[field], 0);
}
