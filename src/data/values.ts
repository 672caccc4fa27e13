/**
 * `cache.data.get`: a value from the data memory tier (fresh, or stale inside its windows) or
 * from its loader, run once for concurrent callers. Around that: each caller's soft and hard
 * timeouts, early refresh (refresh-ahead and XFetch) and TTL jitter, the loader's context
 * (adaptive lifetimes, `skip()`), and a load overtaken by an invalidation never stored as fresh
 * (see flights.ts).
 */
import createDebug from 'debug';
import type { Entry } from '../entry.js';
import { DataLoadError, DataLoopError, DataSerializeError, DataTimeoutError } from '../errors.js';
import type { Reporter } from '../report.js';
import type { ResponseServices } from '../seam.js';
import { newEntry } from './entries.js';
import type { DataFlight } from './flights.js';
import { VALUE } from './keys.js';
import type { DataLoads } from './loads.js';
import { getDefaults, type ResolvedDataOptions } from './options.js';
import { serializeValue } from './serialize.js';
import type { DataStorage } from './storage.js';
import type { Counters, DataGetOptions, DataLoader, DataLoaderContext, GetPlan, Lifetimes, Outcome } from './types.js';

const debug = createDebug('stratacache:data');

/** The get() side of the data cache. */
export class DataValues {
  readonly #engine: ResponseServices;
  readonly #options: ResolvedDataOptions;
  readonly #storage: DataStorage;
  readonly #loads: DataLoads;
  readonly #counters: Counters;
  readonly #report: Reporter;
  /** How long the load of each stored value took (ms), for XFetch; absent for copies from peers and lower tiers. */

  constructor(engine: ResponseServices, options: ResolvedDataOptions, parts: { storage: DataStorage; loads: DataLoads; counters: Counters; report: Reporter }) {
    this.#engine = engine;
    this.#options = options;
    this.#storage = parts.storage;
    this.#loads = parts.loads;
    this.#counters = parts.counters;
    this.#report = parts.report;
  }

