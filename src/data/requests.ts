/**
 * `cache.data.fetch`'s requests: resolving a URL or path to a target and its data key, one
 * request (conditional when a stale entry has validators) over the network or through the
 * wrapped app, and storing the response by its own headers (RFC 9111).
 */
import createDebug from 'debug';
import type { ResponseServices } from '../seam.js';
import type { Entry } from '../entry.js';
import { CacheError, DataFetchError, DataLoopError } from '../errors.js';
import { normalizeTarget } from '../key.js';
import type { ResolvedOptions } from '../options/types.js';
import { evaluateRevalidation, evaluateResponse, storedHeaders, type PolicyOptions, type Verdict } from '../policy.js';
import { headerPairs, newEntry, SERVER_ERRORS } from './entries.js';
import { httpGet, OriginLimits, withTimeout, type RawResponse } from './fetch.js';
import { URLKEY } from './keys.js';
import type { DataFlight } from './flights.js';
import type { NamespaceScope } from './namespace.js';
import type { Scope } from './scope.js';
import type { DataStorage } from './storage.js';
import type { Counters, DataFetchOptions, LoadedResponse, Outcome, Target } from './types.js';

const debug = createDebug('stratacache:data');

/** Makes and stores the requests of `cache.data.fetch`. */
export class DataRequests {
  readonly #engine: ResponseServices;
  readonly #storage: DataStorage;
  readonly #fetchTimeout: number;
  readonly #policy: PolicyOptions & Pick<ResolvedOptions, 'storeHeaders'>;
  readonly #limits: OriginLimits;
  readonly #counters: Counters;
  readonly #fail: (error: CacheError) => void;

  constructor(engine: ResponseServices, o: ResolvedOptions, storage: DataStorage, counters: Counters, fail: (error: CacheError) => void) {
    this.#engine = engine;
    this.#storage = storage;
    this.#fetchTimeout = o.data.fetchTimeout;
    this.#policy = { cacheStatuses: o.cacheStatuses, defaultTtl: o.data.defaultTtl, maxTtl: o.maxTtl, storeHeaders: o.storeHeaders };
    this.#limits = new OriginLimits(o.data.maxConcurrentPerOrigin);
    this.#counters = counters;
    this.#fail = fail;
  }

  /** Resolves a fetch's URL (or path) and headers to its data key and where to send it. */
  target(url: string, options: DataFetchOptions, ns?: NamespaceScope): Target {
    if (typeof url !== 'string') throw new TypeError(`expected url to be a string, got ${typeof url}`);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
    // The data cache keeps no Vary map: the headers a call sends are part of its key, so a
    // response that varies on one of them is never served to a call that sent another value.
    const suffix =
      Object.keys(headers)
        .sort()
        .map((name) => `\n${name}:${headers[name]}`)
        .join('') + (ns?.fetchSuffix ?? '');
    const tags = ns?.tags ?? [];
    if (/^https?:\/\//i.test(url)) {
      const parsed = new URL(url);
      return { key: URLKEY + parsed.href + suffix, display: parsed.href, url: parsed, path: undefined, host: parsed.host, headers, tags };
    }
    const path = url.startsWith('/') && !url.startsWith('//') ? normalizeTarget(url, undefined) : undefined;
    if (path === undefined) throw new TypeError(`expected url to be an absolute http(s) URL or a path starting with /, got '${url}'`);
    const scope = this.#storage.als.getStore();
    const chain = scope?.chain ?? [];
    // Detected before any lookup or flight: joining our own flight would wait forever.
    if (chain.includes(path)) throw new DataLoopError([...chain, path]);
    const host = options.req?.headers.host ?? scope?.host ?? '';
    return { key: `${URLKEY}//${host}${path}${suffix}`, display: path, url: undefined, path, host, headers, tags };
  }


  /** One load of a fetch target as `flight` (its invalidation decides whether and how it is stored). */
  async loadUrl(target: Target, entry: Entry | undefined, options: DataFetchOptions, flight: DataFlight): Promise<Outcome> {
    try {
      const res = await this.#request(target, entry, options, flight);
      return { ok: true, res };
    } catch (error) {
      this.#fail(error instanceof CacheError ? error : new DataFetchError(`GET ${target.display} failed`, { cause: error }));
      return { ok: false, error };
    }
  }

