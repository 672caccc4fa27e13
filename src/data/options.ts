/**
 * Options of the data cache (`options.data`) and their resolver. The defaults are in
 * `DEFAULTS.data` (`options/defaults.ts`).
 */
import type { Bytes, Count, Fraction, Milliseconds } from '../options/units.js';
import { fail, functionOption, integerOption, knownOptions, objectOption, stripUndefined } from '../options/validate.js';
import type { CacheStore } from '../stores/store.js';
import { resolveTiers } from '../stores/tiers.js';

/** Options of the data cache (`options.data`). Every field is optional. */
export interface DataOptions {
  /**
   * Memory budget of the data cache in bytes, separate from the response cache's `maxSize`.
   * Must be a positive integer.
   * @default 16777216 (16 MiB)
   */
  maxSize?: Bytes;
  /**
   * Largest serialized value or sub-response body stored, in bytes. A larger one is returned to
   * its caller but not stored. Must not exceed `data.maxSize`; when unset it follows a smaller
   * `data.maxSize` (1 MiB or `data.maxSize`, whichever is smaller).
   * @default 1048576 (1 MiB)
   */
  maxEntrySize?: Bytes;
  /**
   * Freshness lifetime in ms of a `cache.data.get` value without its own `ttl`, and of a fetched
   * response whose origin sends no explicit freshness. `0` stores such fetched responses only
   * when the origin makes them fresh.
   * @default 60000
   */
  defaultTtl?: Milliseconds;
  /**
   * Nested HTTP requests of `cache.data.fetch`: `timeout` in ms for one response (headers and
   * body), and `maxConcurrentPerOrigin`, how many requests run at once to one origin (more wait,
   * by p-limit). Internal sub-requests (relative URLs) are not limited: they nest, and a bound
   * would deadlock a page waiting on its own fragments.
   * @default { timeout: 10000, maxConcurrentPerOrigin: 8 }
   */
  fetch?: { timeout?: Milliseconds; maxConcurrentPerOrigin?: Count };
  /**
   * How deep includes nest (a page's include is depth 1, an include inside it depth 2). A deeper
   * include fails like any failing include.
   * @default 3
   */
  maxIncludeDepth?: Count;
  /**
   * What a failing include without `onerror="continue"` does at serve time: `'fail'` answers 500
   * for the whole page (ESI 1.0 §3.1); `'continue'` drops the include as if it said
   * `onerror="continue"`.
   * @default 'fail'
   */
  includeErrors?: 'continue' | 'fail';
  /**
   * Most data keys the dependency index remembers (least recently recorded are forgotten first;
   * a forgotten key no longer makes its dependents stale).
   * @default 100000
   */
  maxTrackedKeys?: Count;
  /**
   * Most dependents (responses and data entries) remembered per data key; past it the oldest
   * dependency is forgotten.
   * @default 10000
   */
  maxDependents?: Count;
  /**
   * The data cache's tiers, fastest first, as `options.stores` for responses: a memory store
   * listed first is the data memory tier (in place of one of `data.maxSize` bytes); the others
   * (a disk or Redis store) get every value and sub-response written through and are looked up
   * on a memory miss, before the peers and the loader. A store may be shared with
   * `options.stores` (data keys start with `v:` or `u:`, so they never meet response keys). A
   * promise of a store is waited for, as in `options.stores`.
   * @default []
   */
  stores?: readonly (CacheStore | PromiseLike<CacheStore>)[];
  /**
   * Default soft timeout of `cache.data.get` in ms (a call's own `softTimeout` wins): a caller
   * that waited this long for a load while a stale value is at hand (inside its
   * `staleIfError` window) gets the stale value at once; the load goes on in the background and
   * its value is stored. Without a stale value at hand it has no effect. `0`: no soft timeout.
   * @default 0
   */
  softTimeout?: Milliseconds;
  /**
   * Default hard timeout of `cache.data.get` in ms (a call's own `hardTimeout` wins): a caller
   * that waited this long for a load gets a `DataTimeoutError` (code `ERR_DATA_TIMEOUT`); the
   * load goes on and its value is stored when it settles. `0`: no hard timeout.
   * @default 0
   */
  hardTimeout?: Milliseconds;
  /**
   * Default refresh-ahead fraction of `cache.data.get` (a call's own `refreshAhead` wins): once
   * this fraction of a value's `ttl` has passed, a get still answers the fresh value at once
   * and starts one background load, so a key read often never expires under its callers.
   * Between 0 and 1 exclusive of 1; `0`: no refresh ahead.
   * @default 0
   */
  refreshAhead?: Fraction;
  /**
   * Default XFetch factor (beta) of `cache.data.get`'s probabilistic early refresh (a call's
   * own `earlyRefresh` wins): each get of a fresh value starts a background load with a
   * probability that grows as expiry nears and with how long the last load took (Vattani,
   * Chierichetti, Lowenstein: "Optimal Probabilistic Cache Stampede Prevention", 2015); `1` is
   * the paper's choice, larger refreshes earlier. `0`: no early refresh.
   * @default 0
   */
  earlyRefresh?: number;
  /**
   * Default TTL jitter of `cache.data.get` (a call's own `ttlJitter` wins): each stored value's
   * `ttl` is shortened by a random part of up to this fraction, so keys loaded together do not
   * all expire together. Between 0 and 1 exclusive of 1; `0`: every value lives its whole `ttl`.
   * @default 0
   */
  ttlJitter?: Fraction;
  /**
   * The random source of `earlyRefresh` and `ttlJitter`: a function returning a number in
   * [0, 1), as `Math.random` (inject a seeded one in tests). `undefined`: `Math.random`.
   * @default undefined
   */
  random?: () => number;
}

