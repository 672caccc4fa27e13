/**
 * Options of {@link createCache}: the interfaces users read, one frozen {@link DEFAULTS},
 * and {@link resolveOptions}, which validates once at construction and names the option
 * path and the bad value in every error. Nothing here is re-validated per request.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { CacheStore } from './stores/store.js';
import { resolvePeersOptions, type PeersDefaults, type PeersOptions, type ResolvedPeersOptions } from './peers/options.js';

/** A duration in milliseconds. Durations are milliseconds everywhere in the API. */
export type Milliseconds = number;
/** A size in bytes. */
export type Bytes = number;
/** A whole count. */
export type Count = number;

/** Which cache-status response header(s) to send. */
export type StatusHeaderMode = 'x-cache' | 'cache-status' | 'both' | false;

/** How the host part of the cache key is chosen. */
export interface KeyOptions {
  /**
   * `'header'`: the request's `Host` (lower-cased, default port dropped) is part of the key, so
   * two virtual hosts never share an entry. A string: every request is keyed under this fixed
   * host (use it when one site is served under many names). `false`: the host is not keyed.
   * @default 'header'
   */
  host?: 'header' | string | false;
  /**
   * Extra request headers that become part of the primary key (lower-case names). A header
   * listed here is also kept on the request that renders, even if {@link CacheOptions.unkeyedHeaders}
   * lists it.
   * @default []
   */
  headers?: readonly string[];
}

/** A function computing the whole primary cache key of a request. */
export type KeyFunction = (req: IncomingMessage) => string;

/** A predicate on an ignored query parameter name. */
export type IgnoreParamFunction = (name: string) => boolean;

