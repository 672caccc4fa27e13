/**
 * The data cache (`cache.data`): values and sub-responses a handler needs while it renders, each
 * with its own lifetime, in their own byte-bounded memory tier. Same engine pieces as the
 * response cache: entries ({@link Entry}, serialized to bytes), single flight ({@link Flights}),
 * RFC 9111 through policy.ts, errors as CacheError subclasses counted and emitted. It also
 * records which data each render read, so a change to the data makes those responses stale.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import createDebug from 'debug';
import { LRUCache } from 'lru-cache';
import type { EngineHooks, RenderScope, ResponseServices } from '../seam.js';
import type { Entry } from '../entry.js';
import { CacheError, DataFetchError, DataLoadError, DataLoopError, DataSerializeError, IncludeError } from '../errors.js';
import { Flights, settledWithin } from '../flight.js';
import { normalizeTarget } from '../key.js';
import type { Milliseconds } from '../options/units.js';
import type { ResolvedDataOptions } from './options.js';
import type { ResolvedOptions } from '../options/types.js';
import { evaluateRevalidation, evaluateResponse, storedHeaders, type PolicyOptions, type Verdict } from '../policy.js';
import type { PeerCounters } from '../peers/cluster.js';
import type { LookupQuery } from '../peers/protocol.js';
import { STALE_ON_ERROR_STATUSES } from '../options/defaults.js';
import { MemoryStore } from '../stores/memory.js';
import type { CacheStore } from '../stores/store.js';
import { resolveTiers } from '../stores/tiers.js';
import { DataTiers } from './tiers.js';
import { isHtml, parseTemplate, templateOf, type Include, type Segment } from './esi.js';
import { httpGet, OriginLimits, withTimeout, type RawResponse } from './fetch.js';
import { DATA_NAMESPACE, DataDeletions, judgePeerData } from './peers.js';
import { DATA, DependencyIndex, digest, RESPONSE, type Scope } from './scope.js';
import { deserializeValue, serializeValue } from './serialize.js';

const debug = createDebug('stratacache:data');

/** Options of one `cache.data.get` call. */
export interface DataGetOptions {
  /** Freshness lifetime of the loaded value in ms. @default options.data.defaultTtl */
  ttl?: Milliseconds;
  /**
   * After `ttl`, for this many ms the old value is returned at once while one background call
   * of the loader refreshes it (RFC 5861's stale-while-revalidate, for values). @default 0
   */
  staleWhileRevalidate?: Milliseconds;
  /**
   * After `ttl`, for this many ms the old value is returned when the loader throws; outside
   * the window the loader's error reaches the caller unchanged. @default 0
   */
  staleIfError?: Milliseconds;
  /** Tags stored with the value (for tag invalidation). @default [] */
  tags?: readonly string[];
}

/** Options of one `cache.data.fetch` call. */
export interface DataFetchOptions {
  /**
   * The request being rendered: a relative URL is requested from its `Host`. Inside a render
   * the cache knows it already; pass it when calling from elsewhere.
   */
  req?: IncomingMessage;
  /**
   * Request headers to send. They are part of the cache key: calls sending other values get
   * their own entries (the data cache keeps no Vary map). @default {}
   */
  headers?: Record<string, string>;
  /** Give up after this many ms (DataTimeoutError). @default options.data.fetch.timeout */
  timeout?: Milliseconds;
}

/** Where a data answer came from. */
export type DataStatus = 'HIT' | 'MISS' | 'STALE' | 'REVALIDATED' | 'PEER';

/** A response from `cache.data.fetch`. */
export interface DataResponse {
  status: number;
  /** Response headers, lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The whole body. Shared with the cache: read it, do not modify it. */
  body: Buffer;
  /**
   * HIT, MISS, STALE (served stale: revalidating, or the origin failed), REVALIDATED (a 304
   * refreshed it), PEER (a fresh copy from another node of the cluster, `options.peers`).
   */
  cache: DataStatus;
  /** The body parsed as JSON. */
  json(): Promise<unknown>;
  /** The body as UTF-8 text. */
  text(): string;
}

/**
 * Counters of the data cache. The `peer*` counters are this cache's lookups in the cluster
 * (namespace `d`), counted apart from the response cache's in `cache.stats()`.
 */
export interface DataStats extends PeerCounters {
  /** Calls of get and fetch (includes too). */
  gets: number;
  /** Answered from a fresh entry. */
  hits: number;
  /** Not fresh (or absent): the caller waited for a load. */
  misses: number;
  /** Loader calls and requests made (foreground and background); not peer lookups. */
  loads: number;
  /** Calls that waited for another call's load (or peer lookup) instead of loading. */
  loadsDeduped: number;
  /** Answered with a stale entry (revalidating, or the load failed within stale-if-error). */
  stale: number;
  /** Failed loads, background refreshes and includes; each also emitted as `error`. */
  errors: number;
  /** Entries in the data memory tier. */
  entries: number;
  /** Bytes charged in the data memory tier. */
  bytes: number;
}

