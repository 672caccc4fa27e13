/**
 * `cache.koa()`: Koa middleware that caches what downstream middleware puts in `ctx.body`
 * (string, Buffer, stream, JSON). Koa itself is not a dependency.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Stream } from 'node:stream';
import type { Engine } from '../engine/types.js';

/** The subset of a Koa context the Koa adapter uses (Koa itself is not a dependency). */
export interface KoaLikeContext {
  req: IncomingMessage;
  res: ServerResponse;
  app: { callback(): (req: IncomingMessage, res: ServerResponse) => unknown };
  respond?: boolean;
  body?: unknown;
  originalUrl?: string;
  request?: { originalUrl?: string };
}
/** Koa middleware signature. */
export type KoaMiddleware = (ctx: KoaLikeContext, next: () => Promise<unknown>) => Promise<void>;

/** Ends a response whose client is gone with Koa's body, as Koa's own respond() would have. */
function endWithoutClient(res: ServerResponse, body: unknown): void {
  if (body instanceof Stream) (body as Stream & { pipe(dest: ServerResponse): unknown }).pipe(res);
  else if (body === undefined || body === null) res.end();
  else if (typeof body === 'string' || Buffer.isBuffer(body)) res.end(body);
  else res.end(JSON.stringify(body));
}

/** Koa middleware over `engine`. */
export function koa(engine: Engine): KoaMiddleware {
  // One `app.callback()` per Koa app, for background renders.
  const callbacks = new WeakMap<object, (req: IncomingMessage, res: ServerResponse) => unknown>();
  const callbackOf = (app: KoaLikeContext['app']): ((req: IncomingMessage, res: ServerResponse) => unknown) => {
    let cb = callbacks.get(app);
    if (cb === undefined) callbacks.set(app, (cb = app.callback()));
    return cb;
  };
  return async (ctx, next) => {
    const received = ctx.req.url;
    // Koa keeps the target as received in originalUrl (ctx.href reads it): it follows the
    // engine's rewrite to the keyed form (see request.ts), so the render agrees with the key.
    const run = (): Promise<unknown> => {
      if (ctx.req.url !== received && ctx.originalUrl === received) {
        ctx.originalUrl = ctx.req.url;
        if (ctx.request !== undefined) ctx.request.originalUrl = ctx.req.url;
      }
      return next();
    };
    const served = await engine.handle(ctx.req, ctx.res, { run, regen: callbackOf(ctx.app), rethrow: true });
    if (served) {
      ctx.respond = false;
      return;
    }
    if (ctx.res.destroyed && !ctx.res.writableEnded) {
      // The client left while the render ran: Koa writes nothing to a closed connection, but
      // the render goes on for the cache and its waiters (capture `outlive`): hand it the body.
      ctx.respond = false;
      endWithoutClient(ctx.res, ctx.body);
      return;
    }
    // Koa leaves a response hanging when a body stream fails after headers were sent; end it
    // so the capture sees the failure and nobody waits on it.
    const body = ctx.body;
    if (body instanceof Stream) body.once('error', () => ctx.res.destroy());
  };
}
