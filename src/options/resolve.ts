/**
 * {@link resolveOptions}: validates user options once, at construction, and returns the resolved,
 * frozen form; every error names the option path and the value it got. Nothing is re-validated
 * per request. Each area's own resolver lives beside that area.
 */
import type { IncomingMessage } from 'node:http';
import { resolveCompressOptions } from '../compress/options.js';
import { resolveDataOptions } from '../data/options.js';
import { resolveFlushOptions } from '../invalidation/options.js';
import { resolveMetricsOptions } from '../observe/options.js';
import { resolvePeersOptions } from '../peers/options.js';
import { resolveCdnOptions } from '../cdn/options.js';
import { resolveRules } from '../rules.js';
import { resolveTiers } from '../stores/tiers.js';
import { DEFAULTS, STALE_ON_ERROR_STATUSES } from './defaults.js';
import type { CacheOptions, IgnoreParamFunction, KeyFunction, ResolvedOptions } from './types.js';
import { fail, functionOption, globPredicate, headerNamesOption, integerOption, knownOptions, stripUndefined } from './validate.js';

/**
 * Validates user options once and returns the resolved, frozen form.
 * @throws TypeError or RangeError naming the option path and the value it got.
 */
export function resolveOptions(options: CacheOptions = {}): ResolvedOptions {
  if (options === null || typeof options !== 'object') fail(TypeError, '', 'an object', options);
  knownOptions('', options, DEFAULTS);
  const o = { ...DEFAULTS, ...stripUndefined(options) } as Required<CacheOptions>;

  const maxSize = integerOption('maxSize', o.maxSize, 1);
  // Unset, the entry bound follows the budget it belongs to.
  const maxEntrySize = integerOption('maxEntrySize', options.maxEntrySize ?? Math.min(DEFAULTS.maxEntrySize, maxSize), 1);
  if (maxEntrySize > maxSize) fail(RangeError, 'maxEntrySize', `at most options.maxSize (${maxSize})`, maxEntrySize);
  const defaultTtl = integerOption('defaultTtl', o.defaultTtl, 0);
  const maxTtl = integerOption('maxTtl', o.maxTtl, 1);
  const heuristicFreshness = o.heuristicFreshness;
  if (typeof heuristicFreshness !== 'number' || Number.isNaN(heuristicFreshness)) fail(TypeError, 'heuristicFreshness', 'a number from 0 to 1', heuristicFreshness);
  if (heuristicFreshness < 0 || heuristicFreshness > 1) fail(RangeError, 'heuristicFreshness', 'a number from 0 to 1', heuristicFreshness);

  let ignoreParam: IgnoreParamFunction | undefined;
  if (typeof o.ignoreUrlParams === 'function') ignoreParam = o.ignoreUrlParams;
  else if (Array.isArray(o.ignoreUrlParams)) ignoreParam = globPredicate('ignoreUrlParams', o.ignoreUrlParams);
  else fail(TypeError, 'ignoreUrlParams', 'an array of names or a function', o.ignoreUrlParams);

  const storeHeaders = o.storeHeaders === undefined ? undefined : new Set(headerNamesOption('storeHeaders', o.storeHeaders));

  if (!Array.isArray(o.cacheStatuses)) fail(TypeError, 'cacheStatuses', 'an array of status codes', o.cacheStatuses);
  const cacheStatuses = new Set(o.cacheStatuses.map((s, i) => integerOption(`cacheStatuses[${i}]`, s, 100, 599)));
  if (!Array.isArray(o.ignoreCookies)) fail(TypeError, 'ignoreCookies', 'an array of cookie names', o.ignoreCookies);
  const ignoreCookie = globPredicate('ignoreCookies', o.ignoreCookies);
  const targetedCacheControl = headerNamesOption('targetedCacheControl', o.targetedCacheControl);

  let keyFunction: KeyFunction | undefined;
  let keyHost: 'header' | string | false = 'header';
  let keyHeaders: string[] = [];
  if (typeof o.key === 'function') keyFunction = o.key;
  else if (o.key !== null && typeof o.key === 'object') {
    const host = o.key.host ?? 'header';
    if (host !== false && (typeof host !== 'string' || host === '')) fail(TypeError, 'key.host', "'header', a host name or false", host);
    keyHost = typeof host === 'string' && host !== 'header' ? host.toLowerCase() : host;
    keyHeaders = headerNamesOption('key.headers', o.key.headers ?? []);
  } else fail(TypeError, 'key', 'an object or a function', o.key);

  const userBypass = functionOption<(req: IncomingMessage) => boolean>('bypass', o.bypass);
  const rules = resolveRules(o.rules);
  // A bypassing rule joins the bypass predicate (so the request path asks one function); without
  // one the predicate stays the user's, or none (the fresh-hit fast path needs none).
  const bypass =
    rules?.bypassing !== true ? userBypass : userBypass === undefined ? (req: IncomingMessage) => rules.bypasses(req) : (req: IncomingMessage) => userBypass(req) || rules.bypasses(req);
  if (o.statusHeader !== false && !['x-cache', 'cache-status', 'both'].includes(o.statusHeader as string)) {
    fail(TypeError, 'statusHeader', "'x-cache', 'cache-status', 'both' or false", o.statusHeader);
  }
  if (typeof o.cacheName !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(o.cacheName)) {
    fail(TypeError, 'cacheName', 'a token (letters, digits, -._~)', o.cacheName);
  }
  const maxVariants = integerOption('maxVariants', o.maxVariants, 1, 1024);
  const passTtl = integerOption('passTtl', o.passTtl, 0);
  const errorBackoff = integerOption('errorBackoff', o.errorBackoff, 0);
  const closeTimeout = integerOption('closeTimeout', o.closeTimeout, 0);
  const unkeyed = headerNamesOption('unkeyedHeaders', o.unkeyedHeaders).filter((h) => !keyHeaders.includes(h));

  const stores = resolveTiers('stores', o.stores).all;

  let staleOnErrorStatuses: Set<number>;
  if (o.serveStaleOnError === true) staleOnErrorStatuses = new Set(STALE_ON_ERROR_STATUSES);
  else if (o.serveStaleOnError === false) staleOnErrorStatuses = new Set();
  else if (Array.isArray(o.serveStaleOnError)) {
    staleOnErrorStatuses = new Set(o.serveStaleOnError.map((s, i) => integerOption(`serveStaleOnError[${i}]`, s, 400, 599)));
  } else fail(TypeError, 'serveStaleOnError', 'a boolean or an array of status codes', o.serveStaleOnError);
  const staleIfError = integerOption('staleIfError', o.staleIfError, 0);
  const staleWhileRevalidate = integerOption('staleWhileRevalidate', o.staleWhileRevalidate, 0);
  const originTimeout = integerOption('originTimeout', o.originTimeout, 0, 2 ** 31 - 1);
  const gracePeriod = integerOption('gracePeriod', o.gracePeriod, 0);
  const statLevel = integerOption('statLevel', o.statLevel, 0, 64);
  if (!Array.isArray(o.autoInvalidate)) fail(TypeError, 'autoInvalidate', 'an array of path globs', o.autoInvalidate);
  const autoInvalidate = globPredicate('autoInvalidate', o.autoInvalidate);
  if (typeof o.tagHeader !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(o.tagHeader)) fail(TypeError, 'tagHeader', 'a header name', o.tagHeader);
  const flush = resolveFlushOptions(o.flush, DEFAULTS.flush);
  if (o.refetch === null || typeof o.refetch !== 'object') fail(TypeError, 'refetch', 'an object', o.refetch);
  const refetchConcurrency = integerOption('refetch.concurrency', o.refetch.concurrency ?? DEFAULTS.refetch.concurrency, 1, 1024);
  if (o.invalidation === null || typeof o.invalidation !== 'object') fail(TypeError, 'invalidation', 'an object', o.invalidation);
  const propagate = o.invalidation.propagate ?? DEFAULTS.invalidation.propagate;
  if (typeof propagate !== 'boolean') fail(TypeError, 'invalidation.propagate', 'a boolean', propagate);

  const peers = resolvePeersOptions(o.peers, DEFAULTS.peers, maxEntrySize);
  if (typeof o.includes !== 'boolean') fail(TypeError, 'includes', 'a boolean', o.includes);
  if (typeof o.cacheStatusDetail !== 'boolean') fail(TypeError, 'cacheStatusDetail', 'a boolean', o.cacheStatusDetail);
  const metricsRegistry = resolveMetricsOptions(o.metrics, DEFAULTS.metrics);


  return Object.freeze({
    staleOnErrorStatuses,
    staleOnErrorExplicit: options.serveStaleOnError !== undefined || options.staleIfError !== undefined,
    ignoreCookie,
    targetedCacheControl,
    staleIfError,
    staleWhileRevalidate,
    originTimeout,
    gracePeriod,
    statLevel,
    autoInvalidate,
    tagHeader: o.tagHeader.toLowerCase(),
    flush,
    refetchConcurrency,
    propagate,
    data: resolveDataOptions(o.data, DEFAULTS.data),
    includes: o.includes,
    cacheStatusDetail: o.cacheStatusDetail,
    metricsRegistry,
    compress: resolveCompressOptions(options.compress),
    rules,
    cdn: resolveCdnOptions(o.cdn),
    maxSize,
    maxEntrySize,
    defaultTtl,
    maxTtl,
    heuristicFreshness,
    ignoreParam,
    storeHeaders,
    cacheStatuses,
    keyFunction,
    keyHost,
    keyHeaders,
    bypass,
    statusHeader: o.statusHeader,
    cacheName: o.cacheName,
    maxVariants,
    passTtl,
    errorBackoff,
    closeTimeout,
    unkeyedHeaders: unkeyed,
    stores,
    peers,
  });
}
