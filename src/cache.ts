/**
 * The object {@link createCache} returns: adapters for raw http, Express/Connect and Koa over one
 * engine, stats, events and close.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Stream } from 'node:stream';
import createDebug from 'debug';
import { DataCache } from './data/cache.js';
import { Engine, type CacheEvent, type CacheStats, type Exchange, type RefetchEvent, type Runner } from './engine.js';
import type { CacheError, PeerError } from './errors.js';
import type { InvalidationScope } from './invalidation/epochs.js';
import type { InvalidationRecord } from './invalidation/log.js';
import type { PrimeProgress, RefetchSummary } from './invalidation/refetch.js';
import { resolveOptions, type CacheOptions } from './options.js';
import { consoleHandler, type ConsoleHandler } from './observe/console.js';
import { metricsHandler, observedState, type ObservedState } from './observe/metrics.js';
import { Recorder, sampleOf } from './observe/recent.js';
import { isPromise } from './stores/store.js';

const debug = createDebug('stratacache:adapter');

/** Any Node request handler, sync or async. */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown;
/** Express/Connect middleware signature. */
export type ConnectMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

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

/** Options of {@link StrataCache.middleware}. */
export interface MiddlewareOptions {
  /**
   * The app to run for background renders (stale-while-revalidate refresh, refetch, priming).
   * Express sets `req.app`, which is used when this is not given; plain Connect needs it.
   * @default req.app
   */
  app?: NodeHandler;
}

/** Event names and their payloads. */
export interface CacheEvents {
  hit: [CacheEvent];
  miss: [CacheEvent];
  store: [CacheEvent];
  pass: [CacheEvent];
  stale: [CacheEvent];
  /** An invalidation was applied (API, flush endpoint, tags, or a peer's: `origin: 'remote'`). */
  invalidate: [InvalidationRecord];
  /**
   * A background refetch (flush refetch list, `refetch` option) stored a new entry, rendered
   * here or (with `peer` set) taken from the peer that refetched it for the cluster.
   */
  refetch: [RefetchEvent];
  /** A background refetch failed or stored nothing; the old copy stays (stale-servable). */
  'refetch-error': [RefetchEvent];
  /** A miss was served from a peer's entry (`status: 'PEER'`, `peer`: the peer's base URL). */
  'peer-hit': [CacheEvent];
  /**
   * A peer lookup failed or timed out (the request went on without it, rendered locally), or an
   * invalidation could not be sent to a peer (`invalidation.propagate`; it is retried in order).
   */
  'peer-error': [PeerError];
  error: [CacheError];
}

/** Options of {@link StrataCache.invalidate}. */
export interface InvalidateOptions {
  /**
   * Render again in the background, replacing the old entry when ready (until then the old copy
   * is served): `true` refetches `path` itself, a list refetches those URIs (paths with queries,
   * or absolute http(s) URLs). Concurrency is `refetch.concurrency`.
   * @default false
   */
  refetch?: boolean | readonly string[];
  /**
   * `'tree'`: the resource (`/a/page`, `/a/page.html`, `/a/page.model.json`), everything below
   * it, and auto-invalidation up to `statLevel`. `'resource'`: only the resource itself (the
   * dispatcher's `CQ-Action-Scope: ResourceOnly`).
   * @default 'tree'
   */
  scope?: InvalidationScope;
  /**
   * Remove instead of marking stale: the entries are never served again, not even on origin
   * error (deactivated or deleted content). Auto-invalidation of other entries stays soft.
   * @default false
   */
  hard?: boolean;
}

/** What an invalidation did. */
export interface InvalidateResult {
  /** Its id in this node's invalidation log. */
  id: number;
  /** When it was applied (epoch ms). */
  at: number;
  /** Settles when every background refetch it queued settled (never rejects). */
  refetched: Promise<RefetchSummary>;
}

/** Options of {@link StrataCache.prime}. */
export interface PrimeOptions {
  /** Renders at once. @default refetch.concurrency */
  concurrency?: number;
  /** Host to render paths for (absolute URLs carry their own). @default '' */
  host?: string;
  /** Handler to render with. @default the wrapped handler or app of the last adapter built */
  handler?: NodeHandler;
  /** Called after each URL settles. */
  onProgress?: (progress: PrimeProgress) => void;
}