/** Options of {@link createCache}. Every field is optional; {@link DEFAULTS} lists the defaults. */
export interface CacheOptions {
  /**
   * Memory budget of the response cache in bytes (body plus headers plus a fixed overhead per
   * entry), enforced by lru-cache: the least recently used entries are evicted past it.
   * Must be a positive integer: an unbounded cache is refused.
   * @default 67108864 (64 MiB)
   */
  maxSize?: Bytes;
  /**
   * Largest body stored, in bytes. A larger response streams through to its client and is not
   * stored. Must not exceed `maxSize`; when unset it follows a smaller `maxSize` (8 MiB or
   * `maxSize`, whichever is smaller).
   * @default 8388608 (8 MiB)
   */
  maxEntrySize?: Bytes;
  /**
   * Freshness lifetime in ms given to a storable response whose origin sends no explicit
   * freshness (no `max-age`, `s-maxage` or `Expires`): the seed's "cache almost everything".
   * `0` stores such responses only if the origin makes them explicitly fresh.
   * @default 60000
   */
  defaultTtl?: Milliseconds;
  /**
   * Upper bound in ms on any freshness lifetime, whatever the origin says.
   * @default 86400000 (one day)
   */
  maxTtl?: Milliseconds;
  /**
   * Query parameters left out of the key: exact names, `*` globs (`utm_*`), or a predicate on
   * the name. The request that renders still sees them. `[]` keys every parameter.
   * @default []
   */
  ignoreUrlParams?: readonly string[] | IgnoreParamFunction;
  /**
   * Allowlist (lower-case names) of response headers kept in an entry. `undefined` keeps every
   * header except hop-by-hop headers and `Set-Cookie`. `Set-Cookie` is never stored either way.
   * @default undefined
   */
  storeHeaders?: readonly string[] | undefined;
  /**
   * Response statuses stored without explicit freshness, that is with `defaultTtl`: the
   * heuristically cacheable statuses of RFC 9111 §4.2.2 (error pages such as 404 and 410 are in,
   * the seed's "cache error pages"). A response of any other final status is stored only when
   * the origin gives it explicit freshness (`max-age`, `s-maxage`, `Expires`; RFC 9111 §3), and
   * every response must also be storable by RFC 9111 rules. 206 and 304 are never stored.
   * @default [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]
   */
  cacheStatuses?: readonly number[];
  /**
   * Cookie names (exact or `*` globs) that do not personalise a page, such as analytics and
   * consent cookies: `['_ga', '_gid', 'consent*']`. A request whose cookies are all listed
   * counts as anonymous. A response to a request with any other cookie (or `Authorization`) is
   * stored only when the origin makes it explicitly shareable (`public`, `s-maxage`, or
   * `max-age` without `private`) and never gets `defaultTtl`: a session page must not reach
   * another client. `[]` treats every cookie as personal.
   * @default []
   */
  ignoreCookies?: readonly string[];
  /**
   * Targeted cache-control fields (RFC 9213) this cache obeys, lower-case names in order of
   * precedence, e.g. `['cdn-cache-control']`. The first one present with a valid value replaces
   * `Cache-Control` and `Expires` for this cache's decisions; clients and caches further out still
   * receive every header. `[]` obeys `Cache-Control` only: the middleware default, since the app
   * may address a CDN in front of it. The CLI passes `['cdn-cache-control']`.
   * @default []
   */
  targetedCacheControl?: readonly string[];
  /**
   * How the primary key is built: a host policy and extra keyed headers, or a function that
   * returns the whole key (the query normalisation is then yours).
   * @default { host: 'header', headers: [] }
   */
  key?: KeyOptions | KeyFunction;
  /**
   * A predicate: `true` sends the request straight to the handler (status `PASS`), untouched
   * and never stored.
   * @default undefined (no bypass)
   */
  bypass?: ((req: IncomingMessage) => boolean) | undefined;
  /**
   * Cache status header(s): `X-Cache: HIT|MISS|PASS|STALE`, RFC 9211 `Cache-Status`, both, or
   * `false` for none.
   * @default 'both'
   */
  statusHeader?: StatusHeaderMode;
  /**
   * The cache's name in `Cache-Status` (RFC 9211 §2).
   * @default 'stratacache'
   */
  cacheName?: string;
  /**
   * Most variants (by `Vary`) kept per primary key; storing one more drops the oldest.
   * @default 16
   */
  maxVariants?: Count;
  /**
   * How long in ms a key whose response turned out not storable is remembered as such, so
   * later requests go straight to the handler instead of queueing behind one another.
   * `0` disables the memory.
   * @default 5000
   */
  passTtl?: Milliseconds;
  /**
   * Request headers that are not part of the key and that a handler could reflect into a
   * response (lower-case names). They are removed from a request before it renders a response
   * that will be stored, so no client can poison an entry others receive. Name a header in
   * `key.headers` to key on it instead.
   * Client-address headers are in the list because Express `trust proxy` and Koa `proxy` reflect
   * X-Forwarded-For as `req.ip`/`ctx.ip`; a render that will be stored sees none of them (log the
   * client address before the cache, or key on the header). Giving a list replaces the default.
   * @default ['forwarded', 'x-forwarded-host', 'x-forwarded-server', 'x-forwarded-proto',
   * 'x-forwarded-scheme', 'x-forwarded-port', 'x-forwarded-prefix', 'x-host', 'x-original-url',
   * 'x-rewrite-url', 'x-http-method-override', 'x-http-method', 'x-method-override',
   * 'x-forwarded-for', 'x-real-ip', 'true-client-ip', 'x-client-ip', 'x-cluster-client-ip',
   * 'cf-connecting-ip', 'fastly-client-ip', 'x-original-host', 'x-forwarded-uri',
   * 'x-forwarded-path', 'x-original-uri', 'x-forwarded-ssl', 'front-end-https',
   * 'x-middleware-prefetch', 'x-middleware-subrequest', 'x-now-route-matches', 'x-invoke-path',
   * 'x-invoke-query', 'x-matched-path']
   */
  unkeyedHeaders?: readonly string[];
  /**
   * The storage tiers, fastest first: `[memoryStore({ maxSize }), diskStore({ dir, maxSize }),
   * redisStore({ url })]`. A memory store in the list (first, at most one) is the memory tier;
   * without one the cache puts a memory tier of `maxSize` bytes first. A hit in a lower tier is
   * promoted to every tier above it; a stored response is written to all of them. Each store is
   * checked at construction (get, set and delete; listed once).
   * @default [] (memory only, `maxSize` bytes)
   */
  stores?: readonly CacheStore[];
  /**
   * Serve a stale copy instead of an origin failure: when the handler throws, passes
   * {@link CacheOptions.originTimeout} before sending headers, or answers one of these statuses,
   * a stored copy still inside its stale-if-error window is served with `X-Cache: STALE`, and the
   * error response never replaces it. `true` means `[500, 502, 503, 504]`; a list of statuses
   * replaces that set (add `429` here to cover rate limiting); `false` turns the feature off.
   * @default true
   */
  serveStaleOnError?: boolean | readonly number[];
  /**
   * How long in ms after it turned stale a copy stays usable for {@link CacheOptions.serveStaleOnError}
   * when the origin sends no RFC 5861 `stale-if-error` directive (the directive wins when present).
   * Applies only to responses that were fresh for some time. `0`: only the directive counts.
   * One day covers an overnight origin outage while bounding how long a dead page can be replayed.
   * @default 86400000 (one day)
   */
  staleIfError?: Milliseconds;
  /**
   * How long in ms after it turned stale a copy may be served while one background refresh runs
   * (RFC 5861 §3), when the origin sends no `stale-while-revalidate` directive (the directive wins
   * when present). Applies only to responses that were fresh for some time. `0`: only the directive.
   * @default 0
   */
  staleWhileRevalidate?: Milliseconds;
  /**
   * How long in ms a render may take to send its headers before a stale copy (one within its
   * stale-if-error window) is served instead; the late output is discarded. Without a stale copy
   * the render simply continues. `0`: never time out.
   * @default 30000
   */
  originTimeout?: Milliseconds;
  /**
   * How long in ms after an invalidation an entry it made stale may still be served (`STALE`)
   * while one background refresh of it runs; after it, requests wait for a fresh copy. A burst of
   * publications (a tree activation) then costs one background render per requested page instead
   * of a stampede. `0`: invalidated entries are never served (except as an error fallback).
   * @default 10000
   */
  gracePeriod?: Milliseconds;
  /**
   * How deep an invalidation reaches up the path for auto-invalidation (the dispatcher's
   * `statfileslevel`): invalidating `/content/site/en/page` at level 2 makes every entry under
   * `/content/site` whose path matches {@link CacheOptions.autoInvalidate} stale, and nothing
   * under `/content/other`. Level 0 reaches the whole site (the dispatcher's default).
   * @default 0
   */
  statLevel?: Count;
  /**
   * Path globs (`*` matches any characters, `/` included) of entries that an invalidation
   * anywhere under their stat-level ancestor makes stale (see {@link CacheOptions.statLevel}).
   * Other entries go stale only when their own path is invalidated. The default is the
   * dispatcher's usual rule: rendered pages and their JSON models depend on navigation, images and
   * scripts do not. `[]` turns auto-invalidation off.
   * @default ['*.html', '*.json']
   */
  autoInvalidate?: readonly string[];
  /**
   * Response header whose space-separated values tag an entry for {@link StrataCache.invalidateTags}.
   * @default 'surrogate-key'
   */
  tagHeader?: string;
  /**
   * The HTTP flush endpoint (AEM dispatcher flush-agent protocol and a JSON form), answered
   * before the handler on its path; `false` disables it. See {@link FlushOptions}.
   * @default { path: '/dispatcher/invalidate.cache', allowedClients: ['127.0.0.0/8', '::1'], maxBodyBytes: 1048576, maxLines: 10000 }
   */
  flush?: FlushOptions | false;
  /**
   * Background refetching after a flush, and priming. See {@link RefetchOptions}.
   * @default { concurrency: 4 }
   */
  refetch?: RefetchOptions;
  /**
   * Invalidation across a cluster. See {@link InvalidationOptions}.
   * @default { propagate: true }
   */
  invalidation?: InvalidationOptions;
  /**
   * Peer cluster: ask the other nodes before rendering a local miss. See {@link PeersOptions}
   * for each field and its default (`DEFAULTS.peers`).
   * @default { nodes: [], refreshInterval: 10000, path: '/_stratacache/peer', queryTimeout: 50,
   * fetchTimeout: 2000, strategy: 'all', updateLocalCache: true, maxConcurrent: 16, failureThreshold: 3,
   * coolDown: 5000 } (self, secret and maxEntrySize undefined: peers off until a secret is set)
   */
  peers?: PeersOptions;
  /**
   * The data cache (`cache.data`): values and sub-responses a handler needs while it renders,
   * with their own byte budget and lifetimes. See {@link DataOptions}.
   * @default { maxSize: 16777216, maxEntrySize: 1048576, defaultTtl: 60000, fetch: { timeout: 10000,
   * maxConcurrentPerOrigin: 8 }, maxIncludeDepth: 3, includeErrors: 'fail', maxTrackedKeys: 100000,
   * maxDependents: 10000 }
   */
  data?: DataOptions;
  /**
   * `true`: an HTML response (`Content-Type: text/html`) containing `<esi:include src="/path"/>`
   * is stored as a template, and each include with a same-origin relative `src` is filled from
   * the data cache when the page is served, with the fragment's own freshness. The response that
   * fills the cache is then buffered (not streamed) so its client gets the assembled page.
   * `false`: responses are stored and served as the handler wrote them.
   * @default false
   */
  includes?: boolean;
  /**
   * `true`: `Cache-Status` (RFC 9211) carries detail: `ttl` (seconds of freshness left, negative
   * when stale), `fwd` (why the request went forward: `uri-miss`, `stale`, `method`, `bypass`,
   * `peer`), `fwd-status`, `stored`, `collapsed` (waited for another request's render) and
   * `detail` (the tier that answered: `memory`, a store's name, or a pass's reason). `false`:
   * only `hit`/`fwd` (the hit path then writes precomputed values and pays nothing for this).
   * @default false
   */
  cacheStatusDetail?: boolean;
  /**
   * Prometheus metrics. `cache.metricsHandler()` serves them in any case; with `registry` (a
   * prom-client `Registry`) they are also collected there at scrape time, beside the app's own.
   * @default {} (no registry)
   */
  metrics?: MetricsOptions;
}