/** Data options after {@link resolveOptions}. */
export interface ResolvedDataOptions {
  readonly maxSize: Bytes;
  readonly maxEntrySize: Bytes;
  readonly defaultTtl: Milliseconds;
  readonly fetchTimeout: Milliseconds;
  readonly maxConcurrentPerOrigin: Count;
  readonly maxIncludeDepth: Count;
  readonly includeErrors: 'continue' | 'fail';
  readonly maxTrackedKeys: Count;
  readonly maxDependents: Count;
  readonly stores: readonly CacheStore[];
  /** The per-call defaults of `cache.data.get` (see {@link DataOptions}). */
  readonly get: GetDefaults;
  readonly random: () => number;
}

/** The defaults of a `cache.data.get` call, from `options.data`. */
export interface GetDefaults {
  readonly softTimeout: Milliseconds;
  readonly hardTimeout: Milliseconds;
  readonly refreshAhead: Fraction;
  readonly earlyRefresh: number;
  readonly ttlJitter: Fraction;
}

/** `DEFAULTS.data`'s shape. */
export interface DataDefaults {
  readonly maxSize: Bytes;
  readonly maxEntrySize: Bytes;
  readonly defaultTtl: Milliseconds;
  readonly fetch: { readonly timeout: Milliseconds; readonly maxConcurrentPerOrigin: Count };
  readonly maxIncludeDepth: Count;
  readonly includeErrors: 'continue' | 'fail';
  readonly maxTrackedKeys: Count;
  readonly maxDependents: Count;
  readonly stores: readonly CacheStore[];
  readonly softTimeout: Milliseconds;
  readonly hardTimeout: Milliseconds;
  readonly refreshAhead: Fraction;
  readonly earlyRefresh: number;
  readonly ttlJitter: Fraction;
  readonly random: (() => number) | undefined;
}

/**
 * Validates `options.data`. `defaults` is `DEFAULTS.data`.
 * @throws TypeError or RangeError naming `options.data.<field>` and the value it got.
 */
export function resolveDataOptions(data: unknown, defaults: DataDefaults): ResolvedDataOptions {
  objectOption('data', data);
  knownOptions('data', data, defaults);
  const d = { ...defaults, ...stripUndefined(data as DataOptions) };
  const maxSize = integerOption('data.maxSize', d.maxSize, 1);
  const maxEntrySize = integerOption('data.maxEntrySize', (data as DataOptions).maxEntrySize ?? Math.min(defaults.maxEntrySize, maxSize), 1);
  if (maxEntrySize > maxSize) fail(RangeError, 'data.maxEntrySize', `at most options.data.maxSize (${maxSize})`, maxEntrySize);
  const f = d.fetch as unknown;
  objectOption('data.fetch', f);
  knownOptions('data.fetch', f, defaults.fetch);
  const fetch = { ...defaults.fetch, ...stripUndefined(f) } as Required<NonNullable<DataOptions['fetch']>>;
  if (d.includeErrors !== 'continue' && d.includeErrors !== 'fail') fail(TypeError, 'data.includeErrors', "'continue' or 'fail'", d.includeErrors);
  return Object.freeze({
    maxSize,
    maxEntrySize,
    defaultTtl: integerOption('data.defaultTtl', d.defaultTtl, 0),
    fetchTimeout: integerOption('data.fetch.timeout', fetch.timeout, 1),
    maxConcurrentPerOrigin: integerOption('data.fetch.maxConcurrentPerOrigin', fetch.maxConcurrentPerOrigin, 1, 1024),
    maxIncludeDepth: integerOption('data.maxIncludeDepth', d.maxIncludeDepth, 1, 32),
    includeErrors: d.includeErrors,
    maxTrackedKeys: integerOption('data.maxTrackedKeys', d.maxTrackedKeys, 1),
    maxDependents: integerOption('data.maxDependents', d.maxDependents, 1),
    stores: resolveTiers('data.stores', d.stores).all,
    get: Object.freeze(getDefaults('data', d)),
    random: functionOption<() => number>('data.random', d.random) ?? Math.random,
  });
}

/**
 * Validates the timeouts and early-refresh fields of `options.data` (`path` `'data'`) or of one
 * get call's options (`path` `''`: named `options.<field>`, as the call's argument is).
 * @throws TypeError or RangeError naming `options.<path>.<field>` and the value it got.
 */
export function getDefaults(path: string, o: Record<keyof GetDefaults, unknown>): GetDefaults {
  const at = (field: keyof GetDefaults): string => (path === '' ? field : `${path}.${field}`);
  const softTimeout = integerOption(at('softTimeout'), o.softTimeout, 0);
  const hardTimeout = integerOption(at('hardTimeout'), o.hardTimeout, 0);
  if (hardTimeout > 0 && softTimeout >= hardTimeout) fail(RangeError, at('softTimeout'), `less than options.${at('hardTimeout')} (${hardTimeout})`, softTimeout);
  return {
    softTimeout,
    hardTimeout,
    refreshAhead: fractionOption(at('refreshAhead'), o.refreshAhead),
    earlyRefresh: numberOption(at('earlyRefresh'), o.earlyRefresh, 0, 100),
    ttlJitter: fractionOption(at('ttlJitter'), o.ttlJitter),
  };
}

/** A fraction in [0, 1). */
function fractionOption(path: string, value: unknown): number {
  return numberOption(path, value, 0, 1, true);
}

/** A finite number in [min, max] (or [min, max) when `openMax`). */
function numberOption(path: string, value: unknown, min: number, max: number, openMax = false): number {
  const expected = `a number from ${min} to ${max}${openMax ? ' (exclusive)' : ''}`;
  if (typeof value !== 'number' || Number.isNaN(value)) fail(TypeError, path, expected, value);
  if (value < min || value > max || (openMax && value === max)) fail(RangeError, path, expected, value);
  return value;
}
