/**
 * `cache.middleware()`: Express/Connect middleware that caches what later middleware renders.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine, Exchange, Runner } from '../engine/types.js';
import { isPromise } from '../stores/store.js';
import type { NodeHandler } from './node.js';

/** Express/Connect middleware signature. */
export type ConnectMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** Options of `StrataCache.middleware`. */
export interface MiddlewareOptions {
  /**
   * The app to run for background renders (stale-while-revalidate refresh, refetch, priming).
   * Express sets `req.app`, which is used when this is not given; plain Connect needs it.
   * @default req.app
   */
  app?: NodeHandler;
}

/**
 * Hits still pay for the middleware before it; `http.createServer(cache.wrap(app))` answers hits
 * before Express runs.
 */
export function middleware(engine: Engine, options: MiddlewareOptions = {}): ConnectMiddleware {
  const app = options.app;
  if (app !== undefined && typeof app !== 'function') throw new TypeError(`expected options.app to be a function, got ${typeof app}`);
  if (app !== undefined) engine.useRunner(app);
  return (req, res, next) => {
    // A fresh memory hit is written at once, before any Exchange (and its closure) is built.
    if (engine.serveFresh(req, res)) return;
    const regen = app ?? ((req as { app?: unknown }).app as Runner | undefined);
    const ex: Exchange = { run: () => next(), regen: typeof regen === 'function' ? regen : undefined };
    const r = engine.handle(req, res, ex);
    if (isPromise(r)) r.catch((error: unknown) => next(error));
  };
}
