/**
 * The data cache (`cache.data`): values and sub-responses a handler needs while it renders, each
 * with its own lifetime, in their own byte-bounded memory tier. Same engine pieces as the
 * response cache: entries ({@link Entry}, serialized to bytes), single flight ({@link Flights}),
 * RFC 9111 through policy.ts, errors as CacheError subclasses counted and emitted. It also
 * records which data each render read, so a change to the data makes those responses stale.
 *
 * This file is the public facade: get and fetch with their fresh / stale windows, delete, stats
 * and close. Its parts: storage.ts (tiers and dependencies), loads.ts (single flight, peers,
 * background refreshes), requests.ts (fetch's requests and stored responses), includes.ts
 * (engine hooks and ESI), entries.ts, keys.ts and types.ts.
 */
import type { EventEmitter } from 'node:events';
import createDebug from 'debug';
import type { ResponseServices } from '../seam.js';
import type { Entry } from '../entry.js';
import type { Flights } from '../flight.js';
import { type CacheError, DataLoadError, DataLoopError, DataSerializeError } from '../errors.js';
import type { ResolvedDataOptions } from './options.js';
import type { ResolvedOptions } from '../options/types.js';
import type { CacheStore } from '../stores/store.js';
import { Reporter } from '../report.js';
import { newEntry, SERVER_ERRORS, toResponse } from './entries.js';
import { DataIncludes } from './includes.js';
import { VALUE } from './keys.js';
import { DataLoads } from './loads.js';
import { DATA_NAMESPACE } from './peers.js';
import { DataRequests } from './requests.js';
import { serializeValue } from './serialize.js';
import { DataStorage, detachedScope } from './storage.js';
import type { Counters, DataFetchOptions, DataGetOptions, DataResponse, DataStats, Lifetimes, Outcome } from './types.js';

export type { DataGetOptions, DataFetchOptions, DataStatus, DataResponse, DataStats } from './types.js';

const debug = createDebug('stratacache:data');

/** What a lookup that never loads settles with when nobody has the key. */
const NOT_FOUND: Outcome = { ok: false, error: undefined };

/** The data cache behind `cache.data`. */
export class DataCache {
  readonly #engine: ResponseServices;
  readonly #options: ResolvedDataOptions;
  /** Closed by the response side: not closed twice. */
  readonly #responseStores: readonly CacheStore[];
  readonly #counters: Counters = { gets: 0, hits: 0, misses: 0, loads: 0, loadsDeduped: 0, stale: 0, errors: 0 };
  readonly #storage: DataStorage;
  readonly #loads: DataLoads;
  readonly #requests: DataRequests;
  readonly #report: Reporter;