/** How one load ended, shared by every caller that joined it. */
type Outcome = { ok: true; res: LoadedResponse } | { ok: false; error: unknown };

interface LoadedResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  cache: DataStatus;
  /** The peer's entry, when it came from a peer (a stale one is revalidated with its validators). */
  entry?: Entry;
}

/** Key prefixes: values of get() and responses of fetch() never collide. */
const VALUE = 'v:';
const URLKEY = 'u:';
/** Prefix of a deletion name covering a path fetched from any host (see DataDeletions). */
const PATHNAME = 'p:';
const EMPTY = Buffer.alloc(0);
/** RFC 5861 §4: the errors stale-if-error covers. */
const SERVER_ERRORS: ReadonlySet<number> = new Set(STALE_ON_ERROR_STATUSES);

/** The data cache behind `cache.data`. */
export class DataCache {
  readonly #engine: ResponseServices;
  readonly #peerOptions: ResolvedOptions['peers'];
  readonly #cacheStatuses: ReadonlySet<number>;
  readonly #events: EventEmitter;
  readonly #options: ResolvedDataOptions;
  readonly #policy: PolicyOptions & Pick<ResolvedOptions, 'storeHeaders'>;
  readonly #memory: MemoryStore;
  /** `data.stores` below memory (written through, read on a memory miss). */
  readonly #lower: DataTiers;
  /** Closed by the response side: not closed twice. */
  readonly #responseStores: readonly CacheStore[];
  readonly #flights = new Flights<Outcome>();
  readonly #deps: DependencyIndex;
  readonly #als = new AsyncLocalStorage<Scope>();
  readonly #limits: OriginLimits;
  readonly #templates = new WeakMap<Buffer, Segment[] | null>();
  readonly #digests = new WeakMap<Entry, string>();
  readonly #background = new Set<Promise<unknown>>();
  readonly #counters = { gets: 0, hits: 0, misses: 0, loads: 0, loadsDeduped: 0, stale: 0, errors: 0 };
  readonly #peerCounters: PeerCounters = { peerLoads: 0, peerHits: 0, peerMisses: 0, peerErrors: 0, peerTimeouts: 0 };
  /** Local deletions a peer copy must not undo (recorded only in a cluster). */
  readonly #deletions: DataDeletions;
  /**
   * Digests of peer values used but not copied here (`peers.updateLocalCache: false`), so a
   * response rendered from one is still marked stale when the key later changes here.
   */
  readonly #peerDigests: LRUCache<string, string>;

