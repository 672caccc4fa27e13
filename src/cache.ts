/**
 * The composition root: builds the parts of one cache from its options and wires them (engine,
 * invalidation, peers, data cache, adapters); and {@link StrataCache}, the facade users hold.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { middleware, type ConnectMiddleware, type MiddlewareOptions } from './adapters/connect.js';
import { adminRoute, internalRoute, peerHandler, withInternalRoutes, type InternalRoute } from './adapters/internal.js';
import { fastifyPlugin, type FastifyCachePlugin } from './adapters/fastify.js';
import { fetchAdapter, type FetchHandler } from './adapters/fetch.js';
import { koa, type KoaMiddleware } from './adapters/koa.js';
import { wrap, type NodeHandler } from './adapters/node.js';
import { DataCache } from './data/cache.js';
import { Background, primaryOfTarget, type OwnerAsk } from './engine/background.js';
import { OwnerAnswers } from './engine/owner-fetch.js';
import { StoredCompression } from './engine/compress.js';
import { CdnPurger } from './cdn/purger.js';
import { dataTag, purgeTags, tagHeaderWriter, TAG_LIMITS } from './cdn/tags.js';
import { entryDecorator } from './engine/decorate.js';
import { Deliver } from './engine/deliver.js';
import { RequestPath } from './engine/handle.js';
import { leasesOf, shareInvalidations, SharedFlight } from './engine/shared.js';
import { PeerFill } from './engine/peer-fill.js';
import { Renderer } from './engine/render.js';
import { Tiers } from './engine/tiers.js';
import type { CacheEvent, Engine, EngineContext } from './engine/types.js';
import { KeyRecords } from './engine/records.js';
import { Variants } from './engine/variants.js';
import type { Entry } from './entry.js';
import type { CacheError, PeerError } from './errors.js';
import { InvalidationCoordinator, type RefetchEvent } from './invalidation/coordinator.js';
import { Epochs, type InvalidationScope } from './invalidation/epochs.js';
import { FlushEndpoint } from './invalidation/flush-endpoint.js';
import type { InvalidationRecord } from './invalidation/log.js';
import { Publications } from './invalidation/publications.js';
import type { PrimeProgress, RefetchSummary } from './invalidation/refetch.js';
import { TargetIndex } from './invalidation/targets.js';
import { normalizeTarget } from './key.js';
import { resolveOptions } from './options/resolve.js';
import { type CacheOptions, type ResolvedOptions } from './options/types.js';
import type { Milliseconds } from './options/units.js';
import { integerOption } from './options/validate.js';
import { StatusDetailer } from './observe/cache-status.js';
import { consoleHandler, type ConsoleHandler } from './observe/console.js';
import { metricsHandler, observedState, registerMetrics, type ObservedState } from './observe/metrics.js';
import { explain, Outcomes } from './observe/explain.js';
import { Recorder, sampleOf } from './observe/recent.js';
import { PeerCluster, peerCounters } from './peers/cluster.js';
import { PeerEndpoint } from './peers/endpoint.js';
import { clusterOf, type MembershipChange } from './peers/build.js';
import { INVALIDATION_NAMESPACE, Propagator } from './peers/propagation.js';
import { Reporter } from './report.js';
import type { EngineHooks } from './seam.js';
import { statusHeaders } from './serve.js';
import { responseCounters, type CacheStats } from './stats.js';
import type { MemoryStore } from './stores/memory.js';

export type { ConnectMiddleware, MiddlewareOptions } from './adapters/connect.js';
export type { FastifyCachePlugin, FastifyDone, FastifyLikeInstance, FastifyLikeReply, FastifyLikeRequest } from './adapters/fastify.js';
export type { FetchHandler } from './adapters/fetch.js';
export type { KoaLikeContext, KoaMiddleware } from './adapters/koa.js';
export type { NodeHandler } from './adapters/node.js';

const debug = createDebug('stratacache:engine');

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
  /** Peers joined or left the cluster (`peers.nodes` as a function, or `peers.discover`). */
  membership: [MembershipChange];
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