/** A cache: wrap handlers with it, read its stats, close it. */
export class StrataCache extends EventEmitter<CacheEvents> {
  readonly #engine: Engine;
  /**
   * The data cache: values (`get`) and nested or embedded responses (`fetch`) a handler needs
   * while it renders, with their own lifetimes and byte budget (`options.data`). Reads made
   * while a response renders are recorded: when the data changes, the response becomes stale.
   */
  readonly data: DataCache;
  readonly #koaCallbacks = new WeakMap<object, (req: IncomingMessage, res: ServerResponse) => unknown>();
  /** Recent events and chart samples for the console; started by the first {@link consoleHandler}. */
  #recorder: Recorder | undefined;

  constructor(options: CacheOptions = {}) {
    super();
    this.#engine = new Engine(resolveOptions(options), this);
    this.data = new DataCache(this.#engine, this);
  }

  /**
   * Wraps any `(req, res)` handler (sync or async): hits are answered before it runs.
   * The fastest way to put the cache in front of an app: `http.createServer(cache.wrap(app))`.
   */
  wrap(handler: NodeHandler): (req: IncomingMessage, res: ServerResponse) => void {
    if (typeof handler !== 'function') throw new TypeError(`expected handler to be a function, got ${typeof handler}`);
    const ex: Exchange = { run: handler };
    const wrapped = (req: IncomingMessage, res: ServerResponse): void => {
      const r = this.#engine.handle(req, res, ex);
      if (isPromise(r)) r.catch((error: unknown) => this.#internalError(res, error));
    };
    ex.regen = wrapped;
    this.#engine.useRunner(wrapped);
    return wrapped;
  }

  /**
   * Express/Connect middleware: caches what later middleware renders. Hits still pay for the
   * middleware before it; `http.createServer(cache.wrap(app))` answers hits before Express runs.
   */
  middleware(options: MiddlewareOptions = {}): ConnectMiddleware {
    const app = options.app;
    if (app !== undefined && typeof app !== 'function') throw new TypeError(`expected options.app to be a function, got ${typeof app}`);
    if (app !== undefined) this.#engine.useRunner(app);
    return (req, res, next) => {
      const regen = app ?? ((req as { app?: unknown }).app as Runner | undefined);
      const ex: Exchange = { run: () => next(), regen: typeof regen === 'function' ? regen : undefined };
      const r = this.#engine.handle(req, res, ex);
      if (isPromise(r)) r.catch((error: unknown) => next(error));
    };
  }

  /** Koa middleware: caches what downstream middleware puts in `ctx.body` (string, Buffer, stream, JSON). */
  koa(): KoaMiddleware {
    return async (ctx, next) => {
      const regen = this.#koaCallback(ctx.app);
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
      const served = await this.#engine.handle(ctx.req, ctx.res, { run, regen, rethrow: true });
      if (served) {
        ctx.respond = false;
        return;
      }
      // Koa leaves a response hanging when a body stream fails after headers were sent; end it
      // so the capture sees the failure and nobody waits on it.
      const body = ctx.body;
      if (body instanceof Stream) body.once('error', () => ctx.res.destroy());
    };
  }

  #koaCallback(app: KoaLikeContext['app']): (req: IncomingMessage, res: ServerResponse) => unknown {
    let cb = this.#koaCallbacks.get(app);
    if (cb === undefined) this.#koaCallbacks.set(app, (cb = app.callback()));
    return cb;
  }

  #internalError(res: ServerResponse, error: unknown): void {
    debug('internal error: %O', error);
    if (!res.headersSent) {
      res.statusCode = 500;
      res.end('Internal Server Error');
    } else res.destroy();
  }

  /**
   * The peer endpoint alone, to mount on a separate internal port
   * (`http.createServer(cache.peerHandler()).listen(7001, '10.0.0.5')`) when peers should not
   * reach it through the public one. Requests outside `peers.path` get 404.
   * @throws TypeError when `options.peers.secret` is not set (there is no endpoint).
   */
  peerHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    const endpoint = this.#engine.endpoint;
    if (endpoint === undefined) throw new TypeError('cache.peerHandler() needs options.peers.secret');
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

  /**
   * A `(req, res)` handler answering with every counter and gauge in the Prometheus text format
   * (0.0.4): `http.createServer(cache.metricsHandler()).listen(9464, '10.0.0.5')`, or mount it at
   * `/metrics`. It has no guard of its own: serve it where only the scraper reaches.
   */
  metricsHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return metricsHandler(() => this.#observed());
  }

