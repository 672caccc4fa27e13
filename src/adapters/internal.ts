/**
 * The cache's own endpoints, answered before any cache logic: the peer protocol (`peers.path`),
 * the flush endpoint (`flush.path`), `PURGE` on any path and the stats endpoint ({@link STATS_PATH}),
 * on the app's own port; and the peer endpoint alone, to mount on an internal port. The admin
 * routes (flush, PURGE, stats) are behind the flush endpoint's guard and exist only with it; they
 * can also be answered alone, on an admin port ({@link adminRoute}).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine, Exchange } from '../engine/types.js';
import { isFlushTarget, type FlushEndpoint } from '../invalidation/flush-endpoint.js';
import { EXPLAIN_PATH } from '../observe/explain.js';
import type { PeerEndpoint } from '../peers/endpoint.js';

/** Where the stats endpoint answers (JSON counters of both caches and the tiers; flush guard). */
export const STATS_PATH = '/_stratacache/stats';

/** What PURGE invalidates, removing at once: one path, or (`PURGE /path/*`) a path and everything under it. */
export type Purge = (target: { path: string; scope: 'resource' | 'tree'; host: string }) => { id: number };

/** Answers a request when it is for an internal endpoint; undefined when it is not. */
export type InternalRoute = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean> | undefined;

/** The admin routes: the flush endpoint, `PURGE` on any path, the stats endpoint. */
export type AdminRoute = 'flush' | 'purge' | 'stats' | 'explain';

/**
 * Which admin route a request is for (the flush endpoint at `flushPath`, PURGE, the stats
 * endpoint), or undefined for any other request. Every GET passes here: the target is parsed only
 * when it can name the stats path (a URL parse costs a hit about 0.3 us; dot segments still reach
 * it, percent-encoded letters never did).
 */
export function adminRouteOf(req: IncomingMessage, flushPath: string): AdminRoute | undefined {
  if (isFlushTarget(req.url, flushPath)) return 'flush';
  // PURGE is never forwarded to the handler (nor upstream), as Varnish and nginx users expect.
  // (Varnish's BAN method cannot reach a Node server: its HTTP parser refuses unknown methods with
  // 400, so a prefix is banned with nginx cache_purge's form, `PURGE /path/*`.)
  if (req.method === 'PURGE') return 'purge';
  const url = req.url ?? '/';
  if ((req.method === 'GET' || req.method === 'HEAD') && url.includes('stats') && pathOf(url) === STATS_PATH) return 'stats';
  if ((req.method === 'GET' || req.method === 'HEAD') && url.includes('explain') && pathOf(url) === EXPLAIN_PATH) return 'explain';
  return undefined;
}

/** What the admin routes act on. */
export interface AdminTargets {
  flush: FlushEndpoint;
  flushPath: string;
  purge: Purge;
  stats: () => unknown;
  /** Explains the URL a request's `url` query parameter names (JSON-serializable). */
  explain: (req: IncomingMessage) => Promise<unknown>;
}

/** Answers a request for an admin route, each behind the flush endpoint's guard; undefined for any other. */
export function adminRoute(at: AdminTargets): InternalRoute {
  const { flush, flushPath, purge, stats, explain } = at;
  return (req, res) => {
    const route = adminRouteOf(req, flushPath);
    if (route === undefined) return undefined;
    if (route === 'flush') return flush.handle(req, res);
    if (route === 'purge') return answerPurge(req, res, { flush, purge });
    if (route === 'explain') return answerGuarded(req, res, flush, () => answerExplain(req, res, explain));
    return answerGuarded(req, res, flush, () => reply(req, res, 200, 'application/json', JSON.stringify(stats())));
  };
}

/**
 * The route to the internal endpoints that are configured, or undefined when none is (then the
 * request path carries no check for them). `ours` recognises this cache's own synthetic requests
 * (background renders), which always go to the cache. `admin` is undefined without a flush
 * endpoint, or when the admin routes are served elsewhere.
 */
