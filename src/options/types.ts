/**
 * Options of {@link createCache}: the interfaces users read (each area's own options live
 * beside it: `data/options.ts`, `invalidation/options.ts`, `peers/options.ts`), and the
 * resolved form the cache's parts read.
 */
import type { IncomingMessage } from 'node:http';
import type { CompressOptions, ResolvedCompressOptions } from '../compress/settings.js';
import type { DataOptions, ResolvedDataOptions } from '../data/options.js';
import type { FlushOptions, InvalidationOptions, RefetchOptions, ResolvedFlushOptions } from '../invalidation/options.js';
import type { MetricsOptions, MetricsRegistry } from '../observe/options.js';
import type { PeersOptions, ResolvedPeersOptions } from '../peers/options.js';
import type { CdnOptions, ResolvedCdnOptions } from '../cdn/options.js';
import type { RouteRule, RuleSet } from '../rules.js';
import type { CacheStore } from '../stores/store.js';
import type { Bytes, Count, Milliseconds } from './units.js';

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
   * Memory budget of the response cache in bytes: each entry is charged the memory it takes (body,
   * headers and a fixed overhead of about 600 bytes; within 10 % of the heap it really takes, as
   * `npm run bench:memory` measures), and the least recently used entries are evicted past it.
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
   * Heuristic freshness (RFC 9111 §4.2.2): a response with no explicit freshness but a
   * `Last-Modified` is fresh for this fraction of the time since it was last modified (`0.1` is the
   * spec's example, "10% of that interval"), capped by `maxTtl`; it takes the place of `defaultTtl`
   * for such responses. `0` turns the heuristic off.
   * @default 0
   */
  heuristicFreshness?: number;
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
   * How long in ms a key whose response turned out not storable is remembered as such
   * (hit-for-miss): later requests render at once instead of queueing behind one another, and
   * the first storable response is stored and ends it, so what one request carried (a cookie,
   * Authorization) never makes the URL a pass for everyone. `0` disables the memory.
   * @default 5000
   */
  passTtl?: Milliseconds;
  /**
   * How long in ms, after a render of a key failed and a stale copy answered instead
   * (stale-if-error), that stale copy keeps answering without asking the origin again: a site
   * whose origin is down sends it one request per key per interval, not one per client request.
   * A successful render ends it at once. `0` asks the origin on every request, so a recovered
   * origin is seen by the very next request; `1000` is a good value for a busy site.
   * @default 0
   */
  errorBackoff?: Milliseconds;
  /**
   * How long in ms `close()` waits for background work (renders, refetches, data refreshes)
   * before it abandons what is still running and releases the stores anyway. `close({ timeout })`
   * overrides it for one call.
   * @default 5000
   */
  closeTimeout?: Milliseconds;
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
   * checked at construction (get, set and delete; listed once). A promise of a store
   * (`redisStore({ url })` without `await`) is waited for by the tier's operations; its rejection
   * is reported once (`error`) and the tier skipped.
   * @default [] (memory only, `maxSize` bytes)
   */
  stores?: readonly (CacheStore | PromiseLike<CacheStore>)[];
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
   * How long in ms a render may go without progress. No headers within it: a stale copy (one
   * within its stale-if-error window) is served instead, or else the client and the render's
   * waiters get 504 Gateway Timeout (the render goes on and is stored if it can be; a background
   * render's waiters get the same). No byte for this long once the headers are out: the response
   * is cut (the client's connection is closed, so it can tell), its waiters get 504 or the stale
   * copy, and nothing is stored. A render whose client left goes on for its waiters for at most
   * this long (30 s when `0`), and ends within 1 s of its handler stopping writing. `0`: no bound
   * on headers or on a stalled body.
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
   * @default { path: '/dispatcher/invalidate.cache', allowedClients: ['127.0.0.0/8', '::1'], trustProxy: [], hosts: [], maxBodyBytes: 1048576, maxLines: 10000 }
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
   * fetchTimeout: 2000, strategy: 'all', ownerTimeout: 5000, updateLocalCache: true, maxConcurrent: 16, failureThreshold: 3,
   * coolDown: 5000 } (self, secret and maxEntrySize undefined: peers off until a secret is set)
   */
  peers?: PeersOptions;
  /**
   * The data cache (`cache.data`): values and sub-responses a handler needs while it renders,
   * with their own byte budget and lifetimes. See {@link DataOptions}.
   * @default { maxSize: 16777216, maxEntrySize: 1048576, defaultTtl: 60000, fetch: { timeout: 10000,
   * maxConcurrentPerOrigin: 8 }, maxIncludeDepth: 3, includeErrors: 'fail', maxTrackedKeys: 100000,
   * maxDependents: 10000, stores: [], softTimeout: 0, hardTimeout: 0, refreshAhead: 0, earlyRefresh: 0,
   * ttlJitter: 0 } (random undefined: Math.random)
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
   * `detail` (the tier that answered: `memory`, a store's name, a peer, or a pass's reason).
   * `false`: only `hit`/`fwd` (the hit path then writes precomputed values and pays nothing for this).
   * @default false
   */
  cacheStatusDetail?: boolean;
  /**
   * Prometheus metrics. `cache.metricsHandler()` serves them in any case; with `registry` (a
   * prom-client `Registry`) they are also collected there at scrape time, beside the app's own.
   * See {@link MetricsOptions}.
   * @default {} (no registry)
   */
  metrics?: MetricsOptions;
  /**
   * Stored compressed variants: a compressible response (text, HTML, JSON, JS, CSS, SVG, XML) is
   * compressed once, in the background, when it is stored, and kept with its entry in every tier;
   * a hit sends the coding the client accepts best (`Accept-Encoding` q-values), with
   * `Vary: Accept-Encoding`, its own Content-Length and a suffixed ETag. `true` is
   * `{ encodings: ['br', 'gzip'] }` (plus `'zstd'` where Node has it); see {@link CompressOptions}.
   * No encodings (the default) or `false`: responses are stored and sent as the handler wrote them.
   * @default { encodings: [], minSize: 1024, types: ['text/*', 'application/json', 'application/*+json', 'application/javascript', 'application/x-javascript', 'application/ecmascript', 'application/xml', 'application/*+xml', 'image/svg+xml', 'application/manifest+json'], level: { br: 9, gzip: 9, zstd: 12 } }
   */
  compress?: CompressOptions | boolean;
  /**
   * Per-route rules: lifetimes, stale windows, stored statuses, bypass and tags by path glob
   * (optionally method and host). The first matching rule applies; its freshness applies where the
   * origin gives none (the origin's `Cache-Control` wins unless the rule says `override: true`).
   * The rule that applied shows in `Cache-Status` detail and in explain. See {@link RouteRule}.
   * `[]`: the global options apply everywhere.
   * @default []
   */
  rules?: readonly RouteRule[];
  /**
   * The CDN in front of this cache: stored responses carry their tags (and hashed path and
   * data-dependency tags) in the provider's header, and every invalidation applied here (path,
   * prefix, tag, data dependency, PURGE, flush) is sent to its purge API, batched and retried.
   * See {@link CdnOptions} (`docs/cdn.md`).
   * @default undefined (no CDN)
   */
  cdn?: CdnOptions | undefined;
}

/** Options after {@link resolveOptions}: every field present and validated. */
export interface ResolvedOptions {
  readonly maxSize: Bytes;
  readonly maxEntrySize: Bytes;
  readonly defaultTtl: Milliseconds;
  readonly maxTtl: Milliseconds;
  readonly heuristicFreshness: number;
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
  readonly errorBackoff: Milliseconds;
  readonly closeTimeout: Milliseconds;
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
  /** Undefined when compression is off. */
  readonly compress: ResolvedCompressOptions | undefined;
  /** The compiled rules; undefined when there are none. */
  readonly rules: RuleSet | undefined;
  /** Undefined without a CDN. */
  readonly cdn: ResolvedCdnOptions | undefined;
}