  /** @internal Built by the cache (`cache.data`), over the response side's services. */
  constructor(engine: ResponseServices, o: ResolvedOptions, events: EventEmitter) {
    this.#engine = engine;
    this.#options = o.data;
    this.#responseStores = o.stores;
    // The data cache's failures reach their callers (loaders, fetches, includes) as well: counted,
    // logged and emitted, but not written to stderr when nobody listens.
    this.#report = new Reporter(events, debug, () => this.#counters.errors++, { unheard: false });
    const fail = (error: CacheError): void => this.#report.fail(error);
    this.#storage = new DataStorage(engine, o, fail);
    this.#loads = new DataLoads(engine, o, this.#storage, { counters: this.#counters, report: this.#report });
    this.#requests = new DataRequests(engine, o, this.#storage, this.#counters, fail);
    const includes = new DataIncludes(this.#storage, o.data, (src) => this.fetch(src), fail);
    engine.attach(includes.hooks());
    engine.onInvalidate((record) => {
      if (record.tags.length > 0) this.#storage.tagsInvalidated(record.tags);
    });
    // Peers look up data keys here: from the data memory tier only, never a loader or a request.
    engine.endpoint?.register(DATA_NAMESPACE, (query) => this.#loads.answerPeer(query));
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
    const chain = this.#storage.als.getStore()?.chain;
    // A loader that (through others) asks for its own key would join its own flight and wait forever.
    if (chain?.includes(link)) throw new DataLoopError([...chain, link]);
    this.#counters.gets++;
    this.#storage.read(k);
    const entry = this.#storage.memory.get(k);
    const now = Date.now();
    // A value stored before an invalidation of one of its tags (cache.invalidateTags) is loaded
    // again; it still answers if that load fails within its stale-if-error window.
    const invalidated = entry !== undefined && entry.tags.length > 0 && this.#engine.isInvalidated(entry);
    if (entry !== undefined && !invalidated && now < entry.staleAt) {
      this.#counters.hits++;
      return this.#storage.value(entry, key) as T;
    }
    if (entry !== undefined && !invalidated && now < entry.swrUntil) {
      this.#counters.stale++;
      if (!this.#loads.loading(k)) this.#loads.backgroundLoad(k, () => this.#loadValue(k, key, loader, life));
      return this.#storage.value(entry, key) as T;
    }
    this.#counters.misses++;
    const load = (): Promise<Outcome> => this.#loadValue(k, key, loader, life);
    const outcome = await this.#loads.join(k, () => this.#loads.lead(k, load, true));
    if (outcome.ok) {
      if (outcome.res.cache === 'STALE') this.#loads.servedStalePeerCopy(k, load);
      return this.#storage.value(outcome.res, key) as T;
    }
    if (!(outcome.error instanceof DataSerializeError) && entry !== undefined && Date.now() < entry.sieUntil) {
      this.#counters.stale++;
      debug('stale: loader failed, serving %s', key);
      return this.#storage.value(entry, key) as T;
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
    const target = this.#requests.target(url, options);
    this.#counters.gets++;
    this.#storage.read(target.key);
    const entry = this.#storage.memory.get(target.key);
    const now = Date.now();
    if (entry !== undefined && now < entry.staleAt) {
      this.#counters.hits++;
      return toResponse(entry, 'HIT');
    }
    if (entry !== undefined && now < entry.swrUntil) {
      this.#counters.stale++;
      if (!this.#loads.loading(target.key)) this.#loads.backgroundLoad(target.key, () => this.#requests.loadUrl(target, entry, options));
      return toResponse(entry, 'STALE');
    }
    this.#counters.misses++;
    // Credentials sent with a request stay on this node: they would travel in the lookup's key.
    const shareable = target.headers.authorization === undefined && target.headers.cookie === undefined;
    const outcome = await this.#loads.join(target.key, () => this.#loads.lead(target.key, () => this.#requests.loadUrl(target, entry, options), shareable));
    if (outcome.ok && outcome.res.cache === 'STALE') {
      const copy = outcome.res.entry;
      this.#loads.servedStalePeerCopy(target.key, () => this.#requests.loadUrl(target, copy, options));
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
    const outcome = await this.#loads.join(k, () => this.#loads.lead(k, () => Promise.resolve(NOT_FOUND), true));
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

  // ---------------------------------------------------------------- loads

  /** Runs a loader in its own scope (what it reads becomes this value's dependencies) and stores its value. */
  async #loadValue(k: string, key: string, loader: () => unknown, life: Lifetimes): Promise<Outcome> {
    this.#counters.loads++;
    // The load's start, never before an invalidation already applied: a value whose load
    // straddled a tag invalidation counts as older than it.
    const startedAt = this.#engine.renderTime();
    const parent = this.#storage.als.getStore();
    const scope = this.#storage.deps.open({ chain: [...(parent?.chain ?? []), `get(${key})`], host: parent?.host ?? '', runner: parent?.runner });
    try {
      const value = await this.#storage.als.run(scope, loader);
      const { body, contentType } = serializeValue(value, key);
      const now = Date.now();
      const staleAt = now + life.ttl;
      const times = { now, storedAt: startedAt, staleAt, swrUntil: staleAt + life.swr, sieUntil: staleAt + life.sie };
      const entry = newEntry({ status: 200, headers: [['content-type', contentType]], body, url: key, tags: life.tags }, times);
      this.#storage.put(k, entry, scope);
      return { ok: true, res: { status: 200, headers: entry.headers, body, cache: 'MISS' } };
    } catch (error) {
      if (!(error instanceof DataSerializeError)) this.#report.fail(new DataLoadError(`loader of ${JSON.stringify(key)} failed`, { cause: error }));
      else this.#report.fail(error);
      return { ok: false, error };
    } finally {
      this.#storage.deps.close(scope);
    }
  }

  #staleOnError(entry: Entry, k: string): DataResponse {
    this.#counters.stale++;
    debug('stale: load failed, serving %s', k);
    return toResponse(entry, 'STALE');
  }

}

function checkDuration(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`expected ${name} to be a non-negative integer of ms, got ${String(value)}`);
  }
  return value;
}