/** Options of {@link StrataCache.close}. */
export interface CloseOptions {
  /**
   * How long in ms to wait for background work before abandoning it. A data refresh or render
   * still running then is not cancelled, but its result is never stored, and the stores are
   * released anyway.
   * @default options.closeTimeout (5000)
   */
  timeout?: Milliseconds;
}

/** The wired parts, for tests and tools (@internal). */
export interface EngineParts {
  readonly options: ResolvedOptions;
  readonly memory: MemoryStore;
  readonly invalidation: InvalidationCoordinator;
  /** The cluster this node asks (undefined without `peers.nodes`). */
  readonly peers: PeerCluster | undefined;
  /**
   * Finds `primary` in the local tiers only (memory, then the extra stores), choosing the
   * variant from `headers`: what the peer endpoint answers. Never renders, never asks peers.
   */
  localLookup(primary: string, headers: Record<string, string>): Promise<Entry | undefined>;
}

/** A cache: wrap handlers with it, read its stats, close it. */
export class StrataCache extends EventEmitter<CacheEvents> {
  /**
   * The data cache: values (`get`) and nested or embedded responses (`fetch`) a handler needs
   * while it renders, with their own lifetimes and byte budget (`options.data`). Reads made
   * while a response renders are recorded: when the data changes, the response becomes stale.
   */
  readonly data: DataCache;
  readonly #engine: Engine;
  readonly #ctx: EngineContext;
  readonly #tiers: Tiers;
  readonly #background: Background;
  readonly #invalidation: InvalidationCoordinator;
  readonly #peers: PeerCluster | undefined;
  readonly #endpoint: PeerEndpoint | undefined;
  /** The flush endpoint (undefined with `flush: false`); the operator console posts to it and shares its guard. */
  readonly #flush: FlushEndpoint | undefined;
  /** The admin routes (flush endpoint, PURGE, stats) behind the flush guard; undefined with `flush: false`. */
  readonly #admin: InternalRoute | undefined;
  /** Recent events and chart samples for the console; started by the first {@link consoleHandler}. */
  #recorder: Recorder | undefined;
  /** The last outcome per key, for explain (with the flush endpoint only). */
  readonly #outcomes: Outcomes | undefined;
  /** Removes this cache's metrics from `options.metrics.registry` (on close). */
  readonly #unregisterMetrics: (() => void) | undefined;
  readonly #propagator: Propagator | undefined;
  /** Purges sent to the CDN (undefined without `options.cdn`, or with its `'header'` provider). */
  readonly #purger: CdnPurger | undefined;
  readonly #parts: EngineParts;