export function internalRoute(at: {
  endpoint: PeerEndpoint | undefined;
  admin: InternalRoute | undefined;
  ours: (req: IncomingMessage) => boolean;
}): InternalRoute | undefined {
  const { endpoint, admin, ours } = at;
  if (endpoint === undefined && admin === undefined) return undefined;
  return (req, res) => {
    if (ours(req)) return undefined;
    if (endpoint !== undefined && endpoint.handles(req.url ?? '')) {
      void endpoint.handle(req, res);
      return true;
    }
    return admin?.(req, res);
  };
}

/** The path of a request target (origin-form or absolute-form), without the query. */
function pathOf(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://x').pathname;
  } catch {
    return '';
  }
}

function reply(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string): true {
  req.resume();
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}

/** Runs `allowed` when the flush guard lets the request through; answers its refusal otherwise. */
function answerGuarded(req: IncomingMessage, res: ServerResponse, flush: FlushEndpoint, allowed: () => true): true {
  const refusal = flush.guard(req);
  if (refusal !== undefined) return reply(req, res, refusal.status, 'text/plain', `${refusal.reason}\n`);
  return allowed();
}

/** Explains `?url=` (absolute, or a path on the request's Host): 400 without it, 500 (reported in the body) when it failed. */
function answerExplain(req: IncomingMessage, res: ServerResponse, explain: (req: IncomingMessage) => Promise<unknown>): true {
  const wanted = new URL(req.url ?? '/', 'http://x').searchParams.get('url');
  if (wanted === null || wanted === '' || !(wanted.startsWith('/') || /^https?:\/\/[^/]/i.test(wanted))) return reply(req, res, 400, 'text/plain', 'Bad Request: ?url= needs a path or an http(s) URL\n');
  explain(req).then(
    (answer) => reply(req, res, 200, 'application/json', JSON.stringify(answer)),
    (error: unknown) => reply(req, res, 500, 'text/plain', `explain failed: ${error instanceof Error ? error.message : String(error)}\n`),
  );
  return true;
}

/** PURGE removes the request's path, `PURGE /path/*` the path and everything under it (on every host, every variant). */
function answerPurge(req: IncomingMessage, res: ServerResponse, at: { flush: FlushEndpoint; purge: Purge }): true {
  return answerGuarded(req, res, at.flush, () => {
    const target = pathOf(req.url);
    if (!target.startsWith('/')) return reply(req, res, 400, 'text/plain', 'Bad Request: not a path\n');
    const scope = target.endsWith('/*') || target === '/*' ? 'tree' : 'resource';
    const path = scope === 'tree' ? target.slice(0, -2) || '/' : target;
    const { id } = at.purge({ path, scope, host: req.headers.host ?? '' });
    return reply(req, res, 200, 'text/plain', `${scope === 'tree' ? 'Banned' : 'Purged'} ${path}${scope === 'tree' ? ' and everything under it' : ''} (invalidation #${id})\n`);
  });
}

/** The engine's entry point with the internal endpoints in front of it. */
export function withInternalRoutes(engine: Engine, route: InternalRoute | undefined): Engine {
  if (route === undefined) return engine;
  return {
    handle: (req: IncomingMessage, res: ServerResponse, ex: Exchange) => route(req, res) ?? engine.handle(req, res, ex),
    useRunner: (runner) => engine.useRunner(runner),
    // An endpoint's path is never stored (it is answered before the cache), so it never hits.
    serveFresh: (req, sink) => engine.serveFresh(req, sink),
  };
}

/**
 * The peer endpoint alone (`cache.peerHandler()`): requests outside `peers.path` get 404.
 */
export function peerHandler(endpoint: PeerEndpoint): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (endpoint.handles(req.url ?? '')) {
      void endpoint.handle(req, res);
      return;
    }
    req.resume();
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 9 });
    res.end('Not Found');
  };
}