/** The part of a prom-client `Registry` stratacache uses (prom-client itself is never imported). */
export interface MetricsRegistry {
  registerMetric(metric: unknown): void;
}

/** Options of the metrics. */
export interface MetricsOptions {
  /**
   * A prom-client `Registry` (or anything with `registerMetric`) to register every metric on.
   * @default undefined (none: only `cache.metricsHandler()`)
   */
  registry?: MetricsRegistry | undefined;
}

/** Options of the flush endpoint. */
export interface FlushOptions {
  /**
   * Request path (no query) the endpoint answers, on GET and POST, before the handler runs.
   * @default '/dispatcher/invalidate.cache'
   */
  path?: string;
  /**
   * Client addresses (IPv4/IPv6, or CIDR ranges such as `10.0.0.0/8`, `fd00::/8`) allowed to
   * flush, checked against the socket's address (IPv4-mapped IPv6 addresses such as
   * `::ffff:127.0.0.1` count as their IPv4 form; `X-Forwarded-For` is not trusted). Anyone else
   * gets 403. `['0.0.0.0/0', '::/0']` allows every address (then set a token).
   * @default ['127.0.0.0/8', '::1'] (loopback only)
   */
  allowedClients?: readonly string[];
  /**
   * Bearer token (`Authorization: Bearer <token>`). When set, a request without it gets 403 even
   * from an allowed client.
   * @default undefined (no token required)
   */
  token?: string | undefined;
  /**
   * Largest request body in bytes (a refetch list or the JSON form); a larger one gets 413.
   * @default 1048576 (1 MiB)
   */
  maxBodyBytes?: Bytes;
  /**
   * Most refetch URIs (lines) or JSON list items in one request; more get 400.
   * @default 10000
   */
  maxLines?: Count;
}