  /** @internal Built by the cache (`cache.data`), over the response side's services. */
  constructor(engine: ResponseServices, o: ResolvedOptions, events: EventEmitter) {
    this.#engine = engine;
    this.#events = events;
    this.#peerOptions = o.peers;
    this.#cacheStatuses = o.cacheStatuses;
    this.#options = o.data;
    this.#policy = { cacheStatuses: o.cacheStatuses, defaultTtl: o.data.defaultTtl, maxTtl: o.maxTtl, storeHeaders: o.storeHeaders };
    // A memory store listed first in data.stores is the data memory tier; the rest are lower tiers.
    const tiers = resolveTiers('data.stores', o.data.stores);
    this.#memory = tiers.memory ?? new MemoryStore({ maxSize: o.data.maxSize, maxEntrySize: o.data.maxEntrySize });
    this.#memory.listenEvictions((key, entry) => this.#deps.unlink(DATA + key, entry.deps));
    this.#lower = new DataTiers(tiers.lower, (error) => this.#fail(error));
    this.#responseStores = o.stores;
    // On Node 20 an enabled AsyncLocalStorage turns on async_hooks for the whole process: every
    // async resource (each request's socket writes, ticks, promises) then pays for propagating
    // the store, hits included (measured: about 8 us more CPU per hit in bench/hit.ts). The
    // storage is only needed while a render or load is open, so it is switched off whenever the
    // last scope closes; the next run() switches it on again.
    this.#deps = new DependencyIndex({ maxKeys: o.data.maxTrackedKeys, maxDependents: o.data.maxDependents, onIdle: () => this.#als.disable() });
    this.#limits = new OriginLimits(o.data.maxConcurrentPerOrigin);
    this.#deletions = new DataDeletions(o.data.maxTrackedKeys);
    this.#peerDigests = new LRUCache<string, string>({ max: o.data.maxTrackedKeys });
    engine.attach(this.#hooks());
    engine.onInvalidate((record) => {
      if (record.tags.length > 0) this.#tagsInvalidated(record.tags);
    });
    // Peers look up data keys here: from the data memory tier only, never a loader or a request.
    engine.endpoint?.register(DATA_NAMESPACE, (query) => this.#answerPeer(query));
  }

  /**
   * The value under `key`, from the cache or from `loader` (run once for concurrent callers).
   * Inside a render, the read is recorded: when the value is deleted or changes, the response
   * becomes stale.
   * @throws DataSerializeError when the loaded value cannot be stored as bytes; the loader's own
   * error, unchanged, when it throws and no stale value may be served.
   */
  async get<T>(key: string, loader: () => T | Promise<T>, options: DataGetOptions = {}): Promise<T> {
    if (typeof key !== 'string' || key === '') throw new TypeError(`expected key to be a non-empty string, got ${String(key)}`);
    if (typeof loader !== 'function') throw new TypeError(`expected loader to be a function, got ${typeof loader}`);
    const life = {
      ttl: checkDuration('options.ttl', options.ttl ?? this.#options.defaultTtl),
      swr: checkDuration('options.staleWhileRevalidate', options.staleWhileRevalidate ?? 0),
      sie: checkDuration('options.staleIfError', options.staleIfError ?? 0),
      tags: [...(options.tags ?? [])],
    };
    const k = VALUE + key;
    const link = `get(${key})`;
    const chain = this.#als.getStore()?.chain;
    // A loader that (through others) asks for its own key would join its own flight and wait forever.
    if (chain?.includes(link)) throw new DataLoopError([...chain, link]);
    this.#counters.gets++;
    this.#read(k);
    const entry = this.#memory.get(k);
    const now = Date.now();
    // A value stored before an invalidation of one of its tags (cache.invalidateTags) is loaded
    // again; it still answers if that load fails within its stale-if-error window.
    const invalidated = entry !== undefined && entry.tags.length > 0 && this.#engine.isInvalidated(entry);
    if (entry !== undefined && !invalidated && now < entry.staleAt) {
      this.#counters.hits++;
      return this.#value(entry, key) as T;
    }
    if (entry !== undefined && !invalidated && now < entry.swrUntil) {
      this.#counters.stale++;
      if (!this.#flights.has(k)) this.#backgroundLoad(k, () => this.#loadValue(k, key, loader, life));
      return this.#value(entry, key) as T;
    }
    this.#counters.misses++;
    const load = (): Promise<Outcome> => this.#loadValue(k, key, loader, life);
    const outcome = await this.#join(k, () => this.#lead(k, load, true));
    if (outcome.ok) {
      if (outcome.res.cache === 'STALE') this.#servedStalePeerCopy(k, load);
      return this.#value(outcome.res, key) as T;
    }
    if (!(outcome.error instanceof DataSerializeError) && entry !== undefined && Date.now() < entry.sieUntil) {
      this.#counters.stale++;
      debug('stale: loader failed, serving %s', key);
      return this.#value(entry, key) as T;
    }
    throw outcome.error;
  }

  /**
   * GETs `url` through the data cache, by the response's own Cache-Control (RFC 9111).
   * An absolute http(s) URL goes over the network (at most `data.fetch.maxConcurrentPerOrigin`
   * at once per origin); a path starting with `/` is an internal sub-request through the wrapped
   * app, with no network round trip. A stale entry with validators is revalidated (a 304
   * refreshes it); a failure within its stale-if-error window answers the stale entry.
   * @throws DataLoopError when the path is already being rendered above this call;
   * DataTimeoutError; DataFetchError when no response came; TypeError for any other URL.
   */
  async fetch(url: string, options: DataFetchOptions = {}): Promise<DataResponse> {
    const target = this.#target(url, options);
    this.#counters.gets++;
    this.#read(target.key);
    const entry = this.#memory.get(target.key);
    const now = Date.now();
    if (entry !== undefined && now < entry.staleAt) {
      this.#counters.hits++;
      return toResponse(entry, 'HIT');
    }
    if (entry !== undefined && now < entry.swrUntil) {
      this.#counters.stale++;
      if (!this.#flights.has(target.key)) this.#backgroundLoad(target.key, () => this.#loadUrl(target, entry, options));
      return toResponse(entry, 'STALE');
    }
    this.#counters.misses++;
    // Credentials sent with a request stay on this node: they would travel in the lookup's key.
    const shareable = target.headers.authorization === undefined && target.headers.cookie === undefined;
    const outcome = await this.#join(target.key, () => this.#lead(target.key, () => this.#loadUrl(target, entry, options), shareable));
    if (outcome.ok && outcome.res.cache === 'STALE') {
      const copy = outcome.res.entry;
      this.#servedStalePeerCopy(target.key, () => this.#loadUrl(target, copy, options));
    }
    const servable = entry !== undefined && Date.now() < entry.sieUntil;
    if (outcome.ok) {
      // RFC 5861 §4: stale-if-error covers 500, 502, 503 and 504 as well as no response at all.
      if (servable && SERVER_ERRORS.has(outcome.res.status)) return this.#staleOnError(entry, target.key);
      return toResponse(outcome.res, outcome.res.cache);
    }
    if (servable && !(outcome.error instanceof DataLoopError)) return this.#staleOnError(entry, target.key);
    throw outcome.error;
  }

  /**
   * Deletes the value stored by `get(key)`, and the responses stored by `fetch(key)` when `key`
   * is a URL (with any request headers; a path matches the responses fetched for it from any
   * host). Responses and data rendered from what was deleted become stale. Returns whether
   * anything was deleted. Deleting by URL scans the data keys (O(entries)).
   */
  delete(key: string): boolean {
    const keys: string[] = [VALUE + key];
    const at = Date.now();
    const clustered = this.#engine.peers !== undefined;
    // Fetched responses of a URL: one per set of request headers sent; a path's, one per host too.
    let matches: ((k: string) => boolean) | undefined;
    if (/^https?:\/\//i.test(key) && URL.canParse(key)) {
      const base = URLKEY + new URL(key).href;
      keys.push(base); // its dependents are told even when the entry itself already left memory
      matches = (k) => k.startsWith(`${base}\n`);
      if (clustered) this.#deletions.record(base, at);
    } else if (key.startsWith('/')) {
      const path = normalizeTarget(key, undefined);
      if (path !== undefined) matches = (k) => k.startsWith(URLKEY + '//') && pathOf(k) === path;
      if (clustered && path !== undefined) this.#deletions.record(PATHNAME + path, at);
    }
    if (matches !== undefined) for (const k of this.#memory.keys()) if (matches(k)) keys.push(k);
    let deleted = false;
    for (const k of keys) {
      if (this.#memory.get(k) !== undefined) deleted = true;
      if (clustered) this.#deletions.record(k, at);
      this.#peerDigests.delete(k);
      this.#drop(k);
      this.#changed(k, new Set());
    }
    return deleted;
  }

  /** Counters and the size of the data memory tier. */
  stats(): DataStats {
    const { entries, bytes } = this.#memory.size();
    return { ...this.#counters, ...this.#peerCounters, entries, bytes };
  }

  /**
   * Waits for background refreshes, for at most `waitMs` (a loader that never settles is
   * abandoned: its value is never stored), then empties the data memory tier.
   */
  async close(waitMs = Infinity): Promise<void> {
    await settledWithin([...this.#background], waitMs);
    await this.#lower.close(this.#responseStores);
    this.#memory.close();
  }

  // ---------------------------------------------------------------- loads

  /** Runs a loader in its own scope (what it reads becomes this value's dependencies) and stores its value. */
  async #loadValue(k: string, key: string, loader: () => unknown, life: Lifetimes): Promise<Outcome> {
    this.#counters.loads++;
    // The load's start, never before an invalidation already applied: a value whose load
    // straddled a tag invalidation counts as older than it.
    const startedAt = this.#engine.renderTime();
    const parent = this.#als.getStore();
    const scope = this.#deps.open({ chain: [...(parent?.chain ?? []), `get(${key})`], host: parent?.host ?? '', runner: parent?.runner });
    try {
      const value = await this.#als.run(scope, loader);
      const { body, contentType } = serializeValue(value, key);
      const now = Date.now();
      const staleAt = now + life.ttl;
      const times = { now, storedAt: startedAt, staleAt, swrUntil: staleAt + life.swr, sieUntil: staleAt + life.sie };
      const entry = newEntry({ status: 200, headers: [['content-type', contentType]], body, url: key, tags: life.tags }, times);
      this.#put(k, entry, scope);
      return { ok: true, res: { status: 200, headers: entry.headers, body, cache: 'MISS' } };
    } catch (error) {
      if (!(error instanceof DataSerializeError)) this.#fail(new DataLoadError(`loader of ${JSON.stringify(key)} failed`, { cause: error }));
      else this.#fail(error);
      return { ok: false, error };
    } finally {
      this.#deps.close(scope);
    }
  }

  async #loadUrl(target: Target, entry: Entry | undefined, options: DataFetchOptions): Promise<Outcome> {
    try {
      const res = await this.#request(target, entry, options);
      return { ok: true, res };
    } catch (error) {
      this.#fail(error instanceof CacheError ? error : new DataFetchError(`GET ${target.display} failed`, { cause: error }));
      return { ok: false, error };
    }
  }

  /** One request (conditional when the stale entry has validators), stored by its own headers. */
  async #request(target: Target, entry: Entry | undefined, options: DataFetchOptions): Promise<LoadedResponse> {
    const headers: Record<string, string> = { ...target.headers };
    // RFC 9111 §4.3.1: validate the stored response with its validators.
    if (entry?.etag !== undefined) headers['if-none-match'] = entry.etag;
    if (entry?.lastModified !== undefined) headers['if-modified-since'] = entry.lastModified;
    const conditional = entry !== undefined && (entry.etag !== undefined || entry.lastModified !== undefined);
    this.#counters.loads++;
    const parent = this.#als.getStore();
    const scope = this.#deps.open({
      chain: target.path === undefined ? (parent?.chain ?? []) : [...(parent?.chain ?? []), target.path],
      host: target.host,
      runner: parent?.runner,
    });
    try {
      const raw = await this.#send(target, headers, scope, options.timeout ?? this.#options.fetchTimeout);
      const now = Date.now();
      const policyReq = { method: 'GET', url: target.display, headers };
      if (raw.status === 304 && conditional) {
        // RFC 9111 §4.3.4: a 304 freshens the stored response and its body is reused.
        const revalidated = evaluateRevalidation(policyReq, entry, { status: 304, headers: raw.headers }, this.#policy, now);
        if (revalidated !== undefined) {
          const refreshed = this.#storeResponse(target.key, { status: entry.status, headers: revalidated.headers, body: entry.body }, { verdict: revalidated.verdict, scope, now });
          return { status: entry.status, headers: refreshed?.headers ?? revalidated.headers, body: entry.body, cache: 'REVALIDATED' };
        }
        // The 304 does not select the stored response: ask again without conditions.
        return this.#request(target, undefined, options);
      }
      const verdict = evaluateResponse(policyReq, { status: raw.status, headers: raw.headers }, this.#policy, now);
      const kept = storedHeaders(raw.headers, this.#policy);
      this.#storeResponse(target.key, { status: raw.status, headers: kept, body: raw.body }, { verdict, scope, now });
      return { status: raw.status, headers: verdict.storable ? kept : headerPairs(raw.headers), body: raw.body, cache: 'MISS' };
    } finally {
      this.#deps.close(scope);
    }
  }

  /** Sends the request: over the network, or through the wrapped app for a path. */
  #send(target: Target, headers: Record<string, string>, scope: Scope, timeout: number): Promise<RawResponse> {
    if (target.url !== undefined) {
      const url = target.url;
      return this.#limits.run(url.origin, () => httpGet(url, headers, timeout));
    }
    const run = this.#als.run(scope, () => this.#engine.subrequest({ url: target.path!, headers: { ...headers, host: target.host } }, scope.runner));
    return withTimeout(run, timeout, `GET ${target.display}`).then((result) => {
      if (!result.ok) throw new DataFetchError(`GET ${target.display} failed: ${result.reason}`, { cause: result.error });
      return { status: result.status, headers: result.headers as RawResponse['headers'], body: result.body };
    });
  }

  /** Stores a fetched response when its verdict allows; a not-storable one replaces nothing but is removed. */
  #storeResponse(
    key: string,
    res: { status: number; headers: Array<[string, string]>; body: Buffer },
    at: { verdict: Verdict; scope: Scope; now: number },
  ): Entry | undefined {
    const { verdict, scope, now } = at;
    if (!verdict.storable) {
      debug('not stored: %s %s', verdict.reason, key);
      // A server error leaves the stored response for stale-if-error; anything else replaces it.
      if (!SERVER_ERRORS.has(res.status)) this.#drop(key);
      return undefined;
    }
    const find = (name: string): string | undefined => res.headers.find(([n]) => n === name)?.[1];
    const entry = newEntry(
      { status: res.status, headers: res.headers, body: res.body, url: key.slice(URLKEY.length), tags: [] },
      { now, staleAt: verdict.staleAt, swrUntil: verdict.swrUntil, sieUntil: verdict.sieUntil, initialAge: verdict.initialAge },
    );
    // Kept past its stale windows when it has validators, so a later fetch revalidates it.
    entry.expiresAt = verdict.keepUntil;
    entry.etag = find('etag');
    entry.lastModified = find('last-modified');
    this.#put(key, entry, scope);
    return entry;
  }

  // ---------------------------------------------------------------- storage and dependencies

  /**
   * Stores an entry with what its load read. When its bytes differ from those its dependents
   * were rendered from, they become stale.
   */
  #put(k: string, entry: Entry, scope: Scope, writeThrough = true): void {
    if (scope.reads.size > 0) entry.deps = [...scope.reads];
    if (scope.tainted) (entry.swrUntil = Math.max(entry.swrUntil, entry.staleAt)), (entry.staleAt = entry.storedAt);
    const before = this.#memory.get(k);
    if (entry.body.length <= this.#options.maxEntrySize) {
      this.#memory.set(k, entry);
      if (writeThrough && !this.#lower.empty) this.#lower.write(k, entry);
    } else debug('not stored: %s over data.maxEntrySize', k);
    this.#deps.unlink(DATA + k, before?.deps);
    this.#deps.link(DATA + k, entry.deps, (key) => this.#digestOf(key));
    const sum = digest(entry.body);
    this.#digests.set(entry, sum);
    if (this.#deps.changed(k, sum)) this.#changed(k, new Set());
  }

  #drop(k: string): void {
    if (!this.#lower.empty) this.#lower.remove(k);
    const before = this.#memory.get(k);
    if (before === undefined) return;
    this.#memory.delete(k);
    this.#deps.unlink(DATA + k, before.deps);
  }

  /** `k` was deleted or changed: what was rendered from it is stale (responses) or dropped (data). */
  #changed(k: string, seen: Set<string>): void {
    if (seen.has(k)) return;
    seen.add(k);
    for (const dependent of this.#deps.take(k)) {
      const key = dependent.slice(1);
      if (dependent.startsWith(RESPONSE)) this.#engine.markStale(key);
      else {
        debug('dropped: %s read %s, which changed', key, k);
        // A peer's copy read the old bytes too: it must not come back in its place.
        if (this.#engine.peers !== undefined) this.#deletions.record(key, Date.now());
        this.#peerDigests.delete(key);
        this.#drop(key);
        this.#changed(key, seen);
      }
    }
  }

  /**
   * Tags were invalidated (cache.invalidateTags, a flush, a peer): what was rendered from data
   * carrying one of them turns stale, as after delete(). The values themselves are loaded again
   * on their next read (see get). Scans the data keys (O(entries)).
   */
  #tagsInvalidated(tags: readonly string[]): void {
    const wanted = new Set(tags);
    const reached: string[] = [];
    for (const k of this.#memory.keys()) if (this.#memory.get(k)?.tags.some((t) => wanted.has(t))) reached.push(k);
    for (const k of reached) this.#changed(k, new Set());
  }

  #digestOf(k: string): string | undefined {
    const entry = this.#memory.get(k);
    if (entry === undefined) return this.#peerDigests.get(k);
    let sum = this.#digests.get(entry);
    if (sum === undefined) this.#digests.set(entry, (sum = digest(entry.body)));
    return sum;
  }

  /** Records that the render in progress (if any) read `k`. */
  #read(k: string): void {
    this.#als.getStore()?.reads.add(k);
  }

  // ---------------------------------------------------------------- peers

  /**
   * The flight leader of a foreground load: asks the cluster first (groupcache's load: a peer
   * that has it, else a local load), then loads here on a miss, an error or a timeout. Event
   * trace: A leads k -> callers C1..Cn join A's flight -> A asks peers (namespace `d`) -> hit:
   * the flight resolves with the peer's entry (PEER, or STALE inside its stale-while-revalidate
   * window) / miss, error, timeout, refusal: the loader runs (or the request is made) once.
   * Background refreshes never come here: they exist to get the source's current value.
   */
  async #lead(k: string, load: () => Promise<Outcome>, shareable: boolean): Promise<Outcome> {
    const peers = this.#engine.peers;
    if (this.#lower.empty && (peers === undefined || !shareable)) return load();
    const value = k.startsWith(VALUE);
    const url = k.slice(value ? VALUE.length : URLKEY.length);
    const names = deletionNames(k);
    const cacheStatuses = this.#cacheStatuses;
    // A copy from a lower tier or a peer is judged by the same local rules.
    const acceptable = (entry: Entry): boolean =>
      judgePeerData(entry, {
        key: k,
        url,
        now: Date.now(),
        maxEntrySize: this.#options.maxEntrySize,
        cacheStatuses,
        value,
        // Read at judging time: a delete made while the lookup was out still refuses the copy.
        deletedAt: this.#deletions.newest(names),
        isInvalidated: (e) => this.#engine.isInvalidated(e),
        decodes: (e) => decodes(() => this.#value(e, url)),
      }) !== undefined;
    if (!this.#lower.empty) {
      const found = await this.#lower.find(k, acceptable);
      if (found !== undefined) {
        this.#put(k, found, detachedScope(), false);
        const fresh = Date.now() < found.staleAt;
        debug('lower tier %s: %s', fresh ? 'hit' : 'stale hit', k);
        return { ok: true, res: { status: found.status, headers: found.headers, body: found.body, cache: fresh ? 'HIT' : 'STALE', entry: found } };
      }
    }
    if (peers === undefined || !shareable) return load();
    const hit = await peers.find({ ns: DATA_NAMESPACE, key: k, headers: {}, freshAt: undefined }, acceptable, this.#peerCounters);
    if (hit === undefined) return load();
    const { entry } = hit;
    if (this.#peerOptions.updateLocalCache) this.#put(k, entry, detachedScope());
    else this.#peerDigests.set(k, digest(entry.body));
    const fresh = Date.now() < entry.staleAt;
    debug('peer %s: %s %s', fresh ? 'hit' : 'stale hit', k, hit.peer);
    return { ok: true, res: { status: entry.status, headers: entry.headers, body: entry.body, cache: fresh ? 'PEER' : 'STALE', entry } };
  }

  /** A caller got a peer's stale copy: counted, and refreshed once in the background (here, not from peers). */
  #servedStalePeerCopy(k: string, load: () => Promise<Outcome>): void {
    this.#counters.stale++;
    if (!this.#flights.has(k)) this.#backgroundLoad(k, load);
  }

  /**
   * A peer's lookup of a data key: the data memory tier only (never a loader, never a request,
   * never this node's peers). A value this node would not serve itself, stored before an
   * invalidation of its tags, is not shipped.
   */
  #answerPeer(query: LookupQuery): Entry | undefined {
    if (!query.key.startsWith(VALUE) && !query.key.startsWith(URLKEY)) return undefined;
    const entry = this.#memory.get(query.key);
    if (entry === undefined || (entry.tags.length > 0 && this.#engine.isInvalidated(entry))) return undefined;
    return entry;
  }

  // ---------------------------------------------------------------- includes

  /** The hooks the engine calls: scopes around response renders, the reverse index, ESI. */
  #hooks(): EngineHooks {
    return {
      openScope: (req, runner) => this.#deps.open({ chain: [pathOf(req.url ?? '/')], host: req.headers.host ?? '', runner }),
      runInScope: (scope, fn) => this.#als.run(scope as Scope, fn),
      closeScope: (scope: RenderScope) => this.#deps.close(scope as Scope),
      onEntry: (key, before, after) => {
        this.#deps.unlink(RESPONSE + key, before?.deps);
        this.#deps.link(RESPONSE + key, after?.deps, (k) => this.#digestOf(k));
      },
      includes: {
        isHtml,
        isTemplate: (body) => this.#templateOf(body) !== null,
        assemble: (body, req, runner) => {
          const segments = this.#templateOf(body) ?? parseTemplate(body);
          // A fresh scope: fragments filled at serve time are not dependencies of the page
          // (they keep their own freshness); the chain starts at the page for loop detection.
          const scope = this.#deps.open({ chain: [pathOf(req.url ?? '/')], host: req.headers.host ?? '', runner });
          return this.#als.run(scope, () => this.#fill(segments, 1)).finally(() => this.#deps.close(scope));
        },
      },
    };
  }

  /** The parsed template of a body with includes, or null; parsed once per stored body (the Buffer is the entry's). */
  #templateOf(body: Buffer): Segment[] | null {
    let segments = this.#templates.get(body);
    if (segments === undefined) this.#templates.set(body, (segments = templateOf(body) ?? null));
    return segments;
  }

  async #fill(segments: readonly Segment[], depth: number): Promise<Buffer> {
    const parts = await Promise.all(segments.map((s) => (Buffer.isBuffer(s) ? s : this.#include(s, depth))));
    return Buffer.concat(parts);
  }

  async #include(include: Include, depth: number): Promise<Buffer> {
    try {
      if (depth > this.#options.maxIncludeDepth) throw new IncludeError(`include ${include.src} is nested deeper than options.data.maxIncludeDepth (${this.#options.maxIncludeDepth})`);
      const res = await this.fetch(include.src);
      if (res.status >= 400) throw new IncludeError(`include ${include.src} answered ${res.status}`);
      if (!isHtml(res.headers['content-type'])) return res.body;
      const nested = this.#templateOf(res.body);
      if (nested === null) return res.body;
      const outer = this.#als.getStore()!;
      const scope = this.#deps.open({ chain: [...outer.chain, pathOf(include.src)], host: outer.host, runner: outer.runner });
      const segments = nested;
      return await this.#als.run(scope, () => this.#fill(segments, depth + 1)).finally(() => this.#deps.close(scope));
    } catch (error) {
      // A loop is an authoring error, not a failing fragment server: it always fails the page.
      if (!(error instanceof DataLoopError) && (include.continueOnError || this.#options.includeErrors === 'continue')) {
        this.#fail(error instanceof CacheError ? error : new IncludeError(`include ${include.src} failed`, { cause: error }));
        return EMPTY;
      }
      throw error;
    }
  }

  // ---------------------------------------------------------------- helpers

  #target(url: string, options: DataFetchOptions): Target {
    if (typeof url !== 'string') throw new TypeError(`expected url to be a string, got ${typeof url}`);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
    // The data cache keeps no Vary map: the headers a call sends are part of its key, so a
    // response that varies on one of them is never served to a call that sent another value.
    const suffix = Object.keys(headers)
      .sort()
      .map((name) => `\n${name}:${headers[name]}`)
      .join('');
    if (/^https?:\/\//i.test(url)) {
      const parsed = new URL(url);
      return { key: URLKEY + parsed.href + suffix, display: parsed.href, url: parsed, path: undefined, host: parsed.host, headers };
    }
    const path = url.startsWith('/') && !url.startsWith('//') ? normalizeTarget(url, undefined) : undefined;
    if (path === undefined) throw new TypeError(`expected url to be an absolute http(s) URL or a path starting with /, got '${url}'`);
    const scope = this.#als.getStore();
    const chain = scope?.chain ?? [];
    // Detected before any lookup or flight: joining our own flight would wait forever.
    if (chain.includes(path)) throw new DataLoopError([...chain, path]);
    const host = options.req?.headers.host ?? scope?.host ?? '';
    return { key: `${URLKEY}//${host}${path}${suffix}`, display: path, url: undefined, path, host, headers };
  }

  /** Joins or leads the load of `k`. */
  async #join(k: string, load: () => Promise<Outcome>): Promise<Outcome> {
    const { promise, joined } = this.#flights.run(k, load, (error) => ({ ok: false, error }));
    if (joined) this.#counters.loadsDeduped++;
    return promise;
  }

  /** One background refresh of `k` (stale-while-revalidate); its failure is counted, never thrown. */
  #backgroundLoad(k: string, load: () => Promise<Outcome>): void {
    // Outside the caller's scope: the refresh is not part of the render that triggered it.
    const p = this.#als.exit(() => this.#flights.run(k, load, (error) => ({ ok: false, error })).promise);
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  #staleOnError(entry: Entry, k: string): DataResponse {
    this.#counters.stale++;
    debug('stale: load failed, serving %s', k);
    return toResponse(entry, 'STALE');
  }

  #value(source: { headers: Array<[string, string]>; body: Buffer }, key: string): unknown {
    return deserializeValue(source.body, source.headers.find(([n]) => n === 'content-type')?.[1], key);
  }

  /** Counts and reports a failure; never throws. */
  #fail(error: CacheError): void {
    this.#counters.errors++;
    debug('error %s: %s', error.code, error.message);
    if (this.#events.listenerCount('error') > 0) this.#events.emit('error', error);
  }
}

/** The lifetimes of one get() call, validated before anything runs. */
interface Lifetimes {
  ttl: number;
  swr: number;
  sie: number;
  tags: string[];
}

/** A fetch target, resolved once per call. */
interface Target {
  /** Data key. */
  key: string;
  /** For messages and the policy: the absolute URL or the path. */
  display: string;
  /** Absolute URL (network), or undefined for an internal path. */
  url: URL | undefined;
  /** Internal path (sub-request), or undefined for the network. */
  path: string | undefined;
  host: string;
  headers: Record<string, string>;
}

/**
 * The deletion names covering data key `k` (see DataDeletions): the key itself, and for a
 * fetched response its URL with any request headers, or for a sub-request its path on any host.
 */
function deletionNames(k: string): string[] {
  if (!k.startsWith(URLKEY)) return [k];
  if (k.startsWith(URLKEY + '//')) return [k, PATHNAME + pathOf(k)];
  return [k, k.split('\n', 1)[0]!];
}

/** True when `decode` does not throw. */
function decodes(decode: () => unknown): boolean {
  try {
    decode();
    return true;
  } catch {
    return false;
  }
}

/** A scope for storing a peer's copy: it read nothing here (the copy keeps the deps its node recorded). */
function detachedScope(): Scope {
  return { reads: new Set(), chain: [], host: '', runner: undefined, tainted: false };
}

/** The path of a relative fetch key (`u://host/path`), or of a request target. */
function pathOf(target: string): string {
  if (target.startsWith(URLKEY + '//')) {
    const rest = target.slice(URLKEY.length + 2).split('\n', 1)[0]!;
    const slash = rest.indexOf('/');
    return slash === -1 ? '/' : rest.slice(slash);
  }
  return normalizeTarget(target, undefined) ?? target;
}

function checkDuration(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`expected ${name} to be a non-negative integer of ms, got ${String(value)}`);
  }
  return value;
}

/** An entry for a value or a fetched response, with absolute times. */
function newEntry(
  what: { status: number; headers: Array<[string, string]>; body: Buffer; url: string; tags: string[] },
  times: { now: number; storedAt?: number; staleAt: number; swrUntil: number; sieUntil: number; initialAge?: number },
): Entry {
  return {
    status: what.status,
    headers: what.headers,
    body: what.body,
    storedAt: times.storedAt ?? times.now,
    initialAge: times.initialAge ?? 0,
    staleAt: times.staleAt,
    swrUntil: times.swrUntil,
    sieUntil: times.sieUntil,
    expiresAt: Math.max(times.staleAt, times.swrUntil, times.sieUntil),
    etag: undefined,
    lastModified: undefined,
    shared: true,
    url: what.url,
    host: '',
    vary: [],
    tags: what.tags,
  };
}

/** Every header of a response not stored, as pairs (for the caller, not the cache). */
function headerPairs(headers: OutgoingHttpHeaders | RawResponse['headers']): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else out.push([name, String(value)]);
  }
  return out;
}

function toResponse(source: { status: number; headers: Array<[string, string]>; body: Buffer }, cache: DataStatus): DataResponse {
  const headers: Record<string, string> = {};
  for (const [name, value] of source.headers) headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  const body = source.body;
  return {
    status: source.status,
    headers,
    body,
    cache,
    json: () => Promise.resolve().then(() => JSON.parse(body.toString('utf8')) as unknown),
    text: () => body.toString('utf8'),
  };
}
