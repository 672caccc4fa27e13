/**
 * The response cache engine: layered lookup (memory, then extra stores), single flight per key,
 * capture and store, variants by Vary, stale-while-revalidate with one background refresh, and
 * background regeneration without a client connection. Adapters call {@link Engine.handle}.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { LRUCache } from 'lru-cache';
import { captureResponse, syntheticExchange, type CaptureControl, type CaptureHooks, type CaptureResult, type SyntheticRequest } from './capture.js';
import { entrySize, type Entry } from './entry.js';
import { Flights, type Deferred } from './flight.js';
import { isHtml, templateOf } from './data/esi.js';
import { HandlerError, IncludeError, RegenerateError, StoreError, CacheError, type PeerError } from './errors.js';
import { adoptAbsoluteForm, alignWithKey, refusal } from './request.js';
import { normalizeTarget, primaryKey, variantKey } from './key.js';
import { Epochs, type EpochVerdict, type InvalidationScope } from './invalidation/epochs.js';
import { FlushEndpoint, type FlushRequest } from './invalidation/flush-endpoint.js';
import { InvalidationLog, type InvalidationRecord } from './invalidation/log.js';
import { prime, Refetcher, type PrimeProgress, type RefetchSummary, type RefetchTarget } from './invalidation/refetch.js';
import { tagsOf, TargetIndex, targetOption } from './invalidation/targets.js';
import type { ResolvedOptions } from './options.js';
import { evaluateResponse, storedHeaders, type Verdict } from './policy.js';
import { serveAssembled, serveEntry, setStatusHeaders, statusHeaders, type CacheStatus, type StatusHeaders } from './serve.js';
import { MemoryStore } from './stores/memory.js';
import { isPromise, type CacheStore } from './stores/store.js';
import { SIGNATURE_HEADER } from './peers/auth.js';
import { acceptPeerEntry, forwardedHeaders } from './peers/judge.js';
import { PeerCluster, type PeerHit, type PeerState } from './peers/cluster.js';
import { PeerEndpoint } from './peers/endpoint.js';
import { INVALIDATION_NAMESPACE, Propagator, type PropagationCounters, type WireRecord } from './peers/propagation.js';

const debug = createDebug('stratacache:engine');

/** Runs the downstream handler for a request. May return a promise. */
export type Runner = (req: IncomingMessage, res: ServerResponse) => unknown;

/** How an adapter hands a request to the engine. */
export interface Exchange {
  /** Runs what the cache wraps (the handler, or the rest of the middleware chain). */
  run: Runner;
  /**
   * Runs the whole app from the top for a background render; the engine recognises its own
   * synthetic request when it comes back through {@link Engine.handle}. Undefined when the
   * adapter cannot reach the app (background refresh then falls back to a foreground miss).
   */
  regen?: Runner | undefined;
  /** Rethrow handler errors to the caller (Koa) instead of answering 500 here. */
  rethrow?: boolean;
}

/** Counters, named like groupcache's Stats. */
export interface CacheStats {
  /** Cacheable GET/HEAD requests looked up. */
  gets: number;
  /** Served from a fresh stored entry (memory or an extra store), including coalesced waiters. */
  hits: number;
  /** Rendered by the handler to fill the cache (one per flight leader). */
  misses: number;
  /** Sent to the handler without the cache (method, bypass, hit-for-pass, uncacheable). */
  passes: number;
  /** Entries stored. */
  stores: number;
  /** Requests that waited for another request's render instead of rendering. */
  loadsDeduped: number;
  /** Served stale while a background refresh ran. */
  stale: number;
  /** Background renders started (refresh, refetch, priming). */
  regenerations: number;
  /** Internal failures (store, handler, regeneration); each also emitted as `error`. */
  errors: number;
  /** Of `stale`: served stale because the origin threw, timed out or answered an error status. */
  staleOnError: number;
  /** Invalidations applied (API, flush endpoint, tags). */
  invalidations: number;
  /** Background refetches (flush refetch lists, priming) that stored a new entry. */
  refetches: number;
  /** Background refetches that failed or stored nothing (the old copy stayed). */
  refetchErrors: number;
  /** Flush endpoint requests accepted. */
  flushes: number;
  /** Flush endpoint requests refused (403, 400, 405, 413). */
  flushRejected: number;
  /** Entries in the memory tier. */
  entries: number;
  /** Bytes charged in the memory tier. */
  bytes: number;
  /** Lookups sent to peers (one per peer asked). */
  peerLoads: number;
  /** Peer lookups that brought back an entry this node accepted and served (status `PEER`). */
  peerHits: number;
  /** Peer lookups answered "not here", or with an entry refused by local rules. */
  peerMisses: number;
  /** Peer lookups that failed (connection, status, unsigned/oversized/truncated/undecodable reply). */
  peerErrors: number;
  /** Peer lookups that timed out (`peers.queryTimeout` or `peers.fetchTimeout`). */
  peerTimeouts: number;
  /** Each peer's circuit breaker: `closed`, `open` (skipped) or `half-open` (one probe allowed). */
  peers: PeerState[];
  /** Invalidation records a peer acknowledged (one per record per peer; `invalidation.propagate`). */
  invalidationsSent: number;
  /** Invalidation records received from peers and applied (replays and retries of applied ones not counted). */
  invalidationsReceived: number;
  /** Propagation calls to peers that failed (each is retried with backoff, in order). */
  propagationErrors: number;
  /** Times a peer had missed more records than the log holds and got a soft invalidation of `/` instead. */
  propagationResets: number;
  /**
   * Invalidations recognised as the same publication already applied from another node within
   * {@link DUPLICATE_WINDOW} (a flush sent to every node): no new epoch, no second refetch.
   */
  invalidationDuplicates: number;
  /** Refetched pages this node took from the peer that refetched them instead of rendering them. */
  peerRefetches: number;
}

/**
 * How long in ms an invalidation with the same content (paths, scope, hard, tags, refetch list)
 * arriving from another node counts as the same publication: AEM sends one flush per dispatcher,
 * and with propagation each node also hears the others' copies.
 */
export const DUPLICATE_WINDOW = 10_000;

/**
 * How long in ms a node that does not refetch a URL itself waits for the peer that does (the
 * rendezvous owner among live nodes) before rendering it itself. Meanwhile its old copy is served.
 */
export const PEER_REFETCH_WAIT = 5_000;

/** One publication as this node saw it (see {@link DUPLICATE_WINDOW}). */
interface InvalidationGroup {
  /** Local time it was first applied. */
  seenAt: number;
  /** Earliest and latest `at` of its records here. */
  first: number;
  last: number;
  /** Nodes (base URLs; `''` for a node without `peers.self`) it came from. */
  nodes: Set<string>;
}

/** Payload of the `refetch` and `refetch-error` events. */
export interface RefetchEvent {
  url: string;
  host: string;
  key: string;
  /** Why it failed (`refetch-error` only). */
  error?: unknown;
  /** Base URL of the peer that refetched it, when this node took the peer's copy instead of rendering. */
  peer?: string;
}

/** What to invalidate (see {@link Engine.invalidate}). */
export interface InvalidationInput {
  paths?: readonly string[];
  scope?: InvalidationScope;
  hard?: boolean;
  tags?: readonly string[];
  /** URIs (path and query, or absolute http(s) URLs) to render again in the background. */
  refetch?: readonly string[];
}

/** What {@link Engine.invalidate} did. */
export interface InvalidationResult {
  /** The log record (its id orders invalidations on this node). */
  record: InvalidationRecord;
  /** Settles when every queued refetch settled (never rejects). */
  refetched: Promise<RefetchSummary>;
}

/** Payload of the `hit`, `miss`, `store`, `pass` and `stale` events. */
export interface CacheEvent {
  key: string;
  url: string;
  status?: CacheStatus;
  reason?: string;
  /** Base URL of the peer that supplied the entry (`peer-hit` only). */
  peer?: string;
}

interface FlightResult {
  entry?: Entry | undefined;
  key?: string;
  /** The response is of a kind never stored (remembered as pass); waiters render themselves. */
  sticky?: boolean;
  /** The entry came from a peer (waiters are served with status `PEER`). */
  peer?: boolean;
  /** `entry` is the old copy, served because the render failed (waiters serve it as STALE). */
  stale?: boolean;
}

type Flight = Deferred<FlightResult>;

interface VarySpec {
  names: string[];
  variants: string[];
}

/** A synthetic request's instructions: render for this flight, or run untouched (a sub-request). */
interface RenderTicket {
  kind: 'render';
  flight: Flight;
  key: string;
  primary: string;
  used: boolean;
}
type Ticket = RenderTicket | { kind: 'sub' };