  constructor(options: CacheOptions = {}) {
    super();
    const o = resolveOptions(options);
    const counters = responseCounters();
    const report = new Reporter(this, debug, (error) => {
      counters.errors++;
      if (error.code === 'ERR_STORE') counters.storeErrors++;
    });
    // The parts below refer to each other through closures called only once requests run, so
    // they are built in the order their constructors need: cluster, invalidation, data cache
    // (its hooks go into the engine's context), then the engine.

    // Peers: the endpoint answers lookups from the local tiers (and renders an owner-fetch's
    // page, see engine/owner-fetch.ts); the cluster is whom this node asks.
    const po = o.peers;
    const endpoint = po.enabled ? new PeerEndpoint({ secret: po.secret, path: po.path }) : undefined;
    endpoint?.register('r', (query) => owner.answer(query));
    const peers = clusterOf(po, o.stores, report);
    this.#endpoint = endpoint;
    this.#peers = peers;

    const pathTagging = { statLevel: o.statLevel, autoInvalidate: o.autoInvalidate };
    const epochs = new Epochs(pathTagging);
    const targets = new TargetIndex({
      normalize: (url) => normalizeTarget(url, o.ignoreParam),
      primaryOf: (url, host) => primaryOfTarget(url, host, o),
      holds: (primary): boolean => variants.holds(primary),
      keyedByHost: o.keyHost === 'header' && o.keyFunction === undefined,
    });
    const invalidation: InvalidationCoordinator = new InvalidationCoordinator({
      epochs,
      targets,
      counters,
      report,
      self: po.self,
      refetchConcurrency: o.refetchConcurrency,
      regenerate: (target, runner, options) => background.regenerate(target, runner, options),
      publications: (refetcher) =>
        new Publications({
          self: po.self,
          propagate: o.propagate,
          peers,
          refetcher,
          epochs,
          accept: { cacheStatuses: o.cacheStatuses, maxEntrySize: o.maxEntrySize },
          store: (primary, entry) => void variants.store(primary, entry, {}),
          renderTime: () => invalidation.renderTime(),
          closed: () => ctx.closed,
          tookCopy: (target, peer) => invalidation.tookCopy(target, peer),
        }),
    });
    this.#invalidation = invalidation;
    // The CDN fan-out: local invalidations only (a peer's reached the CDN from its own node), each
    // after its refetches settled, so the CDN refills from the new page.
    const cdn = o.cdn;
    const purger = (this.#purger = cdn === undefined || cdn.provider === 'header' ? undefined : new CdnPurger(cdn, (error) => report.fail(error)));
    if (purger !== undefined && cdn !== undefined) {
      invalidation.onApplied((record, refetched) => {
        if (record.origin !== 'local' || record.duplicate === true) return;
        const tags = purgeTags(record, TAG_LIMITS[cdn.provider], pathTagging);
        void refetched.then(() => purger.purge(tags));
      });
    }
    if (endpoint !== undefined) {
      // Ships local invalidation records to peers and applies theirs.
      const propagator = new Propagator({
        secret: po.secret,
        path: po.path,
        self: po.self ?? '',
        timeout: po.fetchTimeout,
        log: invalidation.log,
        peers: () => peers?.peers ?? [],
        apply: (record, from) => invalidation.applyRemote(record, from),
        onError: (error) => report.emit('peer-error', error),
      });
      this.#propagator = propagator;
      // Received whatever this node's own propagate setting: it only decides what this node sends.
      endpoint.receive(INVALIDATION_NAMESPACE, (body) => propagator.receive(body));
      // Only local records are sent: one received from a peer is never sent on (no loops).
      if (o.propagate && peers !== undefined) invalidation.onInvalidate((record) => void (record.origin === 'local' && propagator.push()));
    }
    const flush = (this.#flush =
      o.flush === undefined
        ? undefined
        : new FlushEndpoint(o.flush, {
            apply: (request, context) => invalidation.applyFlush(request, context.host),
            count: (outcome) => void (outcome === 'ok' ? counters.flushes++ : counters.flushRejected++),
          }));

    // The data cache sees the response side only through ResponseServices (seam.ts).
    let hooks: EngineHooks | undefined;
    this.data = new DataCache(
      {
        attach: (h) => void (hooks = h),
        renderTime: () => invalidation.renderTime(),
        markStale: (key) => tiers.markStale(key),
        dataChanged: (key) => purger?.purge([dataTag(key)]),
        subrequest: (init, runner) => background.subrequest(init, runner),
        isInvalidated: (entry) => invalidation.isInvalidated(entry),
        onInvalidate: (hook) => invalidation.onInvalidate(hook),
        invalidateTags: (tags, hard) => void invalidation.invalidate({ tags, hard }),
        peers,
        endpoint,
      },
      o,
      this,
    );
    if (hooks === undefined) throw new Error('the data cache did not attach its hooks');

    const headers = statusHeaders(o.statusHeader, o.cacheName);
    const ctx: EngineContext = {
      options: o,
      counters,
      report,
      records: new KeyRecords({ passTtl: o.passTtl, errorBackoff: o.errorBackoff, covers: (url, startedAt) => invalidation.coversRender(url, startedAt), renderTime: () => invalidation.renderTime() }),
      statusHeaders: headers,
      // Switched in here: without it the hit path writes precomputed values only.
      statusDetail: o.cacheStatusDetail ? StatusDetailer.create(headers, o.cacheName, o.rules) : undefined,
      hooks,
      // Optional features are switched in here, once: without includes no part looks for templates.
      includes: o.includes ? hooks.includes : undefined,
      runner: undefined,
      closed: false,
    };
    this.#ctx = ctx;
    const tiers = (this.#tiers = new Tiers(ctx));
    const compression = o.compress === undefined ? undefined : new StoredCompression(ctx, tiers, o.compress);
    const variants = new Variants(ctx, tiers, targets, {
      compression,
      decorate: entryDecorator(o.rules, o.cdn && tagHeaderWriter(o.cdn.header, TAG_LIMITS[o.cdn.provider], pathTagging)),
    });
    const deliver = new Deliver(ctx);
    // Under owner-fetch a background refresh asks the key's owner first (peerFill is set below,
    // before any request runs).
    const ask: OwnerAsk | undefined = peers?.ownerFetch === true ? (req, primary) => peerFill!.fromOwner(req, primary) : undefined;
    const background = (this.#background = new Background(ctx, variants, ask));
    const owner = new OwnerAnswers(ctx, { tiers, variants, background, isInvalidated: (entry) => invalidation.isInvalidated(entry) });
    const renderer = new Renderer(ctx, { variants, deliver, renderTime: () => invalidation.renderTime(), verdict: (entry) => invalidation.verdict(entry) });
    const peerFill = peers === undefined ? undefined : new PeerFill(ctx, { peers, variants, renderer, deliver, judge: invalidation });
    const leases = leasesOf(tiers.lower);
    const shared = leases === undefined ? undefined : new SharedFlight(ctx, { leases, renderer, deliver, tiers, judge: invalidation });
    shareInvalidations(tiers.lower, invalidation);
    const path = new RequestPath(ctx, { tiers, variants, deliver, renderer, background, invalidation, peerFill, shared });
    const engine: Engine = {
      handle: (req, res, ex) => path.handle(req, res, ex),
      useRunner: (runner) => void (ctx.runner ??= runner),
      serveFresh: (req, sink) => path.serveFresh(req, sink),
    };
    // The last outcome per key, for explain (which exists with the flush endpoint's guard).
    const outcomes = (this.#outcomes = flush === undefined ? undefined : new Outcomes(this));
    const admin = (this.#admin =
      flush === undefined || o.flush === undefined || outcomes === undefined
        ? undefined
        : adminRoute({
            flush,
            flushPath: o.flush.path,
            purge: ({ path, scope, host }) => ({ id: invalidation.invalidate({ paths: [path], scope, hard: true }, { host }).record.id }),
            stats: () => this.#observed(),
            explain: (req) => {
              const wanted = new URL(req.url ?? '/', 'http://x').searchParams.get('url') ?? '/';
              return explain(
                {
                  options: o,
                  memory: tiers.memory,
                  lower: tiers.lower,
                  variants,
                  primaryOf: (url, host) => primaryOfTarget(url, host, o),
                  verdict: (entry) => invalidation.verdict(entry),
                  log: () => invalidation.log.since(0),
                  passReason: (primary) => ctx.records.passReason(primary),
                  outcomes,
                  peers,
                },
                { url: wanted, host: req.headers.host ?? '', headers: req.headers },
              );
            },
          }));
    this.#engine = withInternalRoutes(engine, internalRoute({ endpoint, admin, ours: (req) => background.ticketOf(req) !== undefined }));
    this.#unregisterMetrics = o.metricsRegistry === undefined ? undefined : registerMetrics(o.metricsRegistry, () => this.#observed());
    this.#parts = {
      options: o,
      memory: tiers.memory,
      invalidation,
      peers,
      localLookup: (primary, headers) => tiers.find(variants.keyFor(primary, headers)),
    };
  }

  /**
   * Wraps any `(req, res)` handler (sync or async): hits are answered before it runs.
   * The fastest way to put the cache in front of an app: `http.createServer(cache.wrap(app))`.
   */
  wrap(handler: NodeHandler): (req: IncomingMessage, res: ServerResponse) => void {
    return wrap(this.#engine, handler);
  }

  /**
   * Express/Connect middleware: caches what later middleware renders. Hits still pay for the
   * middleware before it; `http.createServer(cache.wrap(app))` answers hits before Express runs.
   */
  middleware(options: MiddlewareOptions = {}): ConnectMiddleware {
    return middleware(this.#engine, options);
  }

  /** Koa middleware: caches what downstream middleware puts in `ctx.body` (string, Buffer, stream, JSON). */
  koa(): KoaMiddleware {
    return koa(this.#engine);
  }

  /**
   * A Fastify 5 plugin: `await app.register(cache.fastify())`. Hits are answered in `onRequest`
   * (before body parsing, validation and the route handler); misses run the route and store what
   * it sends (string, Buffer, stream, JSON). Not encapsulated, like a `fastify-plugin` plugin:
   * it caches the routes of the instance it is registered on and of its children.
   */
  fastify(): FastifyCachePlugin {
    return fastifyPlugin(this.#engine);
  }

  /**
   * Wraps a WHATWG fetch handler (`(request) => Response`, such as Hono's `app.fetch` or a
   * Next.js route handler) and returns one of the same shape over this cache.
   */
  fetch<Rest extends unknown[]>(handler: FetchHandler<Rest>): FetchHandler<Rest> {
    return fetchAdapter(this.#engine, handler);
  }

  /**
   * The peer endpoint alone, to mount on a separate internal port
   * (`http.createServer(cache.peerHandler()).listen(7001, '10.0.0.5')`) when peers should not
   * reach it through the public one. Requests outside `peers.path` get 404.
   * @throws TypeError when `options.peers.secret` is not set (there is no endpoint).
   */
  peerHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    if (this.#endpoint === undefined) throw new TypeError('cache.peerHandler() needs options.peers.secret');
    return peerHandler(this.#endpoint);
  }

  /**
   * The admin routes alone (the flush endpoint at `flush.path`, `PURGE` on any path, and
   * `/_stratacache/stats`), behind the flush guard, to serve on an admin port
   * (`http.createServer(cache.adminHandler()).listen(9000, '127.0.0.1')`) as well as on the
   * wrapped app's. Other requests get 404, or go to `next` when one is given (Connect style).
   * @throws TypeError with `flush: false` (there are no admin routes).
   */
  adminHandler(): (req: IncomingMessage, res: ServerResponse, next?: () => void) => void {
    const admin = this.#admin;
    if (admin === undefined) throw new TypeError('cache.adminHandler() needs the flush endpoint: options.flush is false');
    return (req, res, next) => {
      if (admin(req, res) !== undefined) return;
      if (next !== undefined) return next();
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end('Not Found');
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
    const flush = this.#flush;
    if (flush === undefined) throw new TypeError('cache.consoleHandler() needs the flush endpoint: options.flush is false');
    const recorder = (this.#recorder ??= new Recorder(this, () => this.stats()));
    const options = this.#ctx.options;
    return consoleHandler({
      flush,
      state: () => {
        const observed = this.#observed();
        const at = Date.now();
        return {
          ...observed,
          at,
          name: options.cacheName,
          self: options.peers.self ?? '',
          samples: [...recorder.samples.toArray(), sampleOf(observed.stats, at)],
          events: recorder.events.toArray(),
          flushPath: options.flush?.path ?? '',
        };
      },
    });
  }

  #observed(): ObservedState {
    return observedState(this.stats(), this.data.stats(), this.#tiers.lower);
  }

  /**
   * Counters: gets, hits, misses, passes, stores, loadsDeduped, stale, errors, entries, bytes;
   * peerLoads, peerHits, peerMisses, peerErrors, peerTimeouts and each peer's breaker (`peers`).
   * The peer counters are the response cache's lookups; the data cache's are in `cache.data.stats()`
   * (the breakers are shared).
   */
  stats(): CacheStats {
    const { entries, bytes } = this.#tiers.memory.size();
    const peers = this.#peers;
    return {
      ...this.#ctx.counters,
      entries,
      bytes,
      ...(peers?.counters ?? peerCounters()),
      peers: peers?.states() ?? [],
      ...(peers?.membership() ?? { members: 0, peerJoins: 0, peerLeaves: 0 }),
      ...(this.#propagator?.counters ?? { invalidationsSent: 0, invalidationsReceived: 0, propagationErrors: 0, propagationResets: 0 }),
      ...this.#invalidation.publications.counters,
      ...(this.#purger?.counters ?? { cdnPurges: 0, cdnPurgedTags: 0, cdnPurgeErrors: 0, cdnPurgesDropped: 0 }),
      tiers: this.#tiers.lower.flatMap((store) => (store.stats === undefined ? [] : [{ name: store.name, ...store.stats() }])),
    };
  }

  /**
   * Renders `url` in the background (no client connection) and stores it; resolves to whether
   * something was stored. Uses the last adapter that served a request, unless `handler` is given.
   */
  async refresh(url: string, options: { host?: string; handler?: NodeHandler } = {}): Promise<boolean> {
    // Asked for now: a render already in flight began before this call and is not joined.
    const entry = await this.#background.regenerate({ url, host: options.host ?? '' }, options.handler, { fresh: true });
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
    const { record, refetched } = this.#invalidation.invalidate({ paths: [path], scope: options.scope, hard: options.hard, refetch });
    return { id: record.id, at: record.at, refetched };
  }

  /**
   * Invalidates every entry tagged with one of `tags` (from the `tagHeader` response header,
   * space-separated). O(tags) per later lookup; no index is scanned.
   */
  async invalidateTags(tags: readonly string[]): Promise<InvalidateResult> {
    if (!Array.isArray(tags)) throw new TypeError(`expected tags to be an array of strings, got ${typeof tags}`);
    const { record, refetched } = this.#invalidation.invalidate({ tags });
    return { id: record.id, at: record.at, refetched };
  }

  /**
   * Warms the cache before a node goes live: renders `urls` in the background (no client
   * connection) with bounded concurrency and stores them. Never rejects for a failed URL.
   */
  prime(urls: readonly string[], options: PrimeOptions = {}): Promise<RefetchSummary> {
    return this.#invalidation.prime(urls, options);
  }

  /**
   * Waits for background work (data refreshes first: they may render), for at most `timeout`
   * in all, and releases the stores. Work still running then (a hung loader, a render that never
   * ends) is abandoned: its result is never stored.
   * @throws TypeError (as a rejection) when `timeout` is not a non-negative integer.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    const timeout = options.timeout === undefined ? this.#ctx.options.closeTimeout : integerOption('close options.timeout', options.timeout, 0);
    const deadline = Date.now() + timeout;
    this.#recorder?.close();
    this.#outcomes?.close();
    this.#unregisterMetrics?.();
    await this.data.close(timeout);
    this.#ctx.closed = true;
    const left = this.#peers?.close();
    this.#propagator?.close();

    if (!(await this.#ctx.report.settled(Math.max(0, deadline - Date.now())))) debug('close: background work abandoned after %d ms', timeout);
    // Purges queued by the last invalidations (and their refetches) get what is left of the timeout.
    const purger = this.#purger;
    if (purger !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([purger.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
      purger.close();
    }
    await left; // this node withdrawn from the shared store's members before the store closes
    await this.#tiers.close();
  }

  /** @internal The wired parts, for tests and later layers. */
  get engine(): EngineParts {
    return this.#parts;
  }
}

/**
 * Creates a cache. Options are validated here: a bad one throws TypeError/RangeError naming it.
 */
export function createCache(options: CacheOptions = {}): StrataCache {
  return new StrataCache(options);
}