  /** One request (conditional when the stale entry has validators), stored by its own headers. */
  async #request(target: Target, entry: Entry | undefined, options: DataFetchOptions, flight: DataFlight): Promise<LoadedResponse> {
    const headers: Record<string, string> = { ...target.headers };
    // RFC 9111 §4.3.1: validate the stored response with its validators.
    if (entry?.etag !== undefined) headers['if-none-match'] = entry.etag;
    if (entry?.lastModified !== undefined) headers['if-modified-since'] = entry.lastModified;
    const conditional = entry !== undefined && (entry.etag !== undefined || entry.lastModified !== undefined);
    this.#counters.loads++;
    const parent = this.#storage.als.getStore();
    const scope = this.#storage.deps.open({
      chain: target.path === undefined ? (parent?.chain ?? []) : [...(parent?.chain ?? []), target.path],
      host: target.host,
      runner: parent?.runner,
      onTaint: () => this.#storage.flights.detach(flight, 'soft'),
    });
    try {
      const raw = await this.#send(target, headers, scope, options.timeout ?? this.#fetchTimeout);
      const now = Date.now();
      const policyReq = { method: 'GET', url: target.display, headers };
      if (raw.status === 304 && conditional) {
        // RFC 9111 §4.3.4: a 304 freshens the stored response and its body is reused.
        const revalidated = evaluateRevalidation(policyReq, entry, { status: 304, headers: raw.headers }, this.#policy, now);
        if (revalidated !== undefined) {
          const refreshed = this.#storeResponse(target, { status: entry.status, headers: revalidated.headers, body: entry.body }, { verdict: revalidated.verdict, scope, now, flight });
          return { status: entry.status, headers: refreshed?.headers ?? revalidated.headers, body: entry.body, cache: 'REVALIDATED' };
        }
        // The 304 does not select the stored response: ask again without conditions.
        return this.#request(target, undefined, options, flight);
      }
      const verdict = evaluateResponse(policyReq, { status: raw.status, headers: raw.headers }, this.#policy, now);
      const kept = storedHeaders(raw.headers, this.#policy);
      this.#storeResponse(target, { status: raw.status, headers: kept, body: raw.body }, { verdict, scope, now, flight });
      return { status: raw.status, headers: verdict.storable ? kept : headerPairs(raw.headers), body: raw.body, cache: 'MISS' };
    } finally {
      this.#storage.deps.close(scope);
    }
  }

  /** Sends the request: over the network, or through the wrapped app for a path. */
  #send(target: Target, headers: Record<string, string>, scope: Scope, timeout: number): Promise<RawResponse> {
    if (target.url !== undefined) {
      const url = target.url;
      return this.#limits.run(url.origin, () => httpGet(url, headers, timeout));
    }
    const run = this.#storage.als.run(scope, () => this.#engine.subrequest({ url: target.path!, headers: { ...headers, host: target.host } }, scope.runner));
    return withTimeout(run, timeout, `GET ${target.display}`).then((result) => {
      if (!result.ok) throw new DataFetchError(`GET ${target.display} failed: ${result.reason}`, { cause: result.error });
      return { status: result.status, headers: result.headers as RawResponse['headers'], body: result.body };
    });
  }

  /** Stores a fetched response when its verdict allows; a not-storable one replaces nothing but is removed. */
  #storeResponse(
    target: Target,
    res: { status: number; headers: Array<[string, string]>; body: Buffer },
    at: { verdict: Verdict; scope: Scope; now: number; flight: DataFlight },
  ): Entry | undefined {
    const { verdict, scope, now, flight } = at;
    const key = target.key;
    if (flight.invalidated !== undefined) {
      this.#counters.invalidatedLoads++;
      // Overtaken by a delete or hard invalidation: answers the callers that joined before it only.
      if (flight.invalidated === 'hard') return (debug('not stored: %s was invalidated while loading', key), undefined);
      scope.tainted = true; // stored already stale (storage.put)
    }
    if (!verdict.storable) {
      debug('not stored: %s %s', verdict.reason, key);
      // A server error leaves the stored response for stale-if-error; anything else replaces it.
      if (!SERVER_ERRORS.has(res.status)) this.#storage.drop(key);
      return undefined;
    }
    const find = (name: string): string | undefined => res.headers.find(([n]) => n === name)?.[1];
    const entry = newEntry(
      { status: res.status, headers: res.headers, body: res.body, url: key.slice(URLKEY.length), tags: [...target.tags] },
      { now, staleAt: verdict.staleAt, swrUntil: verdict.swrUntil, sieUntil: verdict.sieUntil, initialAge: verdict.initialAge },
    );
    // Kept past its stale windows when it has validators, so a later fetch revalidates it.
    entry.expiresAt = verdict.keepUntil;
    entry.etag = find('etag');
    entry.lastModified = find('last-modified');
    this.#storage.put(key, entry, scope);
    return entry;
  }}
