/**
 * Every default of {@link createCache}'s options in one frozen object. Tests check that each
 * documented `@default` matches it, and the resolvers take their list of known option names
 * from it.
 */
import { COMPRESS_DEFAULTS } from '../compress/settings.js';
import type { PeersDefaults } from '../peers/options.js';
import type { CacheStore } from '../stores/store.js';
import type { StatusHeaderMode } from './types.js';

/** Every default in one place. A test checks that the TSDoc `@default`s of the option interfaces match it. */
export const DEFAULTS = Object.freeze({
  maxSize: 64 * 1024 * 1024,
  maxEntrySize: 8 * 1024 * 1024,
  defaultTtl: 60_000,
  maxTtl: 86_400_000,
  heuristicFreshness: 0,
  ignoreUrlParams: Object.freeze([] as string[]),
  storeHeaders: undefined,
  cacheStatuses: Object.freeze([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]),
  ignoreCookies: Object.freeze([] as string[]),
  targetedCacheControl: Object.freeze([] as string[]),
  key: Object.freeze({ host: 'header' as const, headers: Object.freeze([] as string[]) }),
  bypass: undefined,
  statusHeader: 'both' as StatusHeaderMode,
  cacheName: 'stratacache',
  maxVariants: 16,
  passTtl: 5_000,
  errorBackoff: 0,
  closeTimeout: 5_000,
  unkeyedHeaders: Object.freeze([
    'forwarded',
    'x-forwarded-host',
    'x-forwarded-server',
    'x-forwarded-proto',
    'x-forwarded-scheme',
    'x-forwarded-port',
    'x-forwarded-prefix',
    'x-host',
    'x-original-url',
    'x-rewrite-url',
    'x-http-method-override',
    'x-http-method',
    'x-method-override',
    // Client address headers (Express `trust proxy` and Koa `proxy` turn X-Forwarded-For into
    // req.ip / ctx.ip; request-ip style helpers read the others).
    'x-forwarded-for',
    'x-real-ip',
    'true-client-ip',
    'x-client-ip',
    'x-cluster-client-ip',
    'cf-connecting-ip',
    'fastly-client-ip',
    // Rewrite and original-target headers some frameworks and proxies honour.
    'x-original-host',
    'x-forwarded-uri',
    'x-forwarded-path',
    'x-original-uri',
    'x-forwarded-ssl',
    'front-end-https',
    // Next.js internal headers a client must never set (x-middleware-prefetch answered an empty
    // page; x-middleware-subrequest skipped middleware, CVE-2025-29927; x-now-route-matches).
    'x-middleware-prefetch',
    'x-middleware-subrequest',
    'x-now-route-matches',
    'x-invoke-path',
    'x-invoke-query',
    'x-matched-path',
  ]),
  stores: Object.freeze([] as CacheStore[]),
  serveStaleOnError: true as boolean | readonly number[],
  staleIfError: 86_400_000,
  staleWhileRevalidate: 0,
  originTimeout: 30_000,
  gracePeriod: 10_000,
  statLevel: 0,
  autoInvalidate: Object.freeze(['*.html', '*.json']),
  tagHeader: 'surrogate-key',
  flush: Object.freeze({
    path: '/dispatcher/invalidate.cache',
    allowedClients: Object.freeze(['127.0.0.0/8', '::1']),
    trustProxy: Object.freeze([] as string[]),
    hosts: Object.freeze([] as string[]),
    token: undefined as string | undefined,
    maxBodyBytes: 1024 * 1024,
    maxLines: 10_000,
  }),
  refetch: Object.freeze({ concurrency: 4 }),
  invalidation: Object.freeze({ propagate: true }),
  peers: Object.freeze({
    self: undefined,
    nodes: Object.freeze([] as string[]),
    refreshInterval: 10_000,
    secret: undefined,
    path: '/_stratacache/peer',
    queryTimeout: 50,
    fetchTimeout: 2_000,
    strategy: 'all',
    updateLocalCache: true,
    maxConcurrent: 16,
    failureThreshold: 3,
    coolDown: 5_000,
    maxEntrySize: undefined,
  } satisfies PeersDefaults as PeersDefaults),
  data: Object.freeze({
    maxSize: 16 * 1024 * 1024,
    maxEntrySize: 1024 * 1024,
    defaultTtl: 60_000,
    fetch: Object.freeze({ timeout: 10_000, maxConcurrentPerOrigin: 8 }),
    maxIncludeDepth: 3,
    includeErrors: 'fail' as 'continue' | 'fail',
    maxTrackedKeys: 100_000,
    maxDependents: 10_000,
    stores: Object.freeze([] as CacheStore[]),
    softTimeout: 0,
    hardTimeout: 0,
    refreshAhead: 0,
    earlyRefresh: 0,
    ttlJitter: 0,
    random: undefined as (() => number) | undefined,
  }),
  includes: false,
  cacheStatusDetail: false,
  metrics: Object.freeze({ registry: undefined }),
  compress: COMPRESS_DEFAULTS,
});

/** The statuses `serveStaleOnError: true` covers (RFC 9110 §15.6 server errors that signal a failing origin). */
export const STALE_ON_ERROR_STATUSES = Object.freeze([500, 502, 503, 504]);