/** A render's data reads, recorded while it runs (see {@link EngineHooks}). */
export interface RenderScope {
  /** Data keys read so far. */
  readonly reads: ReadonlySet<string>;
  /** A key it read changed before it finished: what it stores must be stale at birth. */
  readonly tainted: boolean;
}

/**
 * What the data cache plugs into the engine ({@link Engine.attach}): dependency recording
 * around renders, the reverse index kept in step with stored entries, and ESI assembly.
 */
export interface EngineHooks {
  /** Opens a scope for a response render of `req`; sub-requests it makes run through `runner`. */
  openScope(req: IncomingMessage, runner: Runner | undefined): RenderScope;
  /** Runs `fn` inside `scope` (AsyncLocalStorage), so the reads it makes are recorded there. */
  runInScope<T>(scope: RenderScope, fn: () => T): T;
  /** Closes a scope once its render ended. */
  closeScope(scope: RenderScope): void;
  /** The entry under `key` changed: stored (`after`), replaced (both) or dropped (`before` only). */
  onEntry(key: string, before: Entry | undefined, after: Entry | undefined): void;
  /**
   * The body of an ESI template for `req`, each include filled from the data cache. `source`
   * may memoize its parsed template in `template`. Rejects when the page must fail.
   */
  assemble(source: { body: Buffer; template?: unknown }, req: IncomingMessage, runner: Runner | undefined): Promise<Buffer>;
}

/**
 * How far past the clock (or the previous invalidation) an invalidation is stamped: 2^-10 ms is
 * exact in a double at today's epoch-ms magnitudes and keeps the wall-clock millisecond for up to
 * 1023 invalidations within one millisecond.
 */
const EPOCH_STEP = 1 / 1024;

/** Request headers removed before a render whose response will be stored (see unkeyedHeaders). */
const CONDITIONAL_HEADERS = ['if-none-match', 'if-modified-since', 'if-unmodified-since', 'if-match', 'if-range', 'range'];

