/**
 * `cache.wrap(handler)`: any `(req, res)` handler (sync or async, an Express or Koa app's
 * listener included) behind the cache; hits are answered before it runs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import type { Engine, Exchange } from '../engine/types.js';
import { answerError } from '../serve.js';
import { steadyShapes } from '../shapes.js';
import { isPromise } from '../stores/store.js';

const debug = createDebug('stratacache:adapter');

/** Any Node request handler, sync or async. */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** Wraps `handler`; the wrapped function is also what background renders run. */
export function wrap(engine: Engine, handler: NodeHandler): (req: IncomingMessage, res: ServerResponse) => void {
  if (typeof handler !== 'function') throw new TypeError(`expected handler to be a function, got ${typeof handler}`);
  // An Express app's renders would otherwise slow every hit (shapes.ts).
  const ex: Exchange = { run: steadyShapes(handler) };
  const wrapped = (req: IncomingMessage, res: ServerResponse): void => {
    const r = engine.handle(req, res, ex);
    if (isPromise(r)) r.catch((error: unknown) => internalError(res, error));
  };
  ex.regen = wrapped;
  engine.useRunner(wrapped);
  return wrapped;
}

/** An error escaped the engine (a bug): answer 500, or cut a response already started. */
export function internalError(res: ServerResponse, error: unknown): void {
  debug('internal error: %O', error);
  if (!answerError(res, 500)) res.destroy();
}