  /**
   * The value under `key` (see `DataCache.get`). `scopeTags` are added to the value's tags and
   * hidden from its loader (a namespace's tags).
   */
  async get<T>(key: string, loader: DataLoader<T>, options: DataGetOptions, scopeTags: readonly string[]): Promise<T> {
    if (typeof key !== 'string' || key === '') throw new TypeError(`expected key to be a non-empty string, got ${String(key)}`);
    if (typeof loader !== 'function') throw new TypeError(`expected loader to be a function, got ${typeof loader}`);
    const plan = this.#plan(options, scopeTags);
    const k = VALUE + key;
    const link = `get(${key})`;
    const chain = this.#storage.als.getStore()?.chain;
    // A loader that (through others) asks for its own key would join its own flight and wait forever.
    if (chain?.includes(link)) throw new DataLoopError([...chain, link]);
    this.#counters.gets++;
    const entry = this.#storage.memory.get(k);
    const now = Date.now();
    // Built only when a load may start: a fresh hit allocates no closure.
    const load = (): ((flight: DataFlight) => Promise<Outcome>) => (flight) => this.#loadValue(k, key, loader as DataLoader<unknown>, plan, flight);
    // A value stored before an invalidation of one of its tags (cache.invalidateTags) is loaded
    // again; it still answers if that load fails within its stale-if-error window.
    const invalidated = entry !== undefined && entry.tags.length > 0 && this.#engine.isInvalidated(entry);
    if (entry !== undefined && !invalidated && now < entry.staleAt) {
      this.#counters.hits++;
      this.#storage.read(k);
      if (!this.#loads.loading(k) && this.#refreshesEarly(entry, plan, now)) {
        this.#counters.earlyRefreshes++;
        debug('early refresh: %s', key);
        this.#loads.backgroundLoad(k, tagsOf(plan), load());
      }
      return this.#storage.value(entry, key) as T;
    }
    if (entry !== undefined && !invalidated && now < entry.swrUntil) {
      this.#counters.stale++;
      this.#storage.read(k);
      if (!this.#loads.loading(k)) this.#loads.backgroundLoad(k, tagsOf(plan), load());
      return this.#storage.value(entry, key) as T;
    }
    this.#counters.misses++;
    // The stale value a failed load would answer is also the one a soft timeout answers.
    const atHand = entry !== undefined && now < entry.sieUntil;
    const flight = this.#loads.join(k, tagsOf(plan), load(), true);
    const outcome = await this.#within(flight.promise, plan, atHand, key);
    this.#loads.readThrough(k, flight);
    if (outcome === 'soft') {
      this.#counters.softTimeouts++;
      this.#counters.stale++;
      debug('soft timeout after %dms: serving stale %s', plan.timing.softTimeout, key);
      return this.#storage.value(entry!, key) as T;
    }
    if (outcome.ok) {
      if (outcome.res.cache === 'STALE') this.#loads.servedStalePeerCopy(k, tagsOf(plan), load());
      return this.#storage.value(outcome.res, key) as T;
    }
    const servable = !(outcome.error instanceof DataSerializeError) && !(outcome.error instanceof DataTimeoutError);
    if (servable && entry !== undefined && Date.now() < entry.sieUntil) {
      this.#counters.stale++;
      debug('stale: loader failed, serving %s', key);
      return this.#storage.value(entry, key) as T;
    }
    throw outcome.error;
  }

  /**
   * One call's options over `options.data`'s defaults, validated before anything runs. Called on
   * every get, hits included: no closure, no copy of the defaults when the call sets no timing.
   */
  #plan(options: DataGetOptions, scopeTags: readonly string[]): GetPlan {
    if (options === null || typeof options !== 'object') throw new TypeError(`expected options to be an object, got ${String(options)}`);
    const d = this.#options.get;
    const own =
      options.softTimeout !== undefined ||
      options.hardTimeout !== undefined ||
      options.refreshAhead !== undefined ||
      options.earlyRefresh !== undefined ||
      options.ttlJitter !== undefined;
    const timing = own
      ? getDefaults('', {
          softTimeout: options.softTimeout ?? d.softTimeout,
          hardTimeout: options.hardTimeout ?? d.hardTimeout,
          refreshAhead: options.refreshAhead ?? d.refreshAhead,
          earlyRefresh: options.earlyRefresh ?? d.earlyRefresh,
          ttlJitter: options.ttlJitter ?? d.ttlJitter,
        })
      : d;
    const tags = options.tags === undefined ? NO_TAGS : checkTags('options.tags', options.tags);
    const life = {
      ttl: duration('options.ttl', options.ttl ?? this.#options.defaultTtl),
      swr: duration('options.staleWhileRevalidate', options.staleWhileRevalidate ?? 0),
      sie: duration('options.staleIfError', options.staleIfError ?? 0),
      tags,
    };
    return { timing, life, scopeTags };
  }

  /**
   * Waits for a load, for at most the caller's soft timeout (only when a stale value is at hand:
   * then 'soft') or hard timeout (then a DataTimeoutError outcome). The load goes on either way.
   */
  async #within(pending: Promise<Outcome>, plan: GetPlan, atHand: boolean, key: string): Promise<Outcome | 'soft'> {
    const soft = atHand ? plan.timing.softTimeout : 0;
    const ms = soft > 0 ? soft : plan.timing.hardTimeout;
    if (ms === 0) return pending;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'soft' | 'hard'>((resolve) => {
      timer = setTimeout(() => resolve(soft > 0 ? 'soft' : 'hard'), ms);
    });
    const first = await Promise.race([pending, expired]).finally(() => clearTimeout(timer));
    if (first !== 'hard') return first;
    this.#counters.hardTimeouts++;
    debug('hard timeout after %dms: %s', ms, key);
    return { ok: false, error: new DataTimeoutError(`get(${JSON.stringify(key)}) waited longer than its hardTimeout (${ms}ms) for its loader`) };
  }

  /** Whether a get of the fresh `entry` now also starts a background load (refresh-ahead, XFetch). */
  #refreshesEarly(entry: Entry, { timing }: GetPlan, now: number): boolean {
    if (timing.refreshAhead > 0 && now >= entry.staleAt - (entry.staleAt - entry.storedAt) * (1 - timing.refreshAhead)) return true;
    if (timing.earlyRefresh === 0) return false;
    const delta = entry.loadMs;
    // XFetch: refresh when now - delta * beta * ln(rand) >= expiry (ln(rand) <= 0).
    return delta !== undefined && delta > 0 && now - delta * timing.earlyRefresh * Math.log(this.#options.random()) >= entry.staleAt;
  }

