/**
 * The data cache (`cache.data`): values and sub-responses a handler needs while it renders, each
 * with its own lifetime, in their own byte-bounded memory tier. Same engine pieces as the
 * response cache: entries ({@link Entry}, serialized to bytes), single flight (flights.ts),
 * RFC 9111 through policy.ts, errors as CacheError subclasses counted and emitted. It also
 * records which data each render read, so a change to the data makes those responses stale.
 *
 * This file is the public facade: get, fetch with its fresh / stale windows, namespaces, delete,
 * stats and close. Its parts: values.ts (get: timeouts, early refresh, the loader's context),
 * storage.ts (tiers and dependencies), flights.ts (loads in flight and the invalidations that
 * overtake them), loads.ts (single flight, peers, background refreshes), requests.ts (fetch's
 * requests and stored responses), namespace.ts, includes.ts (engine hooks and ESI), entries.ts,
 * keys.ts and types.ts.
 */
import type { EventEmitter } from 'node:events';
import createDebug from 'debug';
import type { ResponseServices } from '../seam.js';
import type { Entry } from '../entry.js';
import { type CacheError, DataLoopError } from '../errors.js';
import type { ResolvedOptions } from '../options/types.js';
import type { CacheStore } from '../stores/store.js';
import { Reporter } from '../report.js';
import { SERVER_ERRORS, toResponse } from './entries.js';
import type { DataFlight } from './flights.js';
import { DataIncludes } from './includes.js';
import { DataLoads } from './loads.js';
import { DataNamespace, type NamespaceHost, type NamespaceScope } from './namespace.js';
import { DATA_NAMESPACE } from './peers.js';
import { DataRequests } from './requests.js';
import { DataStorage, detachedScope } from './storage.js';
import type { Counters, DataFetchOptions, DataGetOptions, DataLoader, DataResponse, DataStats, Outcome } from './types.js';
import { DataValues } from './values.js';

export type { DataGetOptions, DataFetchOptions, DataStatus, DataResponse, DataStats, DataLoader, DataLoaderContext } from './types.js';
export { DataNamespace } from './namespace.js';

const debug = createDebug('stratacache:data');

/** What a lookup that never loads settles with when nobody has the key. */
const NOT_FOUND: Outcome = { ok: false, error: undefined };

