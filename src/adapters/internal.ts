/**
 * The cache's own endpoints, answered before any cache logic: the peer protocol (`peers.path`)
 * and the flush endpoint (`flush.path`), on the app's own port; and the peer endpoint alone, to
 * mount on an internal port.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine, Exchange } from '../engine/types.js';
import type { FlushEndpoint } from '../invalidation/flush-endpoint.js';
import type { PeerEndpoint } from '../peers/endpoint.js';

/** Answers a request when it is for an internal endpoint; undefined when it is not. */
export type InternalRoute = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean> | undefined;

/**
 * The route to the internal endpoints that are configured, or undefined when none is (then the
 * request path carries no check for them). `ours` recognises this cache's own synthetic requests
 * (background renders), which always go to the cache.
 */
export function internalRoute(at: { endpoint: PeerEndpoint | undefined; flush: FlushEndpoint | undefined; ours: (req: IncomingMessage) => boolean }): InternalRoute | undefined {
  const { endpoint, flush, ours } = at;
  if (endpoint === undefined && flush === undefined) return undefined;
  return (req, res) => {
    if (ours(req)) return undefined;
    if (endpoint !== undefined && endpoint.handles(req.url ?? '')) {
      void endpoint.handle(req, res);
      return true;
    }
    if (flush !== undefined && flush.matches(req.url)) return flush.handle(req, res);
    return undefined;
  };
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