/** Options of background refetching and priming. */
export interface RefetchOptions {
  /**
   * Most background renders a flush's refetch list runs at once (p-limit); the rest queue and
   * keep serving their old copy meanwhile. Also the default concurrency of `prime()`.
   * @default 4
   */
  concurrency?: Count;
}

/** Options of cluster-wide invalidation. */
export interface InvalidationOptions {
  /**
   * Send every invalidation this node receives (API, flush endpoint, tags, hard) to every peer
   * (`peers.nodes`, signed with `peers.secret`), in order, retried for peers that are down; and
   * refetch each flushed URI once for the cluster (its rendezvous owner renders it, the other
   * nodes serve their old copy and then take the owner's new one). Records received from peers
   * are applied whatever this setting and never sent on. With no peers it changes nothing.
   * @default true
   */
  propagate?: boolean;
}

/** Resolved flush endpoint options. */
export interface ResolvedFlushOptions {
  readonly path: string;
  readonly allowedClients: readonly string[];
  readonly token: string | undefined;
  readonly maxBodyBytes: Bytes;
  readonly maxLines: Count;
}

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
}

/** Options after {@link resolveOptions}: every field present and validated. */
export interface ResolvedOptions {
  readonly maxSize: Bytes;
  readonly maxEntrySize: Bytes;
  readonly defaultTtl: Milliseconds;
  readonly maxTtl: Milliseconds;
  readonly ignoreParam: IgnoreParamFunction | undefined;
  readonly storeHeaders: ReadonlySet<string> | undefined;
  readonly cacheStatuses: ReadonlySet<number>;
  /** `ignoreCookies` as a predicate; undefined when empty. */
  readonly ignoreCookie: IgnoreParamFunction | undefined;
  readonly targetedCacheControl: readonly string[];
  readonly keyFunction: KeyFunction | undefined;
  readonly keyHost: 'header' | string | false;
  readonly keyHeaders: readonly string[];
  readonly bypass: ((req: IncomingMessage) => boolean) | undefined;
  readonly statusHeader: StatusHeaderMode;
  readonly cacheName: string;
  readonly maxVariants: Count;
  readonly passTtl: Milliseconds;
  readonly unkeyedHeaders: readonly string[];
  readonly stores: readonly CacheStore[];
  /** Statuses answered with a stale copy when one exists; empty when serveStaleOnError is off. */
  readonly staleOnErrorStatuses: ReadonlySet<number>;
  /** The user set `serveStaleOnError` or `staleIfError`: stale-on-error then also covers `s-maxage` responses. */
  readonly staleOnErrorExplicit: boolean;
  readonly staleIfError: Milliseconds;
  readonly staleWhileRevalidate: Milliseconds;
  readonly originTimeout: Milliseconds;
  readonly gracePeriod: Milliseconds;
  readonly statLevel: Count;
  readonly autoInvalidate: ((path: string) => boolean) | undefined;
  readonly tagHeader: string;
  readonly flush: ResolvedFlushOptions | undefined;
  readonly refetchConcurrency: Count;
  readonly propagate: boolean;
  readonly peers: ResolvedPeersOptions;
  readonly data: ResolvedDataOptions;
  readonly includes: boolean;
  readonly cacheStatusDetail: boolean;
  readonly metricsRegistry: MetricsRegistry | undefined;
}