  /**
   * The operator console: a page with live charts, tiers, peers, recent invalidations and a flush
   * form, and the JSON it polls. Mount it on an internal port or under a path
   * (`app.use('/console', cache.consoleHandler())`); it is behind the flush endpoint's guard
   * (`flush.allowedClients`, and `flush.token` as the password of a browser login). Recent events
   * and chart samples are kept from the first call on.
   * @throws TypeError with `flush: false` (the console shares the flush endpoint's guard).
   */
  consoleHandler(): ConsoleHandler {
    const flush = this.#engine.flushEndpoint;
    if (flush === undefined) throw new TypeError('cache.consoleHandler() needs the flush endpoint: options.flush is false');
    const recorder = (this.#recorder ??= new Recorder(this, () => this.stats()));
    return consoleHandler({
      flush,
      state: () => {
        const observed = this.#observed();
        const at = Date.now();
        return {
          ...observed,
          at,
          name: this.#engine.options.cacheName,
          self: this.#engine.options.peers.self ?? '',
          samples: [...recorder.samples.toArray(), sampleOf(observed.stats, at)],
          events: recorder.events.toArray(),
          flushPath: this.#engine.options.flush?.path ?? '',
        };
      },
    });
  }

  #observed(): ObservedState {
    return observedState(this.stats(), this.data.stats(), this.#engine.options.stores);
  }

  /**
   * Counters: gets, hits, misses, passes, stores, loadsDeduped, stale, errors, entries, bytes;
   * peerLoads, peerHits, peerMisses, peerErrors, peerTimeouts and each peer's breaker (`peers`).
   * The peer counters are the response cache's lookups; the data cache's are in `cache.data.stats()`
   * (the breakers are shared).
   */
  stats(): CacheStats {
    return this.#engine.stats();
  }

  /**
   * Renders `url` in the background (no client connection) and stores it; resolves to whether
   * something was stored. Uses the last adapter that served a request, unless `handler` is given.
   */
  async refresh(url: string, options: { host?: string; handler?: NodeHandler } = {}): Promise<boolean> {
    const entry = await this.#engine.regenerate({ url, host: options.host ?? '' }, options.handler);
    return entry !== undefined;
  }

  /**
   * Invalidates a path: entries it reaches turn stale (served as STALE during `gracePeriod` while
   * one background refresh runs, then re-rendered on request), never a wipe of the live cache.
   * Resolves once applied; `refetched` settles when the background refetches did.
   * @throws TypeError (as a rejection) for a malformed path or refetch URI.
   */
  async invalidate(path: string, options: InvalidateOptions = {}): Promise<InvalidateResult> {
    const refetch = options.refetch === true ? [path] : options.refetch === false || options.refetch === undefined ? [] : [...options.refetch];
    const { record, refetched } = this.#engine.invalidate({ paths: [path], scope: options.scope, hard: options.hard, refetch });
    return { id: record.id, at: record.at, refetched };
  }

  /**
   * Invalidates every entry tagged with one of `tags` (from the `tagHeader` response header,
   * space-separated). O(tags) per later lookup; no index is scanned.
   */
  async invalidateTags(tags: readonly string[]): Promise<InvalidateResult> {
    if (!Array.isArray(tags)) throw new TypeError(`expected tags to be an array of strings, got ${typeof tags}`);
    const { record, refetched } = this.#engine.invalidate({ tags });
    return { id: record.id, at: record.at, refetched };
  }

  /**
   * Warms the cache before a node goes live: renders `urls` in the background (no client
   * connection) with bounded concurrency and stores them. Never rejects for a failed URL.
   */
  prime(urls: readonly string[], options: PrimeOptions = {}): Promise<RefetchSummary> {
    return this.#engine.prime(urls, options);
  }

  /** Waits for background work (data refreshes first: they may render) and releases stores. */
  async close(): Promise<void> {
    this.#recorder?.close();
    await this.data.close();
    await this.#engine.close();
  }

  /** @internal The engine, for tests and later layers. */
  get engine(): Engine {
    return this.#engine;
  }
}

/**
 * Creates a cache. Options are validated here: a bad one throws TypeError/RangeError naming it.
 */
export function createCache(options: CacheOptions = {}): StrataCache {
  return new StrataCache(options);
}