/** The engine behind one cache. */
export class Engine {
  readonly options: ResolvedOptions;
  readonly memory: MemoryStore;
  readonly #events: EventEmitter;
  readonly #stores: readonly CacheStore[];
  readonly #flights = new Flights<FlightResult>();
  readonly #vary: LRUCache<string, VarySpec>;
  /** Request headers removed before a render that will be stored (validators, Range, unkeyed). */
  readonly #stripped: ReadonlySet<string>;
  readonly #passKeys: LRUCache<string, string> | undefined;
  readonly #tickets = new WeakMap<IncomingMessage, Ticket>();
  readonly #statusHeaders: StatusHeaders;
  readonly #serveCtx: { status: CacheStatus; now: number; statusHeaders: StatusHeaders };
  readonly #counters = {
    gets: 0,
    hits: 0,
    misses: 0,
    passes: 0,
    stores: 0,
    loadsDeduped: 0,
    stale: 0,
    regenerations: 0,
    errors: 0,
    staleOnError: 0,
    invalidations: 0,
    refetches: 0,
    refetchErrors: 0,
    flushes: 0,
    flushRejected: 0,
  };
  readonly #epochs: Epochs;
  readonly #log = new InvalidationLog();
  readonly #invalidateHooks = new Set<(record: InvalidationRecord) => void>();
  readonly #refetcher: Refetcher;
  readonly #flush: FlushEndpoint | undefined;
  /** Hosts each stored target was cached under, so a host-less refetch URI finds its entries. */
  readonly #targets: TargetIndex;
  readonly #background = new Set<Promise<unknown>>();
  /** Publications seen recently, by content (see {@link DUPLICATE_WINDOW}). */
  readonly #groups = new LRUCache<string, InvalidationGroup>({ max: 10_000 });
  /** Primary keys another node is refetching: their old copy stays servable and no local refresh starts. */
  readonly #awaiting = new Map<string, { group: InvalidationGroup; deadline: number; done: Promise<void> }>();
  #peerRefetches = 0;
  #invalidationDuplicates = 0;
  /** Ships local invalidation records to peers and applies theirs (undefined without `peers.secret`). */
  readonly #propagator: Propagator | undefined;
  /**
   * The cluster this node asks (undefined without `peers.nodes`). Other caches on this engine
   * (the data cache) look up their own namespace through it.
   */
  readonly peers: PeerCluster | undefined;
  /** The peer endpoint (undefined without `peers.secret`). */
  readonly endpoint: PeerEndpoint | undefined;
  /** The flush endpoint (undefined with `flush: false`); the operator console posts to it and shares its guard. */
  get flushEndpoint(): FlushEndpoint | undefined {
    return this.#flush;
  }
  /** The last adapter's way to render in the background (for refetch and priming). */
  #defaultRegen: Runner | undefined;
  #hooks: EngineHooks | undefined;
  #closed = false;

  constructor(options: ResolvedOptions, events: EventEmitter) {
    this.options = options;
    this.#events = events;
    this.memory = new MemoryStore({
      maxSize: options.maxSize,
      maxEntrySize: options.maxSize,
      onEvict: (key, entry) => this.#hooks?.onEntry(key, entry, undefined),
    });
    this.#stores = options.stores;
    this.#vary = new LRUCache<string, VarySpec>({ max: 100_000 });
    this.#stripped = new Set([...CONDITIONAL_HEADERS, ...options.unkeyedHeaders]);
    this.#passKeys = options.passTtl > 0 ? new LRUCache<string, string>({ max: 100_000, ttl: options.passTtl }) : undefined;
    this.#statusHeaders = statusHeaders(options.statusHeader, options.cacheName);
    this.#serveCtx = { status: 'HIT', now: 0, statusHeaders: this.#statusHeaders };
    const peers = options.peers;
    if (peers.enabled) {
      this.endpoint = new PeerEndpoint({ secret: peers.secret, path: peers.path });
      this.endpoint.register('r', (query) => this.localLookup(query.key, query.headers));
      if (typeof peers.nodes === 'function' || peers.nodes.length > 0) {
        this.peers = new PeerCluster(peers, {
          onPeerError: (error) => this.#emitPeerError(error),
          onMembershipError: (error) => this.#fail(error),
        });
      }
      const propagator = new Propagator({
        secret: peers.secret,
        path: peers.path,
        self: peers.self ?? '',
        timeout: peers.fetchTimeout,
        log: this.#log,
        peers: () => this.peers?.peers ?? [],
        apply: (record, from) => this.#applyRemote(record, from),
        onError: (error) => this.#emitPeerError(error),
      });
      this.#propagator = propagator;
      // Received whatever this node's own propagate setting: it only decides what this node sends.
      this.endpoint.receive(INVALIDATION_NAMESPACE, (body) => propagator.receive(body));
      if (options.propagate && this.peers !== undefined) {
        // Only local records are sent: one received from a peer is never sent on (no loops).
        this.#invalidateHooks.add((record) => {
          if (record.origin === 'local') propagator.push();
        });
      }
    }
    this.#epochs = new Epochs({ statLevel: options.statLevel, autoInvalidate: options.autoInvalidate });
    this.#targets = new TargetIndex({
      normalize: (url) => normalizeTarget(url, options.ignoreParam),
      primaryOf: (url, host) => this.#primaryOf(url, host),
      keyedByHost: options.keyHost === 'header' && options.keyFunction === undefined,
    });
    this.#refetcher = new Refetcher(options.refetchConcurrency, {
      render: (t) => this.regenerate({ url: t.url, host: t.host }),
      settled: (t, entry, error) => this.#refetchSettled(t, entry, error),
    });
    this.#flush =
      options.flush === undefined
        ? undefined
        : new FlushEndpoint(options.flush, {
            apply: (request, context) => this.#applyFlush(request, context.host),
            count: (outcome) => void (outcome === 'ok' ? this.#counters.flushes++ : this.#counters.flushRejected++),
          });
  }


  /**
   * Handles one request. Returns true when the response was served from the cache (the handler
   * did not run), false when the handler ran; a promise of that when it could not answer at once.
   */
  handle(req: IncomingMessage, res: ServerResponse, ex: Exchange): boolean | Promise<boolean> {
    const ticket = this.#tickets.get(req);
    if (ticket !== undefined) return ticket.kind === 'sub' ? this.#invoke(req, res, ex, undefined) : this.#renderTicket(req, res, ex, ticket);
    // The peer protocol is answered here, on the app's own port, before any cache logic.
    if (this.endpoint !== undefined && this.endpoint.handles(req.url ?? '')) {
      void this.endpoint.handle(req, res);
      return true;
    }
    if (this.#flush !== undefined && this.#flush.matches(req.url)) return this.#flush.handle(req, res);
    const method = req.method;
    // RFC 9112 §3.2.2: an absolute-form target's authority wins over Host (see request.ts).
    const adopted = adoptAbsoluteForm(req);
    if (method !== 'GET' && method !== 'HEAD') return this.#passMethod(req, res, ex);
    const options = this.options;
    if (options.bypass !== undefined && options.bypass(req)) return this.#pass(req, res, ex, { key: '', reason: 'bypass' });
    const refused = adopted ? refusal(req) : 'invalid target';
    if (refused !== undefined) return this.#pass(req, res, ex, { key: '', reason: refused });
    let primary: string | undefined;
    try {
      primary = primaryKey(req, options);
    } catch (error) {
      this.#fail(new HandlerError('options.key threw', { cause: error }));
    }
    if (primary === undefined) return this.#pass(req, res, ex, { key: '', reason: 'uncacheable target' });
    // One clock read per request; the variant map is not touched until some response varied.
    const now = Date.now();
    const spec = this.#vary.size === 0 ? undefined : this.#vary.get(primary);
    const key = spec === undefined ? primary : this.#variantOf(primary, spec.names, req);
    const entry = this.memory.get(key, now);
    if (entry !== undefined) {
      if (
        now < entry.staleAt &&
        (entry.shared || req.headers.authorization === undefined) &&
        // One comparison while nothing was invalidated since the entry was stored.
        (entry.storedAt >= this.#epochs.newest || this.#epochs.check(entry) === undefined)
      ) {
        this.#counters.gets++;
        this.#counters.hits++;
        const assembling = this.#serve(req, res, entry, 'HIT', now, ex);
        if (this.#events.listenerCount('hit') > 0) this.#emit('hit', { key, url: req.url ?? '', status: 'HIT' });
        return assembling === undefined ? true : assembling;
      }
    }
    return this.#lookup(req, res, ex, { primary, key, entry, attempt: 0 });
  }

  /** Everything that is not a fresh memory hit. */
  async #lookup(
    req: IncomingMessage,
    res: ServerResponse,
    ex: Exchange,
    at: { primary: string; key: string; entry: Entry | undefined; attempt: number },
  ): Promise<boolean> {
    const { primary } = at;
    let { key } = at;
    let entry = at.entry;
    if (at.attempt === 0) this.#counters.gets++;
    if (ex.regen !== undefined) this.#defaultRegen = ex.regen;
    const authorized = req.headers.authorization !== undefined;
    const usable = (e: Entry | undefined): e is Entry => e !== undefined && (e.shared || !authorized);

    if (entry === undefined) {
      for (const store of this.#stores) {
        let found = await this.#storeGet(store, key);
        // A varied entry under the bare primary key is the marker store() leaves for restarts: it
        // names the Vary headers, so this request's own variant can be looked up.
        if (found !== undefined && key === primary && found.vary.length > 0) {
          if (!this.#vary.has(primary)) this.#vary.set(primary, { names: found.vary, variants: [] });
          key = this.#variantOf(primary, found.vary, req);
          found = await this.#storeGet(store, key);
        }
        if (found === undefined) continue;
        entry = found;
        if (Date.now() < found.staleAt && this.#epochs.check(found) === undefined) this.memory.set(key, found); // promote
        break;
      }
    }
    const now = Date.now();
    /** The old copy to serve if the render fails (RFC 5861 §4 stale-if-error). */
    let fallback: Entry | undefined;
    if (usable(entry)) {
      const invalidated = this.#epochs.check(entry);
      if (invalidated?.hard) {
        // Deactivated or deleted content: gone, not even an error fallback.
        this.#deleteEverywhere(key);
      } else {
        if (invalidated === undefined && now < entry.staleAt) {
          this.#counters.hits++;
          const assembling = this.#serve(req, res, entry, 'HIT', now, ex);
          this.#emit('hit', { key, url: req.url ?? '', status: 'HIT' });
          return assembling ?? true;
        }
        const reason = this.#staleReason(entry, { primary, invalidated, now, canRefresh: ex.regen !== undefined || this.#defaultRegen !== undefined });
        if (reason !== undefined) {
          this.#counters.stale++;
          const assembling = this.#serve(req, res, entry, 'STALE', now, ex);
          this.#emit('stale', { key, url: req.url ?? '', status: 'STALE', reason });
          // One background refresh per key however many requests arrive; none while a refetch
          // of it is queued (that one will replace the entry).
          if (!this.#refetcher.has(primary) && !this.#awaiting.has(primary) && !this.#flights.has(key)) {
            this.#track(this.regenerate({ url: entry.url, host: entry.host, headers: varyHeaders(entry, req) }, ex.regen));
          }
          return assembling ?? true;
        }
        if (now < entry.sieUntil && this.options.staleOnErrorStatuses.size > 0) fallback = entry;
      }
    }

    if (this.#passKeys?.has(primary)) return this.#pass(req, res, ex, { key: primary, reason: this.#passKeys.get(primary) ?? 'hit-for-pass' });

    // Nothing servable here while another node refetches this page for the cluster: wait for
    // its copy (at most PEER_REFETCH_WAIT) rather than render it a second time, then look again.
    const waiting = fallback === undefined && !authorized && at.attempt < 2 && this.#awaiting.size > 0 ? this.#awaiting.get(primary) : undefined;
    if (waiting !== undefined) {
      this.#counters.loadsDeduped++;
      await waiting.done;
      return this.#lookup(req, res, ex, { primary, key, entry: this.memory.get(key), attempt: at.attempt + 1 });
    }

    // Authenticated requests neither wait for nor lead a shared flight: their response may be
    // theirs alone.
    const flight = authorized ? undefined : this.#flights.get(key);
    if (flight === undefined) return this.#lead(req, res, ex, { primary, key, ticket: undefined, fallback });

    // Single flight: wait for the leader, then look again (groupcache's load).
    this.#counters.loadsDeduped++;
    const result = await flight.promise;
    if (result.entry !== undefined) {
      const mine = this.#variantOf(primary, result.entry.vary, req);
      if (mine === result.key && result.stale) {
        // The leader's render failed: its waiters get the old copy too, never the error.
        this.#counters.stale++;
        this.#counters.staleOnError++;
        const assembling = this.#serve(req, res, result.entry, 'STALE', Date.now(), ex);
        this.#emit('stale', { key: mine, url: req.url ?? '', status: 'STALE', reason: 'origin failed (coalesced)' });
        return assembling ?? true;
      }
      if (mine === result.key) {
        this.#counters.hits++;
        const assembling = this.#serve(req, res, result.entry, result.peer ? 'PEER' : 'HIT', Date.now(), ex);
        this.#emit('hit', { key: mine, url: req.url ?? '', status: 'HIT', reason: 'coalesced' });
        return assembling ?? true;
      }
      // Another variant: look up (and perhaps lead) under this request's own variant key.
      if (at.attempt < 2) return this.#lookup(req, res, ex, { primary, key: mine, entry: this.memory.get(mine), attempt: at.attempt + 1 });
    }
    // The leader's response was not storable, or it failed: render for ourselves.
    return this.#pass(req, res, ex, { key, reason: result.sticky ? 'not storable' : 'leader failed' });
  }

  /**
   * Why a stale (or invalidated) entry may be served right now, or undefined when the request
   * must wait for a fresh copy.
   */
  #staleReason(entry: Entry, at: { primary: string; invalidated: EpochVerdict | undefined; now: number; canRefresh: boolean }): string | undefined {
    // A refetch will replace it: serve the old copy until then, past grace too.
    if (this.#refetcher.has(at.primary)) return 'refetch pending';
    // Another node refetches it for the cluster: serve the old copy until its copy arrives here.
    if (this.#awaiting.size > 0 && this.#awaiting.has(at.primary)) return 'refetch pending on a peer';
    if (!at.canRefresh) return undefined;
    // Invalidated: servable during the grace period after the invalidation, whatever its freshness.
    // (Epoch times sit a fraction of a millisecond after the wall-clock millisecond of the invalidation.)
    if (at.invalidated !== undefined) return at.now < Math.floor(at.invalidated.at) + this.options.gracePeriod ? 'grace' : undefined;
    // RFC 5861 §3: serve stale while one background refresh runs.
    return at.now < entry.swrUntil ? 'stale-while-revalidate' : undefined;
  }

  /**
   * Leads a miss: asks the peers when there are some, else (or then) renders it. `fallback` is
   * the old copy to serve if the render fails (see {@link Engine.#render}).
   */
  #lead(
    req: IncomingMessage,
    res: ServerResponse,
    ex: Exchange,
    at: { primary: string; key: string; ticket: RenderTicket | undefined; fallback: Entry | undefined },
  ): boolean | Promise<boolean> {
    const { primary, key, ticket, fallback } = at;
    let flight = ticket?.flight;
    if (flight === undefined && req.headers.authorization === undefined) {
      flight = this.#flights.start(key);
    }
    // Only the leader of a client's flight asks peers, once per key while waiters queue on the
    // flight. Not a background render (a ticket): refresh, refetch and priming exist to get the
    // origin's current version, not another node's copy. Not an Authorization request (no
    // flight): its response may be its own. Not a request carrying a peer signature: whatever
    // reaches here with one (an endpoint path rewritten by a mount) must not cascade to peers.
    if (ticket === undefined && flight !== undefined && this.peers !== undefined && req.headers[SIGNATURE_HEADER] === undefined) {
      return this.#leadWithPeers(req, res, ex, { primary, key, flight, fallback });
    }
    return this.#render(req, res, ex, { primary, key, ticket, flight, fallback });
  }

  /**
   * A flight leader asks its peers first (groupcache's load: pick a peer, fall back to a local
   * load on error). Event trace: A leads k -> waiters W1..Wn join A's flight -> A asks peers ->
   * hit: A serves PEER, resolves the flight (W1..Wn served from the same entry) / miss, error or
   * timeout: A renders as if there were no peers, and the flight resolves when the render ends.
   */
  async #leadWithPeers(
    req: IncomingMessage,
    res: ServerResponse,
    ex: Exchange,
    at: { primary: string; key: string; flight: Flight; fallback: Entry | undefined },
  ): Promise<boolean> {
    const { primary, key, flight, fallback } = at;
    // With no usable local copy to answer a failing origin, the same lookup also asks for a copy
    // still inside its stale-if-error window (RFC 5861 §4): kept aside, served only if the render fails.
    const wantStale = fallback === undefined && this.options.staleOnErrorStatuses.size > 0;
    const { hit, stale } = await this.#askPeers(req, primary, wantStale);
    if (hit === undefined) {
      if (res.destroyed) {
        // The client left during the lookup: a render on a closed response would never settle
        // the flight. Settle it empty; waiters render for themselves.
        this.#flights.settle(key, flight, {});
        return true;
      }
      return this.#render(req, res, ex, { primary, key, ticket: undefined, flight, fallback: fallback ?? stale });
    }
    const { entry } = hit;
    const viewHeaders = this.#variantView(req);
    // Copied locally only when the memory tier can hold it (the same bound as a local render's).
    const copy = this.options.peers.updateLocalCache && entrySize(entry) <= this.options.maxSize;
    const stored = copy ? this.store(primary, entry, viewHeaders) : variantKey(primary, entry.vary, viewHeaders);
    this.#flights.settle(key, flight, { entry, key: stored, peer: true });
    const assembling = this.#serve(req, res, entry, 'PEER', Date.now(), ex);
    this.#emit('peer-hit', { key: stored, url: req.url ?? '', status: 'PEER', peer: hit.peer });
    return assembling ?? true;
  }

  /**
   * Asks the peers for `primary` with the request's variant-selecting headers; judges replies by
   * local rules. With `wantStale`, the lookup does not ask for fresh copies only, and the first
   * copy that is stale but inside its stale-if-error window (and passes every other local rule:
   * not invalidated here, same variant, shareable) is returned as `stale`.
   */
  async #askPeers(req: IncomingMessage, primary: string, wantStale: boolean): Promise<{ hit: PeerHit | undefined; stale: Entry | undefined }> {
    const view = this.#variantView(req);
    const sent = forwardedHeaders(view, this.#vary.get(primary)?.names);
    const authorized = req.headers.authorization !== undefined;
    const { cacheStatuses, maxEntrySize } = this.options;
    const isInvalidated = (entry: Entry): boolean => this.isInvalidated(entry);
    let stale: Entry | undefined;
    const hit = await this.peers!.find({ ns: 'r', key: primary, headers: sent, freshAt: wantStale ? undefined : Date.now() }, (entry) => {
      const ctx = { primary, sent, view, authorized, cacheStatuses, maxEntrySize, isInvalidated, now: Date.now() };
      if (acceptPeerEntry(entry, ctx)) return true;
      if (wantStale && stale === undefined && acceptPeerEntry(entry, { ...ctx, window: 'stale-if-error' })) stale = entry;
      return false;
    });
    return { hit, stale };
  }

  /** The request headers a stored response's variant is keyed on: the request minus what a render never sees. */
  /**
   * The variant key of `req` under `primary` for the Vary `names`, computed on the headers a
   * render sees: a leader's request loses its validators and unkeyed headers before it renders
   * (and its entry is stored under what is left), so a lookup must ignore them too, or a
   * `Vary: X-Forwarded-Proto` page would never be found again.
   */
  #variantOf(primary: string, names: readonly string[], req: IncomingMessage): string {
    for (const name of names) if (this.#stripped.has(name)) return variantKey(primary, names, this.#variantView(req));
    return variantKey(primary, names, req.headers);
  }

  #variantView(req: IncomingMessage): IncomingMessage['headers'] {
    const view: IncomingMessage['headers'] = { ...req.headers };
    for (const name of CONDITIONAL_HEADERS) delete view[name];
    for (const name of this.options.unkeyedHeaders) delete view[name];
    return view;
  }

  /**
   * True when `entry` was stored before an invalidation that reaches it (its path, an ancestor
   * within statLevel, one of its tags; all read from the entry itself). The peer layer refuses
   * such a copy from a peer. O(depth).
   */
  isInvalidated(entry: Entry): boolean {
    return entry.storedAt < this.#epochs.newest && this.#epochs.check(entry) !== undefined;
  }

  /**
   * Finds `primary` in the local tiers only (memory, then the extra stores), choosing the
   * variant from `headers`: what the peer endpoint answers. Never renders, never asks peers.
   */
  async localLookup(primary: string, headers: Record<string, string>): Promise<Entry | undefined> {
    const spec = this.#vary.get(primary);
    const key = spec === undefined ? primary : variantKey(primary, spec.names, headers);
    const entry = this.memory.get(key);
    if (entry !== undefined) return entry;
    for (const store of this.#stores) {
      const found = await this.#storeGet(store, key);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /**
   * Renders a miss through the handler, streaming to the client and storing the result. With a
   * `fallback` (an old copy inside its stale-if-error window), an origin failure before the
   * headers (error status, throw, originTimeout) serves that copy instead, to the client and to
   * every waiter, and the failed response is never stored.
   */
  #render(
    req: IncomingMessage,
    res: ServerResponse,
    ex: Exchange,
    at: { primary: string; key: string; ticket: RenderTicket | undefined; flight: Flight | undefined; fallback: Entry | undefined },
  ): boolean | Promise<boolean> {
    const { primary, key, ticket, flight, fallback } = at;
    if (ticket === undefined) {
      this.#counters.misses++;
      this.#emit('miss', { key, url: req.url ?? '', status: 'MISS' });
    }
    // The render loses the client's validators (#prepareRequest); a stale answer still honours them.
    const validators = fallback === undefined ? undefined : { inm: req.headers['if-none-match'], ims: req.headers['if-modified-since'] };
    this.#prepareRequest(req);
    // A HEAD miss renders the GET representation so the entry has its body; the client still
    // gets no body, because ServerResponse fixed "no body" from the method it was created with.
    if (req.method === 'HEAD') req.method = 'GET';
    // Entries carry the render's start as storedAt, so one that raced an invalidation is stale.
    const startedAt = this.renderTime();
    const preset = fallback === undefined || res.getHeaderNames().length === 0 ? undefined : res.getHeaders();
    const policyReq = { method: 'GET', url: req.url ?? '/', headers: req.headers };
    let verdict: Verdict | undefined;
    const hooks = this.#hooks;
    const runner = ex.regen ?? this.#defaultRegen;
    const scope = hooks?.openScope(req, runner);
    let failed = false;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (outcome: FlightResult): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      if (flight !== undefined) this.#flights.settle(key, flight, outcome);
    };
    const staleOutcome = (): FlightResult => ({ entry: fallback, key, stale: true });
    // Serve the old copy instead of the failing render (the client of a background render is
    // nobody). An ESI template would be assembled asynchronously, after the divert: its leader
    // gets the error, its waiters the stale copy.
    const rescue = (reason: string): boolean => {
      if (fallback === undefined || ticket !== undefined || (fallback.esi === true && this.options.includes)) return false;
      const served = control.divert(() => {
        // Drop what the failed render set; keep what middleware in front of the cache had set.
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        if (preset !== undefined) for (const [name, value] of Object.entries(preset)) if (value !== undefined) res.setHeader(name, value);
        res.statusMessage = '';
        if (validators?.inm !== undefined) req.headers['if-none-match'] = validators.inm;
        if (validators?.ims !== undefined) req.headers['if-modified-since'] = validators.ims;
        this.#serve(req, res, fallback, 'STALE', Date.now(), ex);
      });
      if (!served) return false;
      debug('stale: %s %s', reason, key);
      this.#counters.stale++;
      this.#counters.staleOnError++;
      this.#emit('stale', { key, url: req.url ?? '', status: 'STALE', reason });
      settle(staleOutcome());
      return true;
    };
    const control = captureResponse(
      res,
      {
        onHeaders: (status, headers) => {
          if (timer !== undefined) clearTimeout(timer);
          if (fallback !== undefined && this.options.staleOnErrorStatuses.has(status)) {
            // The error response never replaces the good entry (RFC 5861 §4).
            failed = true;
            rescue(`origin ${status}`);
            return false;
          }
          verdict = evaluateResponse(policyReq, { status, headers }, this.options, Date.now());
          setStatusHeaders(res, this.#statusHeaders, 'MISS');
          if (!verdict.storable) debug('pass: %s %s', verdict.reason, key);
          return verdict.storable;
        },
        // With includes on, an HTML response is held and its client gets the assembled page.
        transform: hooks !== undefined && this.options.includes ? this.#transformFor(req, runner) : undefined,
        onDone: (result) => {
          if (scope !== undefined) hooks!.closeScope(scope);
          if (settled) return;
          let outcome = this.#complete(req, primary, result, { verdict, scope, startedAt });
          if (outcome.entry === undefined && fallback !== undefined && (failed || !result.ok)) outcome = staleOutcome();
          settle(outcome);
        },
      },
      this.options.maxEntrySize,
    );
    if (fallback !== undefined && ticket === undefined && this.options.originTimeout > 0) {
      timer = setTimeout(() => rescue('origin timeout'), this.options.originTimeout);
      timer.unref();
    }
    return this.#invoke(req, res, ex, control, { scope, rescue: () => rescue('origin threw') });
  }

  /** Assembles a just-rendered HTML body for its client (no template stored yet). */
  #assembleFresh(body: Buffer, req: IncomingMessage, runner: Runner | undefined): Promise<Buffer> {
    const template = templateOf(body);
    if (template === undefined) return Promise.resolve(body);
    return this.#hooks!.assemble({ body, template }, req, runner).catch((error: unknown) => {
      this.#fail(error instanceof CacheError ? error : new IncludeError('include assembly failed', { cause: error }));
      throw error;
    });
  }

  /** Turns a finished capture into a stored entry (or a remembered pass). */
  #complete(
    req: IncomingMessage,
    primary: string,
    result: CaptureResult,
    at: { verdict: Verdict | undefined; scope: RenderScope | undefined; startedAt: number },
  ): FlightResult {
    const { verdict, scope } = at;
    if (result.ok && verdict?.storable) {
      const headers = storedHeaders(result.headers, this.options);
      const find = (name: string): string | undefined => headers.find(([n]) => n === name)?.[1];
      const entry: Entry = {
        status: result.status,
        headers,
        body: result.body,
        storedAt: at.startedAt,
        initialAge: verdict.initialAge,
        staleAt: verdict.staleAt,
        swrUntil: verdict.swrUntil,
        sieUntil: verdict.sieUntil,
        expiresAt: Math.max(verdict.staleAt, verdict.swrUntil, verdict.sieUntil),
        etag: find('etag'),
        lastModified: find('last-modified'),
        shared: verdict.shared,
        url: req.url ?? '/',
        host: req.headers.host ?? '',
        vary: verdict.vary,
        tags: tagsOf(result.headers[this.options.tagHeader]),
      };
      if (scope !== undefined && scope.reads.size > 0) entry.deps = [...scope.reads];
      // A data key this render read changed while it ran: stored stale at birth, and served as
      // such (one background refresh) until it would have gone stale anyway.
      if (scope?.tainted) (entry.staleAt = entry.storedAt), (entry.swrUntil = Math.max(entry.swrUntil, verdict.staleAt));
      if (this.options.includes && this.#hooks !== undefined && isHtml(find('content-type'))) {
        const template = templateOf(result.body);
        if (template !== undefined) (entry.esi = true), (entry.template = template);
      }
      // Headers and overhead count against the memory budget too: an entry the memory tier would
      // refuse is "too large", not a store.
      if (entrySize(entry) <= this.options.maxSize) {
        const key = this.store(primary, entry, req.headers);
        return { entry, key };
      }
    }
    // The verdict (taken at header time) explains a response that was never kept; otherwise the
    // capture's own reason does (too large, aborted, handler error, length mismatch).
    const judged = verdict !== undefined && !verdict.storable ? verdict : undefined;
    const reason = judged?.reason ?? (result.ok ? 'too large' : result.reason);
    const sticky = judged?.sticky ?? reason === 'too large';
    if (sticky && this.#passKeys !== undefined) this.#passKeys.set(primary, reason);
    if (!result.ok && result.error !== undefined) debug('render failed: %s %s', reason, primary);
    this.#emit('pass', { key: primary, url: req.url ?? '', reason });
    return { sticky };
  }

  /**
   * Stores an entry under its variant key in every tier and returns that key. A newer Vary for
   * the same primary key replaces the old variants; past maxVariants the oldest is dropped.
   */
  store(primary: string, entry: Entry, requestHeaders: IncomingMessage['headers']): string {
    const key = variantKey(primary, entry.vary, requestHeaders);
    const spec = this.#vary.get(primary);
    if (entry.vary.length === 0) {
      if (spec !== undefined) {
        this.#vary.delete(primary);
        for (const old of spec.variants) this.#deleteEverywhere(old);
      }
    } else if (spec === undefined || spec.names.join(',') !== entry.vary.join(',')) {
      if (spec !== undefined) for (const old of spec.variants) this.#deleteEverywhere(old);
      this.#deleteEverywhere(primary);
      this.#vary.set(primary, { names: entry.vary, variants: [key] });
      // The variant list lives in memory; lower tiers outlive it (a disk store across a restart),
      // so they get a bodiless marker under the primary key that names the Vary headers.
      const marker: Entry = { ...entry, headers: [], body: Buffer.alloc(0), head: undefined, deps: undefined, esi: undefined, template: undefined };
      for (const store of this.#stores) this.#storeSet(store, primary, marker);
    } else {
      const i = spec.variants.indexOf(key);
      if (i !== -1) spec.variants.splice(i, 1);
      spec.variants.push(key);
      while (spec.variants.length > this.options.maxVariants) this.#deleteEverywhere(spec.variants.shift()!);
    }
    const hooks = this.#hooks;
    const before = hooks === undefined ? undefined : this.memory.get(key);
    this.memory.set(key, entry);
    hooks?.onEntry(key, before, entry);
    for (const store of this.#stores) this.#storeSet(store, key, entry);
    this.#targets.remember(entry);
    this.#counters.stores++;
    this.#emit('store', { key, url: entry.url });
    return key;
  }

  /** Removes a URL (all its variants) from every tier. Used for unsafe methods (RFC 9111 §4.4). */
  removePrimary(primary: string): void {
    const spec = this.#vary.get(primary);
    if (spec !== undefined) {
      this.#vary.delete(primary);
      for (const key of spec.variants) this.#deleteEverywhere(key);
    }
    this.#deleteEverywhere(primary);
  }

  #deleteEverywhere(key: string): void {
    const hooks = this.#hooks;
    if (hooks !== undefined) {
      const before = this.memory.get(key);
      if (before !== undefined) hooks.onEntry(key, before, undefined);
    }
    this.memory.delete(key);
    for (const store of this.#stores) {
      try {
        const r = store.delete(key);
        if (isPromise(r)) r.catch((error: unknown) => this.#fail(new StoreError(`${store.name}.delete failed`, { cause: error })));
      } catch (error) {
        this.#fail(new StoreError(`${store.name}.delete failed`, { cause: error }));
      }
    }
  }

  async #storeGet(store: CacheStore, key: string): Promise<Entry | undefined> {
    try {
      const entry = await store.get(key);
      if (entry !== undefined && Date.now() >= entry.expiresAt) return undefined;
      return entry;
    } catch (error) {
      this.#fail(new StoreError(`${store.name}.get failed`, { cause: error }));
      return undefined;
    }
  }

  #storeSet(store: CacheStore, key: string, entry: Entry): void {
    try {
      const r = store.set(key, entry);
      if (isPromise(r)) this.#track(r.catch((error: unknown) => this.#fail(new StoreError(`${store.name}.set failed`, { cause: error }))));
    } catch (error) {
      this.#fail(new StoreError(`${store.name}.set failed`, { cause: error }));
    }
  }

  /**
   * Removes request headers a stored response must not depend on: validators and Range (the
   * cache wants the full representation and answers conditionals itself), and unkeyed headers.
   */
  #prepareRequest(req: IncomingMessage): void {
    alignWithKey(req, this.options);
    const strip = this.options.unkeyedHeaders;
    let stripped = false;
    for (const name of CONDITIONAL_HEADERS) if (req.headers[name] !== undefined) (delete req.headers[name], (stripped = true));
    for (const name of strip) if (req.headers[name] !== undefined) (delete req.headers[name], (stripped = true));
    if (!stripped) return;
    const raw = req.rawHeaders;
    const kept: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const lower = raw[i]!.toLowerCase();
      if (!CONDITIONAL_HEADERS.includes(lower) && !strip.includes(lower)) kept.push(raw[i]!, raw[i + 1]!);
    }
    raw.length = 0;
    raw.push(...kept);
  }

  /** Runs the handler; a throw or rejection aborts the capture and never leaves waiters hanging. */
  #invoke(
    req: IncomingMessage,
    res: ServerResponse,
    ex: Exchange,
    control: CaptureControl | undefined,
    extra: { scope?: RenderScope | undefined; rescue?: () => boolean } = {},
  ): boolean | Promise<boolean> {
    const { scope, rescue } = extra;
    let r: unknown;
    try {
      r = scope === undefined ? ex.run(req, res) : this.#hooks!.runInScope(scope, () => ex.run(req, res));
    } catch (error) {
      return this.#runFailed(res, ex, { control, rescue }, error);
    }
    if (isPromise(r)) {
      return r.then(
        () => false,
        (error: unknown) => this.#runFailed(res, ex, { control, rescue }, error),
      );
    }
    return false;
  }

  #runFailed(res: ServerResponse, ex: Exchange, at: { control: CaptureControl | undefined; rescue: (() => boolean) | undefined }, error: unknown): boolean {
    this.#fail(new HandlerError('handler failed', { cause: error }));
    // A stale copy answers instead of the error (the client sees a cached response, not a 500).
    if (at.rescue?.()) return true;
    at.control?.abort('handler error', error);
    if (ex.rethrow) throw error;
    if (!res.headersSent) {
      res.statusCode = 500;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end('Internal Server Error');
    } else res.destroy();
    return false;
  }

  #pass(req: IncomingMessage, res: ServerResponse, ex: Exchange, at: { key: string; reason: string }): boolean | Promise<boolean> {
    this.#counters.passes++;
    debug('pass: %s %s', at.reason, at.key);
    setStatusHeaders(res, this.#statusHeaders, 'PASS');
    this.#emit('pass', { key: at.key, url: req.url ?? '', status: 'PASS', reason: at.reason });
    // With includes on, a passed HTML response is assembled too: its client must never see raw
    // include tags. Nothing is kept (onHeaders: false); without includes no capture is installed.
    const control =
      this.#hooks !== undefined && this.options.includes
        ? captureResponse(res, { onHeaders: () => false, onDone: () => undefined, transform: this.#transformFor(req, ex.regen ?? this.#defaultRegen) }, this.options.maxEntrySize)
        : undefined;
    return this.#invoke(req, res, ex, control);
  }

  /** The capture transform that assembles an HTML response for its client (includes on). */
  #transformFor(req: IncomingMessage, runner: Runner | undefined): NonNullable<CaptureHooks['transform']> {
    return (_status, headers) => (isHtml(headers['content-type']) ? (body) => this.#assembleFresh(body, req, runner) : undefined);
  }

  /** Unsafe methods pass; a successful one invalidates its URL and Location (RFC 9111 §4.4). */
  #passMethod(req: IncomingMessage, res: ServerResponse, ex: Exchange): boolean | Promise<boolean> {
    const method = req.method ?? '';
    if (method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE') {
      res.once('finish', () => {
        if (res.statusCode >= 400) return;
        const targets = [req.url ?? ''];
        for (const h of ['location', 'content-location'] as const) {
          const v = res.getHeader(h);
          if (typeof v === 'string') targets.push(v);
        }
        for (const target of targets) this.#invalidateTarget(req, target);
      });
    }
    return this.#pass(req, res, ex, { key: '', reason: `method ${method}` });
  }

  #invalidateTarget(req: IncomingMessage, target: string): void {
    let path = target;
    if (/^https?:\/\//i.test(target)) {
      try {
        const u = new URL(target);
        // Only same-origin URIs may be invalidated (RFC 9111 §4.4).
        if (u.host.toLowerCase() !== (req.headers.host ?? '').toLowerCase()) return;
        path = u.pathname + u.search;
      } catch {
        return;
      }
    }
    if (!path.startsWith('/')) return;
    let primary: string | undefined;
    try {
      primary = primaryKey(req, this.options, path);
    } catch {
      primary = undefined;
    }
    if (primary !== undefined) {
      debug('invalidate after %s: %s', req.method, primary);
      this.removePrimary(primary);
    }
  }

  /**
   * Renders a URL in the background, with no client connection, and stores the result; one
   * render per key at a time (a second call joins the first). Resolves to the stored entry, or
   * undefined when the response was not storable or the render failed (reported as `error`).
   */
  regenerate(target: { url: string; host: string; headers?: Record<string, string> }, runner?: Runner): Promise<Entry | undefined> {
    const regen = runner ?? this.#defaultRegen;
    if (regen === undefined || this.#closed) {
      return Promise.resolve(undefined);
    }
    const headers: Record<string, string> = { ...target.headers };
    if (target.host !== '') headers.host = target.host;
    const exchange = syntheticExchange({ url: target.url, headers });
    const primary = primaryKey(exchange.req, this.options);
    if (primary === undefined) {
      exchange.dispose();
      return Promise.resolve(undefined);
    }
    const spec = this.#vary.get(primary);
    const key = spec === undefined ? primary : variantKey(primary, spec.names, exchange.req.headers);
    const existing = this.#flights.get(key);
    if (existing !== undefined) {
      exchange.dispose();
      return existing.promise.then((r) => (r.stale ? undefined : r.entry));
    }
    const flight = this.#flights.start(key);
    const ticket: RenderTicket = { kind: 'render', flight, key, primary, used: false };
    this.#tickets.set(exchange.req, ticket);
    this.#counters.regenerations++;
    debug('regenerate %s', key);
    const { res } = exchange;
    // A render that never reaches this cache's middleware (or ends before it) must still settle.
    const settleUnused = (): void => {
      if (!ticket.used) this.#flights.settle(key, flight, {});
    };
    res.once('finish', settleUnused);
    res.once('close', settleUnused);
    try {
      const r = regen(exchange.req, res);
      if (isPromise(r)) r.then(undefined, (error: unknown) => this.#regenFailed(res, error));
    } catch (error) {
      this.#regenFailed(res, error);
    }
    return flight.promise.then((result) => {
      exchange.dispose();
      if (result.entry === undefined || result.stale) {
        this.#fail(new RegenerateError(`background render of ${target.url} stored nothing`));
        return undefined;
      }
      return result.entry;
    });
  }

  /**
   * Applies an invalidation: records its epochs (entries it reaches turn stale; `hard` ones are
   * gone), appends it to the log, tells `onInvalidate` hooks and `invalidate` listeners, and
   * queues its refetch list. Never deletes the live cache wholesale. `host` is used for refetch
   * URIs whose host is unknown (no entry was stored for them). A record received from a peer is
   * applied with `origin: 'remote'` and the `at` it had there, so the copies that peer rendered
   * after it are accepted here (refetch once per cluster) while older ones are refused.
   *
   * Cluster-wide: a record with the same content as one another node sent within
   * {@link DUPLICATE_WINDOW} is the same publication (one flush per dispatcher): logged and
   * reported, but no new epoch and no second refetch. With peers and `invalidation.propagate`,
   * each refetch URI is rendered only by its rendezvous owner among live nodes; the others keep
   * serving their old copy and take the owner's new one (see {@link PEER_REFETCH_WAIT}).
   * `context.node` is the base URL of the node a remote record came from.
   * @throws TypeError when a path, tag or URI is malformed (nothing is applied then).
   */
  invalidate(
    input: InvalidationInput,
    context: { origin?: 'local' | 'remote'; host?: string; at?: number; node?: string; source?: { node: string; id: number } } = {},
  ): InvalidationResult {
    // Invalidation works on paths: an absolute URL counts for its path on every host.
    const paths = (input.paths ?? []).map((p, i) => {
      const v = targetOption(p, `paths[${i}]`);
      return v.startsWith('/') ? v : new URL(v).pathname;
    });
    const tags = [...(input.tags ?? [])];
    tags.forEach((t, i) => {
      if (typeof t !== 'string' || t === '' || /\s/.test(t)) throw new TypeError(`expected tags[${i}] to be a non-empty string without spaces, got ${JSON.stringify(t)}`);
    });
    const refetch = [...(input.refetch ?? [])];
    refetch.forEach((u, i) => targetOption(u, `refetch[${i}]`));
    const scope = input.scope ?? 'tree';
    if (scope !== 'tree' && scope !== 'resource') throw new TypeError(`expected scope to be 'resource' or 'tree', got ${JSON.stringify(scope)}`);
    const hard = input.hard === true;
    // Strictly after every render already started (their storedAt is at most max(now, newest)),
    // and at or before every render starting from now on: no same-millisecond ambiguity.
    const localAt = Math.max(Date.now(), this.#epochs.newest) + EPOCH_STEP;
    // A peer's time may move the epoch back (it happened earlier there), never ahead of ours: a
    // peer with a fast clock must not make every local render count as older than it.
    const remote = context.origin === 'remote' && typeof context.at === 'number' && Number.isFinite(context.at);
    const at = remote ? Math.min(context.at!, localAt) : localAt;
    const group = this.#group({ paths, scope, hard, tags, refetch }, { at, node: context.node ?? this.options.peers.self ?? '' });
    const duplicate = group.duplicate;
    const host = context.host ?? '';
    const record = this.#log.append(
      {
        origin: context.origin ?? 'local',
        paths,
        scope,
        hard,
        tags,
        refetch,
        host,
        ...(context.source === undefined ? {} : { source: context.source }),
        ...(duplicate ? { duplicate } : {}),
      },
      at,
    );
    if (paths.length > 0 || tags.length > 0) {
      // A duplicate's epoch would only move the publication's epoch forward past copies already
      // rendered after it (by the node refetching them): skipped.
      if (!duplicate) this.#epochs.record({ paths, scope, hard, tags }, at);
      this.#counters.invalidations++;
    }
    if (duplicate) this.#invalidationDuplicates++;
    debug('invalidation #%d: %s %s refetch %d', record.id, paths.join(' '), tags.join(' '), refetch.length);
    for (const hook of this.#invalidateHooks) {
      try {
        hook(record);
      } catch (error) {
        this.#fail(new HandlerError('onInvalidate hook threw', { cause: error }));
      }
    }
    if (this.#events.listenerCount('invalidate') > 0) this.#events.emit('invalidate', record);
    const targets = duplicate ? [] : this.#targets.resolve(refetch, host);
    const refetched = targets.length === 0 ? Promise.resolve({ ok: 0, failed: 0 }) : this.#refetchOnce(targets, group.group);
    this.#track(refetched);
    return { record, refetched };
  }

  /** Finds or starts the publication a record belongs to (see {@link DUPLICATE_WINDOW}). */
  #group(content: Omit<InvalidationInput, 'refetch'> & { refetch: string[] }, at: { at: number; node: string }): { group: InvalidationGroup; duplicate: boolean } {
    const sorted = (a: readonly string[] | undefined): string[] => [...(a ?? [])].sort();
    const id = JSON.stringify([sorted(content.paths), content.scope, content.hard, sorted(content.tags), sorted(content.refetch)]);
    const now = Date.now();
    const known = this.#groups.get(id);
    // Another node's copy of a publication seen here moments ago. The same node sending the same
    // content again is a new publication (or a flush agent's retry): applied in full.
    if (known !== undefined && now - known.seenAt < DUPLICATE_WINDOW && !known.nodes.has(at.node)) {
      known.nodes.add(at.node);
      known.first = Math.min(known.first, at.at);
      known.last = Math.max(known.last, at.at);
      return { group: known, duplicate: true };
    }
    const group: InvalidationGroup = { seenAt: now, first: at.at, last: at.at, nodes: new Set([at.node]) };
    this.#groups.set(id, group);
    return { group, duplicate: false };
  }

  /**
   * Refetches targets once for the cluster: with peers and propagation, a target is rendered here
   * only when this node is its rendezvous owner among live nodes; for the others this node waits
   * for the owner's copy. Without peers, everything is rendered here.
   */
  async #refetchOnce(targets: RefetchTarget[], group: InvalidationGroup): Promise<RefetchSummary> {
    const cluster = this.peers;
    const self = this.options.peers.self;
    if (cluster === undefined || !this.options.propagate || self === undefined || cluster.peers.length === 0) return this.#refetcher.run(targets);
    const mine: RefetchTarget[] = [];
    const theirs: RefetchTarget[] = [];
    for (const t of targets) ((cluster.liveOwner(t.primary) ?? self) === self ? mine : theirs).push(t);
    debug('refetch: %d here, %d on their owners', mine.length, theirs.length);
    const results = await Promise.all([this.#refetcher.run(mine), ...theirs.map((t) => this.#awaitPeerCopy(t, group))]);
    return results.reduce((a, b) => ({ ok: a.ok + b.ok, failed: a.failed + b.failed }), { ok: 0, failed: 0 });
  }

  /**
   * Waits for the node refetching `target` to have its new copy, asking the peers with growing
   * pauses for at most {@link PEER_REFETCH_WAIT}; meanwhile the old copy here is served (as for a
   * local refetch). A copy is taken only when it was rendered after the publication reached the
   * cluster (`group.first`) and no later invalidation reaches it; it is stored here restamped to
   * now (its Age kept), so this node's own record of the publication does not refuse it. When
   * none shows up in time (the owner is down or its render failed), this node renders it.
   * Client requests with nothing servable here wait for this (see #lookup) instead of rendering.
   */
  async #awaitPeerCopy(target: RefetchTarget, group: InvalidationGroup): Promise<RefetchSummary> {
    const { primary } = target;
    // A local refetch of it is already queued: that render will do.
    if (this.#refetcher.has(primary)) return { ok: 0, failed: 0 };
    const waiting = this.#awaiting.get(primary);
    if (waiting !== undefined) {
      // Already waiting (an earlier publication): wait for this one's copy instead, from now.
      waiting.group = group;
      waiting.deadline = Date.now() + PEER_REFETCH_WAIT;
      return { ok: 0, failed: 0 };
    }
    let finished!: () => void;
    const wait = { group, deadline: Date.now() + PEER_REFETCH_WAIT, done: new Promise<void>((resolve) => (finished = resolve)) };
    this.#awaiting.set(primary, wait);
    let pause = 10;
    try {
      while (!this.#closed && Date.now() < wait.deadline) {
        await new Promise((resolve) => setTimeout(resolve, pause).unref());
        pause = Math.min(pause * 2, 200);
        if (this.#closed) return { ok: 0, failed: 0 };
        const hit = await this.peers!.find({ ns: 'r', key: primary, headers: {}, freshAt: Date.now() }, (entry) => this.#acceptRefetched(entry, primary, wait.group));
        if (hit === undefined) continue;
        const now = this.renderTime();
        const copy: Entry = { ...hit.entry, storedAt: now, initialAge: hit.entry.initialAge + Math.max(0, Math.floor((now - hit.entry.storedAt) / 1000)) };
        this.store(primary, copy, {});
        this.#peerRefetches++;
        debug('refetch %s: took the copy of %s', primary, hit.peer);
        if (this.#events.listenerCount('refetch') > 0) this.#events.emit('refetch', { url: target.url, host: target.host, key: primary, peer: hit.peer });
        return { ok: 1, failed: 0 };
      }
    } finally {
      this.#awaiting.delete(primary);
      finished();
    }
    if (this.#closed) return { ok: 0, failed: 0 };
    debug('refetch %s: no peer copy within %d ms, rendering here', primary, PEER_REFETCH_WAIT);
    return this.#refetcher.run([target]);
  }

  /** A peer's copy of a page being refetched for the publication `group` (see #awaitPeerCopy). */
  #acceptRefetched(entry: Entry, primary: string, group: InvalidationGroup): boolean {
    if (entry.storedAt < group.first) return false;
    const verdict = this.#epochs.check(entry);
    // Invalidated by something later than this publication: not the copy we wait for.
    if (verdict !== undefined && verdict.at > group.last) return false;
    const { cacheStatuses, maxEntrySize } = this.options;
    return acceptPeerEntry(entry, { primary, sent: {}, view: {}, authorized: false, cacheStatuses, maxEntrySize, isInvalidated: () => false, now: Date.now() });
  }

  /** Applies a record received from a peer (see {@link Propagator.receive}). */
  #applyRemote(record: WireRecord, from: { node: string; origin: string }): void {
    this.invalidate(
      { paths: record.paths, scope: record.scope, hard: record.hard, tags: record.tags, refetch: record.refetch },
      { origin: 'remote', at: record.at, host: record.host, node: from.node, source: { node: from.origin, id: record.id } },
    );
  }

  /**
   * The `storedAt` for a render or load starting now: the clock, but never before the newest
   * invalidation already applied, so something started after an invalidation (even within its
   * millisecond) is at or after its epoch, and something started before it is older.
   */
  renderTime(): number {
    return Math.max(Date.now(), this.#epochs.newest);
  }

  /**
   * Registers a hook called synchronously with every applied invalidation record, local or
   * remote (a propagation layer ships the local ones). Returns a function that unregisters it.
   * @internal
   */
  onInvalidate(hook: (record: InvalidationRecord) => void): () => void {
    this.#invalidateHooks.add(hook);
    return () => this.#invalidateHooks.delete(hook);
  }

  /** The invalidation log (ids increase by one; `since(id)` returns what a peer missed). */
  get invalidationLog(): InvalidationLog {
    return this.#log;
  }

  /**
   * Renders URLs in the background and stores them (priming a node before it goes live), at
   * most `concurrency` at once. Never rejects; failures are counted in the summary.
   */
  prime(
    urls: readonly string[],
    options: { concurrency?: number; host?: string; handler?: Runner; onProgress?: (progress: PrimeProgress) => void } = {},
  ): Promise<RefetchSummary> {
    urls.forEach((u, i) => targetOption(u, `urls[${i}]`));
    return prime(this.#targets.resolve(urls, options.host ?? ''), {
      concurrency: options.concurrency ?? this.options.refetchConcurrency,
      render: (t) => this.regenerate({ url: t.url, host: t.host }, options.handler),
      onProgress: options.onProgress,
    });
  }

  #applyFlush(request: FlushRequest, host: string): { id: number; refetch: number } {
    const { record } = this.invalidate(request, { host });
    return { id: record.id, refetch: record.refetch.length };
  }

  #refetchSettled(target: RefetchTarget, entry: Entry | undefined, error: unknown): void {
    const payload = { url: target.url, host: target.host, key: target.primary };
    if (entry !== undefined) {
      this.#counters.refetches++;
      debug('refetched %s', target.primary);
      if (this.#events.listenerCount('refetch') > 0) this.#events.emit('refetch', payload);
      return;
    }
    this.#counters.refetchErrors++;
    debug('refetch failed %s', target.primary);
    if (this.#events.listenerCount('refetch-error') > 0) {
      this.#events.emit('refetch-error', { ...payload, error: error ?? new RegenerateError(`refetch of ${target.url} stored nothing`) });
    }
  }

  /** The primary key a background render of `url` on `host` fills. */
  #primaryOf(url: string, host: string): string | undefined {
    const { req, dispose } = syntheticExchange({ url, headers: host === '' ? {} : { host } });
    try {
      return primaryKey(req, this.options);
    } catch {
      return undefined;
    } finally {
      dispose();
    }
  }


  #regenFailed(res: ServerResponse, error: unknown): void {
    this.#fail(new RegenerateError('background render threw', { cause: error }));
    if (!res.writableEnded) res.destroy();
  }

  #renderTicket(req: IncomingMessage, res: ServerResponse, ex: Exchange, ticket: RenderTicket): boolean | Promise<boolean> {
    ticket.used = true;
    // Waiters of a failed background render get the old copy, if it is still within stale-if-error.
    const old = this.memory.get(ticket.key);
    const now = Date.now();
    const fallback =
      old !== undefined && now < old.sieUntil && this.options.staleOnErrorStatuses.size > 0 && !this.#epochs.check(old)?.hard ? old : undefined;
    return this.#lead(req, res, { ...ex, rethrow: ex.rethrow ?? false }, { primary: ticket.primary, key: ticket.key, ticket, fallback });
  }

  /**
   * Writes an entry. A template entry (ESI) is assembled first: the promise resolves once it is
   * written. Any other entry is written at once (undefined): the hit path allocates no promise.
   */
  #serve(req: IncomingMessage, res: ServerResponse, entry: Entry, status: CacheStatus, now: number, ex: Exchange): Promise<boolean> | undefined {
    if (entry.esi === true && this.#hooks !== undefined && this.options.includes) return this.#serveTemplate(req, res, entry, { status, now, ex });
    const ctx = this.#serveCtx;
    ctx.status = status;
    ctx.now = now;
    serveEntry(req, res, entry, ctx);
    return undefined;
  }

  /** Serves a template entry: each include filled from the data cache, or 500 when one must fail the page. */
  async #serveTemplate(req: IncomingMessage, res: ServerResponse, entry: Entry, at: { status: CacheStatus; now: number; ex: Exchange }): Promise<boolean> {
    let body: Buffer;
    try {
      body = await this.#hooks!.assemble(entry, req, at.ex.regen ?? this.#defaultRegen);
    } catch (error) {
      this.#fail(error instanceof CacheError ? error : new IncludeError('include assembly failed', { cause: error }));
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'content-length': '21' });
        res.end('Internal Server Error');
      }
      return true;
    }
    serveAssembled(req, res, entry, body, { status: at.status, now: at.now, statusHeaders: this.#statusHeaders });
    return true;
  }

  /**
   * Names the app to run for background renders and sub-requests until a request brings its
   * own adapter (called when a handler is wrapped, so they work before the first request).
   */
  useRunner(runner: Runner): void {
    this.#defaultRegen ??= runner;
  }

  /** Plugs the data cache in (once, at construction of the cache). */
  attach(hooks: EngineHooks): void {
    this.#hooks = hooks;
  }

  /**
   * Marks the entry under `key` stale now, because data it was rendered from changed. The grace
   * rules of an invalidation apply: it is served STALE while one background refresh runs for
   * `gracePeriod` (never past the time it would have gone stale anyway); after that a request
   * waits for a fresh render. Returns whether a fresh entry was marked.
   */
  markStale(key: string): boolean {
    const entry = this.memory.get(key);
    const now = Date.now();
    if (entry === undefined || entry.staleAt <= now) return false;
    const marked: Entry = { ...entry, staleAt: now, swrUntil: Math.min(entry.staleAt, now + this.options.gracePeriod) };
    this.memory.set(key, marked);
    for (const store of this.#stores) this.#storeSet(store, key, marked);
    debug('stale: dependency changed %s', key);
    this.#emit('stale', { key, url: entry.url, reason: 'dependency changed' });
    return true;
  }

  /**
   * Runs a GET through the wrapped app with no client connection and without the response
   * cache (an internal sub-request of the data cache), resolving to what the app answered. The
   * app is `runner`, else the last adapter's; with neither, resolves to a failed capture.
   */
  subrequest(init: SyntheticRequest, runner: Runner | undefined): Promise<CaptureResult> {
    const run = runner ?? this.#defaultRegen;
    if (run === undefined || this.#closed) return Promise.resolve({ ok: false, reason: 'no handler to run a sub-request (serve a request or wrap a handler first)' });
    const exchange = syntheticExchange(init);
    this.#tickets.set(exchange.req, { kind: 'sub' });
    return new Promise<CaptureResult>((resolve) => {
      captureResponse(exchange.res, { onHeaders: () => true, onDone: resolve }, this.options.maxEntrySize);
      try {
        const r = run(exchange.req, exchange.res);
        if (isPromise(r)) r.then(undefined, (error: unknown) => this.#regenFailed(exchange.res, error));
      } catch (error) {
        this.#regenFailed(exchange.res, error);
      }
    }).finally(() => exchange.dispose());
  }

  #track(p: Promise<unknown>): void {
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  #emit(event: string, payload: CacheEvent): void {
    if (this.#events.listenerCount(event) > 0) this.#events.emit(event, payload);
  }

  /** A peer lookup failed: already counted by the cluster; reported as `peer-error` (not `error`: a peer failure is routine). */
  #emitPeerError(error: PeerError): void {
    if (this.#events.listenerCount('peer-error') > 0) this.#events.emit('peer-error', error);
  }

  /** Counts and reports an internal failure; never throws, never fails a response. */
  #fail(error: CacheError): void {
    this.#counters.errors++;
    debug('error %s: %s', error.code, error.message);
    if (this.#events.listenerCount('error') > 0) this.#events.emit('error', error);
  }

  stats(): CacheStats {
    const { entries, bytes } = this.memory.size();
    const peers = this.peers;
    const peerCounters = peers?.counters ?? { peerLoads: 0, peerHits: 0, peerMisses: 0, peerErrors: 0, peerTimeouts: 0 };
    const propagation: PropagationCounters = this.#propagator?.counters ?? { invalidationsSent: 0, invalidationsReceived: 0, propagationErrors: 0, propagationResets: 0 };
    return {
      ...this.#counters,
      entries,
      bytes,
      ...peerCounters,
      peers: peers?.states() ?? [],
      ...propagation,
      invalidationDuplicates: this.#invalidationDuplicates,
      peerRefetches: this.#peerRefetches,
    };
  }

  /** Waits for background work, then releases every store. */
  async close(): Promise<void> {
    this.#closed = true;
    this.peers?.close();
    this.#propagator?.close();
    await Promise.allSettled([...this.#background]);
    for (const store of [this.memory, ...this.#stores]) {
      try {
        await store.close?.();
      } catch (error) {
        this.#fail(new StoreError(`${store.name}.close failed`, { cause: error }));
      }
    }
  }
}

/** The request headers a variant depends on, copied for a background render of it. */
function varyHeaders(entry: Entry, req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of entry.vary) {
    const v = req.headers[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