  /** Runs a loader in its own scope (what it reads becomes this value's dependencies) and stores its value. */
  async #loadValue(k: string, key: string, loader: DataLoader<unknown>, plan: GetPlan, flight: DataFlight): Promise<Outcome> {
    this.#counters.loads++;
    // The load's start, never before an invalidation already applied: a value whose load
    // straddled a tag invalidation counts as older than it.
    const startedAt = this.#engine.renderTime();
    const began = Date.now();
    const parent = this.#storage.als.getStore();
    const scope = this.#storage.deps.open({
      chain: [...(parent?.chain ?? []), `get(${key})`],
      host: parent?.host ?? '',
      runner: parent?.runner,
      // A key the loader read changed while it ran: later callers must not join it.
      onTaint: () => this.#storage.flights.detach(flight, 'soft'),
    });
    let skipped = false;
    const ctx: DataLoaderContext = {
      key,
      options: { ttl: plan.life.ttl, staleWhileRevalidate: plan.life.swr, staleIfError: plan.life.sie, tags: [...plan.life.tags] },
      skip: () => void (skipped = true),
    };
    flight.tags = () => (Array.isArray(ctx.options.tags) ? [...ctx.options.tags, ...plan.scopeTags] : plan.scopeTags);
    try {
      const value = await this.#storage.als.run(scope, loader, ctx);
      const { body, contentType } = serializeValue(value, key);
      const life = lifetimes(ctx.options);
      const res = { status: 200, headers: [['content-type', contentType]] as Array<[string, string]>, body, cache: 'MISS' as const };
      if (skipped) {
        this.#counters.skipped++;
        debug('not stored: the loader of %s skipped it', key);
        return { ok: true, res };
      }
      if (flight.invalidated !== undefined) {
        this.#counters.invalidatedLoads++;
        // Its callers joined before the invalidation: it answers their calls, never later ones.
        if (flight.invalidated === 'hard') return (debug('not stored: %s was deleted while loading', key), { ok: true, res });
        const current = this.#storage.memory.get(k);
        if (current !== undefined && current.storedAt > startedAt) return { ok: true, res };
        scope.tainted = true; // stored already stale (storage.put)
      }
      const now = Date.now();
      const jitter = plan.timing.ttlJitter;
      const staleAt = now + life.ttl - Math.floor(life.ttl * jitter * (jitter > 0 ? this.#options.random() : 0));
      const times = { now, storedAt: startedAt, staleAt, swrUntil: staleAt + life.swr, sieUntil: staleAt + life.sie };
      const tags = [...new Set([...life.tags, ...plan.scopeTags])];
      const entry = newEntry({ status: 200, headers: res.headers, body, url: key, tags }, times);
      entry.loadMs = now - began;
      this.#storage.put(k, entry, scope);
      // A tag the loader set (ctx.options.tags) was invalidated while it ran: what read it goes stale.
      if (flight.invalidated === undefined && tags.length > 0 && this.#engine.isInvalidated(entry)) this.#storage.changed(k, new Set());
      return { ok: true, res };
    } catch (error) {
      if (!(error instanceof DataSerializeError)) this.#report.fail(new DataLoadError(`loader of ${JSON.stringify(key)} failed`, { cause: error }));
      else this.#report.fail(error);
      return { ok: false, error };
    } finally {
      this.#storage.deps.close(scope);
    }
  }
}

const NO_TAGS: readonly string[] = Object.freeze([]);

/** The tags a get's value will carry (before its loader changes them): its own and its namespaces'. */
function tagsOf(plan: GetPlan): readonly string[] {
  return plan.scopeTags.length === 0 ? plan.life.tags : [...plan.life.tags, ...plan.scopeTags];
}

/** Validates a loader's `ctx.options` when it returns, naming `ctx.options.<field>`. */
function lifetimes(o: DataLoaderContext['options']): Lifetimes {
  return {
    ttl: duration('ctx.options.ttl', o.ttl),
    swr: duration('ctx.options.staleWhileRevalidate', o.staleWhileRevalidate),
    sie: duration('ctx.options.staleIfError', o.staleIfError),
    tags: [...checkTags('ctx.options.tags', o.tags)],
  };
}

/** Tags: an array of non-empty strings without whitespace. */
function checkTags(name: string, tags: unknown): readonly string[] {
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || t === '' || /\s/.test(t))) {
    throw new TypeError(`expected ${name} to be an array of non-empty strings without spaces, got ${JSON.stringify(tags)}`);
  }
  return tags as string[];
}

function duration(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`expected ${name} to be a non-negative integer of ms, got ${String(value)}`);
  }
  return value;
}