/** The data cache behind `cache.data`. */
export class DataCache {
  readonly #engine: ResponseServices;
  /** Closed by the response side: not closed twice. */
  readonly #responseStores: readonly CacheStore[];
  readonly #counters: Counters = {
    gets: 0,
    hits: 0,
    misses: 0,
    loads: 0,
    loadsDeduped: 0,
    stale: 0,
    errors: 0,
    softTimeouts: 0,
    hardTimeouts: 0,
    earlyRefreshes: 0,
    invalidatedLoads: 0,
    skipped: 0,
  };
  readonly #storage: DataStorage;
  readonly #loads: DataLoads;
  readonly #requests: DataRequests;
  readonly #values: DataValues;
  readonly #namespaceHost: NamespaceHost;
  readonly #report: Reporter;

  /** @internal Built by the cache (`cache.data`), over the response side's services. */
  constructor(engine: ResponseServices, o: ResolvedOptions, events: EventEmitter) {
    this.#engine = engine;
    this.#responseStores = o.stores;
    // The data cache's failures reach their callers (loaders, fetches, includes) as well: counted,
    // logged and emitted, but not written to stderr when nobody listens.
    this.#report = new Reporter(events, debug, () => this.#counters.errors++, { unheard: false });
    const fail = (error: CacheError): void => this.#report.fail(error);
    this.#storage = new DataStorage(engine, o, fail);
    this.#loads = new DataLoads(engine, o, this.#storage, { counters: this.#counters, report: this.#report });
    this.#requests = new DataRequests(engine, o, this.#storage, this.#counters, fail);
    this.#values = new DataValues(engine, o.data, { storage: this.#storage, loads: this.#loads, counters: this.#counters, report: this.#report });
    this.#namespaceHost = {
      get: (key, loader, options, ns) => this.#values.get(ns.prefix + key, loader, options, ns.tags),
      fetch: (url, options, ns) => this.#fetch(url, options, ns),
      delete: (key, ns) => this.#storage.delete(/^https?:\/\//i.test(key) || key.startsWith('/') ? key : ns.prefix + key),
      invalidateTags: (tags) => engine.invalidateTags(tags, true),
    };
    const includes = new DataIncludes(this.#storage, o.data, (src) => this.fetch(src), fail);
    engine.attach(includes.hooks());
    engine.onInvalidate((record) => {
      if (record.tags.length > 0) this.#storage.tagsInvalidated(record.tags, record.hard);
    });
    // Peers look up data keys here: from the data memory tier only, never a loader or a request.
    engine.endpoint?.register(DATA_NAMESPACE, (query) => this.#loads.answerPeer(query));
  }

  /**
   * The value under `key`, from the cache or from `loader` (run once for concurrent callers).
   * Inside a render, the read is recorded: when the value is deleted or changes, the response
   * becomes stale. The loader is called with a {@link DataLoaderContext} (`ctx.options` to change
   * this answer's lifetimes and tags, `ctx.skip()` not to store it); `() => value` loaders work
   * as before. A load overtaken by `delete(key)` or a hard tag invalidation answers the callers
   * that joined it before, and is not stored; by a tag invalidation or a change of what it read,
   * it is stored already stale; callers after the invalidation load again.
   * @throws DataSerializeError when the loaded value cannot be stored as bytes; DataTimeoutError
   * after the call's `hardTimeout`; the loader's own error, unchanged, when it throws and no
   * stale value may be served; TypeError for a bad key, loader or option (naming it).
   */
  get<T>(key: string, loader: DataLoader<T>, options: DataGetOptions = {}): Promise<T> {
    return this.#values.get(key, loader, options, []);
  }

  /**
   * A namespace: the same get / fetch / delete over keys prefixed with `<name>:`, and `clear()`,
   * which invalidates all of them on every node (see namespace.ts).
   * @throws TypeError when `name` is empty or contains whitespace.
   */
  namespace(name: string): DataNamespace {
    return new DataNamespace(this.#namespaceHost, name);
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
  fetch(url: string, options: DataFetchOptions = {}): Promise<DataResponse> {
    return this.#fetch(url, options, undefined);
  }

  async #fetch(url: string, options: DataFetchOptions, ns: NamespaceScope | undefined): Promise<DataResponse> {
    const target = this.#requests.target(url, options, ns);
    this.#counters.gets++;
    const entry = this.#storage.memory.get(target.key);
    const now = Date.now();
    const invalidated = entry !== undefined && entry.tags.length > 0 && this.#engine.isInvalidated(entry);
    if (entry !== undefined && !invalidated && now < entry.staleAt) {
      this.#counters.hits++;
      this.#storage.read(target.key);
      return toResponse(entry, 'HIT');
    }
    const load = (flight: DataFlight): Promise<Outcome> => this.#requests.loadUrl(target, entry, options, flight);
    if (entry !== undefined && !invalidated && now < entry.swrUntil) {
      this.#counters.stale++;
      this.#storage.read(target.key);
      if (!this.#loads.loading(target.key)) this.#loads.backgroundLoad(target.key, target.tags, load);
      return toResponse(entry, 'STALE');
    }
    this.#counters.misses++;
    // Credentials sent with a request stay on this node: they would travel in the lookup's key.
    const shareable = target.headers.authorization === undefined && target.headers.cookie === undefined;
    const flight = this.#loads.join(target.key, target.tags, load, shareable);
    const outcome = await flight.promise;
    this.#loads.readThrough(target.key, flight);
    if (outcome.ok && outcome.res.cache === 'STALE') {
      const copy = outcome.res.entry;
      this.#loads.servedStalePeerCopy(target.key, target.tags, (flight) => this.#requests.loadUrl(target, copy, options, flight));
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
    return this.#storage.delete(key);
  }

  /**
   * @internal For `stratacache/next`: the entry {@link keep} stored under the data key `k`, from
   * the data memory tier (unless an invalidation reached it there), else its lower tiers, else
   * the peers (one lookup for concurrent
   * callers; a copy found below memory or on a peer is judged by the local rules and kept in
   * memory). Never loads: undefined when nobody has it. Store and peer failures and timeouts are
   * a miss, never an error. Inside a render, the read is recorded (see {@link get}).
   */
  async peek(k: string): Promise<Entry | undefined> {
    this.#storage.read(k);
    const entry = this.#storage.memory.get(k);
    if (entry !== undefined && !this.#engine.isInvalidated(entry)) return entry;
    // Invalidated here: another node may have stored the new one already (else the old one is
    // returned, for the caller to judge: a soft invalidation still lets it answer once more).
    const outcome = await this.#loads.join(k, entry?.tags ?? [], () => Promise.resolve(NOT_FOUND), true).promise;
    return outcome.ok ? outcome.res.entry : entry;
  }

  /**
   * @internal For `stratacache/next`: stores `entry` under the data key `k` in the data memory
   * tier and (in the background) its lower tiers, where {@link peek} and the peers find it.
   * Inside a render, recorded as a read; a response that read other bytes under `k` turns stale.
   */
  keep(k: string, entry: Entry): void {
    this.#storage.read(k);
    this.#storage.put(k, entry, detachedScope());
  }

  /** Counters and the size of the data memory tier. */
  stats(): DataStats {
    const { entries, bytes } = this.#storage.memory.size();
    return { ...this.#counters, ...this.#loads.peerCounters, entries, bytes };
  }

  /**
   * Waits for background refreshes, for at most `waitMs` (a loader that never settles is
   * abandoned: its value is never stored), then empties the data memory tier.
   */
  async close(waitMs = Infinity): Promise<void> {
    await this.#loads.settled(waitMs);
    await this.#storage.close(this.#responseStores);
  }

  #staleOnError(entry: Entry, k: string): DataResponse {
    this.#counters.stale++;
    debug('stale: load failed, serving %s', k);
    return toResponse(entry, 'STALE');
  }

}