/** Every default in one place. A test checks that the TSDoc `@default`s above match it. */
export const DEFAULTS = Object.freeze({
  maxSize: 64 * 1024 * 1024,
  maxEntrySize: 8 * 1024 * 1024,
  defaultTtl: 60_000,
  maxTtl: 86_400_000,
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
  }),
  includes: false,
  cacheStatusDetail: false,
  metrics: Object.freeze({ registry: undefined }),
});

/** The statuses `serveStaleOnError: true` covers (RFC 9110 §15.6 server errors that signal a failing origin). */
export const STALE_ON_ERROR_STATUSES = Object.freeze([500, 502, 503, 504]);

const KNOWN_OPTIONS = new Set(Object.keys(DEFAULTS));

/** Describes a bad value for an error message: strings quoted, objects by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function fail(kind: typeof TypeError | typeof RangeError, path: string, expected: string, got: unknown): never {
  // The options object itself has the empty path: "expected options to be an object".
  throw new kind(`expected options${path === '' ? '' : `.${path}`} to be ${expected}, got ${describeValue(got)}`);
}

/** Validates an integer option: TypeError when not a number, RangeError when out of range. */
export function integerOption(path: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const expected = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer >= ${min}`;
  if (typeof value !== 'number' || Number.isNaN(value)) fail(TypeError, path, expected, value);
  if (!Number.isInteger(value) || value < min) fail(RangeError, path, expected, value);
  if (value > max) fail(RangeError, path, `at most ${max}`, value);
  return value;
}

/** Validates an optional function option. */
export function functionOption<F>(path: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') fail(TypeError, path, 'a function', value);
  return value as F;
}

/** Validates a list of strings and lower-cases them (header names). */
export function headerNamesOption(path: string, value: unknown): string[] {
  if (!Array.isArray(value)) fail(TypeError, path, 'an array of header names', value);
  return value.map((v, i) => {
    if (typeof v !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v)) fail(TypeError, `${path}[${i}]`, 'a header name', v);
    return v.toLowerCase();
  });
}

/** Turns `*` globs into one predicate; exact names are looked up in a Set. */
export function globPredicate(path: string, patterns: readonly unknown[]): IgnoreParamFunction | undefined {
  const exact = new Set<string>();
  const globs: RegExp[] = [];
  patterns.forEach((p, i) => {
    if (typeof p !== 'string' || p === '') fail(TypeError, `${path}[${i}]`, 'a non-empty string', p);
    if (p.includes('*')) {
      const source = p.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
      globs.push(new RegExp(`^${source}$`));
    } else exact.add(p);
  });
  if (exact.size === 0 && globs.length === 0) return undefined;
  return (name) => exact.has(name) || globs.some((g) => g.test(name));
}

/**
 * Validates user options once and returns the resolved, frozen form.
 * @throws TypeError or RangeError naming the option path and the value it got.
 */
export function resolveOptions(options: CacheOptions = {}): ResolvedOptions {
  if (options === null || typeof options !== 'object') fail(TypeError, '', 'an object', options);
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name) && !EXTENSION_OPTIONS.has(name)) {
      throw new TypeError(`unknown option options.${name}`);
    }
  }
  const o = { ...DEFAULTS, ...stripUndefined(options) } as Required<CacheOptions>;

  const maxSize = integerOption('maxSize', o.maxSize, 1);
  // Unset, the entry bound follows the budget it belongs to.
  const maxEntrySize = integerOption('maxEntrySize', options.maxEntrySize ?? Math.min(DEFAULTS.maxEntrySize, maxSize), 1);
  if (maxEntrySize > maxSize) fail(RangeError, 'maxEntrySize', `at most options.maxSize (${maxSize})`, maxEntrySize);
  const defaultTtl = integerOption('defaultTtl', o.defaultTtl, 0);
  const maxTtl = integerOption('maxTtl', o.maxTtl, 1);

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

  const bypass = functionOption<(req: IncomingMessage) => boolean>('bypass', o.bypass);
  if (o.statusHeader !== false && !['x-cache', 'cache-status', 'both'].includes(o.statusHeader as string)) {
    fail(TypeError, 'statusHeader', "'x-cache', 'cache-status', 'both' or false", o.statusHeader);
  }
  if (typeof o.cacheName !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(o.cacheName)) {
    fail(TypeError, 'cacheName', 'a token (letters, digits, -._~)', o.cacheName);
  }
  const maxVariants = integerOption('maxVariants', o.maxVariants, 1, 1024);
  const passTtl = integerOption('passTtl', o.passTtl, 0);
  const unkeyed = headerNamesOption('unkeyedHeaders', o.unkeyedHeaders).filter((h) => !keyHeaders.includes(h));

  if (!Array.isArray(o.stores)) fail(TypeError, 'stores', 'an array of stores', o.stores);
  o.stores.forEach((s, i) => {
    if (!s || typeof s.get !== 'function' || typeof s.set !== 'function' || typeof s.delete !== 'function') {
      fail(TypeError, `stores[${i}]`, 'a store with get, set and delete', s);
    }
  });

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
  const flush = resolveFlush(o.flush);
  if (o.refetch === null || typeof o.refetch !== 'object') fail(TypeError, 'refetch', 'an object', o.refetch);
  const refetchConcurrency = integerOption('refetch.concurrency', o.refetch.concurrency ?? DEFAULTS.refetch.concurrency, 1, 1024);
  if (o.invalidation === null || typeof o.invalidation !== 'object') fail(TypeError, 'invalidation', 'an object', o.invalidation);
  const propagate = o.invalidation.propagate ?? DEFAULTS.invalidation.propagate;
  if (typeof propagate !== 'boolean') fail(TypeError, 'invalidation.propagate', 'a boolean', propagate);

  const peers = resolvePeersOptions(o.peers, DEFAULTS.peers, maxEntrySize);
  if (typeof o.includes !== 'boolean') fail(TypeError, 'includes', 'a boolean', o.includes);
  if (typeof o.cacheStatusDetail !== 'boolean') fail(TypeError, 'cacheStatusDetail', 'a boolean', o.cacheStatusDetail);
  const metricsRegistry = resolveMetrics(o.metrics);


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
    data: resolveDataOptions(o.data),
    includes: o.includes,
    cacheStatusDetail: o.cacheStatusDetail,
    metricsRegistry,
    maxSize,
    maxEntrySize,
    defaultTtl,
    maxTtl,
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
    unkeyedHeaders: unkeyed,
    stores: [...o.stores],
    peers,
  });
}

/** Validates `options.metrics`; returns its registry. */
function resolveMetrics(metrics: unknown): MetricsRegistry | undefined {
  if (metrics === null || typeof metrics !== 'object' || Array.isArray(metrics)) fail(TypeError, 'metrics', 'an object', metrics);
  for (const name of Object.keys(metrics)) if (!(name in DEFAULTS.metrics)) throw new TypeError(`unknown option options.metrics.${name}`);
  const registry = (metrics as MetricsOptions).registry;
  if (registry !== undefined && (registry === null || typeof (registry as { registerMetric?: unknown }).registerMetric !== 'function')) {
    fail(TypeError, 'metrics.registry', 'a prom-client Registry (an object with registerMetric)', registry);
  }
  return registry;
}

const DATA_OPTIONS = new Set(Object.keys(DEFAULTS.data));
const DATA_FETCH_OPTIONS = new Set(Object.keys(DEFAULTS.data.fetch));

/** Validates `options.data`, naming `options.data.<field>` in every error. */
function resolveDataOptions(data: DataOptions): ResolvedDataOptions {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) fail(TypeError, 'data', 'an object', data);
  for (const name of Object.keys(data)) if (!DATA_OPTIONS.has(name)) throw new TypeError(`unknown option options.data.${name}`);
  const d = { ...DEFAULTS.data, ...stripUndefined(data) };
  const maxSize = integerOption('data.maxSize', d.maxSize, 1);
  const maxEntrySize = integerOption('data.maxEntrySize', data.maxEntrySize ?? Math.min(DEFAULTS.data.maxEntrySize, maxSize), 1);
  if (maxEntrySize > maxSize) fail(RangeError, 'data.maxEntrySize', `at most options.data.maxSize (${maxSize})`, maxEntrySize);
  const f = d.fetch as unknown;
  if (f === null || typeof f !== 'object' || Array.isArray(f)) fail(TypeError, 'data.fetch', 'an object', f);
  for (const name of Object.keys(f)) if (!DATA_FETCH_OPTIONS.has(name)) throw new TypeError(`unknown option options.data.fetch.${name}`);
  const fetch = { ...DEFAULTS.data.fetch, ...stripUndefined(f as object) } as Required<NonNullable<DataOptions['fetch']>>;
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
  });
}

/**
 * Option names owned by later layers (data cache, peers, invalidation). They are validated by
 * their own resolvers; listing them here keeps the unknown-option check honest.
 */
const EXTENSION_OPTIONS = new Set<string>([]);

function resolveFlush(value: unknown): ResolvedFlushOptions | undefined {
  if (value === false) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(TypeError, 'flush', 'an object or false', value);
  const f = { ...DEFAULTS.flush, ...stripUndefined(value as FlushOptions) };
  if (typeof f.path !== 'string' || !f.path.startsWith('/') || /[?#\s]/.test(f.path)) fail(TypeError, 'flush.path', "a path starting with '/' (no query)", f.path);
  if (!Array.isArray(f.allowedClients)) fail(TypeError, 'flush.allowedClients', 'an array of addresses or CIDR ranges', f.allowedClients);
  f.allowedClients.forEach((c, i) => {
    if (typeof c !== 'string' || !isAddressOrCidr(c)) fail(TypeError, `flush.allowedClients[${i}]`, 'an IP address or CIDR range', c);
  });
  if (f.token !== undefined && (typeof f.token !== 'string' || f.token === '' || /\s/.test(f.token))) {
    fail(TypeError, 'flush.token', 'a non-empty string without spaces', f.token);
  }
  return Object.freeze({
    path: f.path,
    allowedClients: Object.freeze([...f.allowedClients]),
    token: f.token,
    maxBodyBytes: integerOption('flush.maxBodyBytes', f.maxBodyBytes, 1),
    maxLines: integerOption('flush.maxLines', f.maxLines, 1),
  });
}

/** True for `a.b.c.d`, an IPv6 address, or either followed by `/prefix` in range. */
export function isAddressOrCidr(value: string): boolean {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return false;
  if (slash === -1) return true;
  const prefix = value.slice(slash + 1);
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
