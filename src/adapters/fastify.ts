/**
 * The Fastify adapter: a plugin (fastify-plugin style, so it is not encapsulated) whose
 * `onRequest` hook answers hits before body parsing, validation and the route handler, and lets
 * misses run the route while the capture on `reply.raw` stores what it sends. Fastify itself is
 * not a dependency: the plugin only needs the few members typed below.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine, Exchange, Runner } from '../engine/types.js';
import { isPromise } from '../stores/store.js';
import { internalError } from './node.js';

/** The part of a Fastify request the plugin uses. */
export interface FastifyLikeRequest {
  raw: IncomingMessage;
}

/** The part of a Fastify reply the plugin uses. */
export interface FastifyLikeReply {
  raw: ServerResponse;
  hijack(): unknown;
}

/** Fastify's hook `done` callback. */
export type FastifyDone = (error?: Error) => void;

/** The part of a Fastify instance the plugin uses (Fastify 5). */
export interface FastifyLikeInstance {
  addHook(name: 'onRequest', hook: (request: FastifyLikeRequest, reply: FastifyLikeReply, done: FastifyDone) => void): unknown;
  /** The server's request handler (router lookup, then the whole request lifecycle). */
  routing(req: IncomingMessage, res: ServerResponse): void;
}

/** What `cache.fastify()` returns: a plugin for `app.register()`. */
export type FastifyCachePlugin = (instance: FastifyLikeInstance, options: unknown, done: FastifyDone) => void;

/**
 * Requests sent back through the router by the plugin itself: a cold HEAD is routed again as a
 * GET (see the hook), and the second pass must render, not look up the cache again.
 */
const rerouted = new WeakSet<IncomingMessage>();

/**
 * Builds the plugin over `engine`.
 *
 * Where it hooks: `onRequest` is Fastify's first hook (the route was looked up, nothing else ran),
 * so a hit costs the router lookup and the request/reply objects, not body parsing, validation,
 * the handler, serialization or `onSend`. A hit is written to `reply.raw` and the reply hijacked;
 * `onResponse` hooks and request logging still run.
 *
 * Why `fastify.routing` and not `fastify.inject` for background renders (stale-while-revalidate,
 * refetch, priming, data-cache sub-requests): the engine marks its own synthetic request to know
 * it when it comes back through the hook; `routing(req, res)` runs that very request object
 * through the router and every hook, while `inject` would build its own request (the mark lost)
 * and go through light-my-request's fake socket on top.
 */
export function fastifyPlugin(engine: Engine): FastifyCachePlugin {
  const plugin = (instance: FastifyLikeInstance, _options: unknown, done: FastifyDone): void => {
    const regen: Runner = (req, res) => instance.routing(req, res);
    engine.useRunner(regen);
    instance.addHook('onRequest', (request, reply, next) => {
      const req = request.raw;
      if (rerouted.has(req)) {
        rerouted.delete(req);
        next();
        return;
      }
      // A fresh memory hit is written at once, before any Exchange (and its closures) is built:
      // the hot path of a warm cache allocates nothing here.
      if (engine.serveFresh(req, reply.raw)) {
        reply.hijack();
        return;
      }
      const method = req.method;
      const ex: Exchange = {
        regen,
        run: (r, res) => {
          // The engine renders a HEAD miss as GET to store the body, but Fastify routed this
          // request as HEAD already (its HEAD route drops the body): route it again as a GET.
          // The response still carries no body to the client (Node knows the request was HEAD).
          if (method === 'HEAD' && r.method === 'GET') {
            reply.hijack();
            rerouted.add(r);
            instance.routing(r, res);
            return;
          }
          next();
        },
      };
      const served = engine.handle(req, reply.raw, ex);
      if (served === true) reply.hijack();
      else if (isPromise(served)) {
        served.then(
          (hit) => void (hit && reply.hijack()),
          (error: unknown) => internalError(reply.raw, error),
        );
      }
    });
    done();
  };
  // What fastify-plugin sets: skip encapsulation, so the hook applies to the instance the plugin
  // is registered on and its children (register it inside a scope to cache only that scope).
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'stratacache',
    [Symbol.for('plugin-meta')]: { name: 'stratacache', fastify: '5.x' },
  });
  return plugin;
}
