/**
 * `options.cdn`: the CDN in front of this cache, whose tag header stored responses carry and to
 * which every local invalidation is sent as a purge. Its own frozen defaults and resolver.
 */
import type { Count, Milliseconds } from '../options/units.js';
import { fail, integerOption, knownOptions, objectOption } from '../options/validate.js';

/** Which CDN: its tag header and purge API. `'header'` writes tags into `header` and purges nothing. */
export type CdnProvider = 'fastly' | 'cloudflare' | 'akamai' | 'header';

/** Options of the CDN fan-out (`options.cdn`). */
export interface CdnOptions {
  /** The CDN. Required. */
  provider: CdnProvider;
  /** Fastly: the service ID purged (`POST /service/{serviceId}/purge`). Required for Fastly. */
  serviceId?: string;
  /** Cloudflare: the zone ID purged (`POST /zones/{zoneId}/purge_cache`). Required for Cloudflare. */
  zoneId?: string;
  /** Fastly: the API token (`Fastly-Key`); Cloudflare: the API token (`Authorization: Bearer`). Required for both. */
  token?: string;
  /** Akamai EdgeGrid credentials (`client_token`, `client_secret`, `access_token` of the API client). Required for Akamai. */
  clientToken?: string;
  clientSecret?: string;
  accessToken?: string;
  /**
   * Akamai: the network purged.
   * @default 'production'
   */
  network?: 'production' | 'staging';
  /**
   * Base URL of the purge API. Fastly `https://api.fastly.com`, Cloudflare
   * `https://api.cloudflare.com/client/v4`; Akamai has no public default (the `host` of the API
   * client, `https://akab-....purge.akamaiapis.net`): required for Akamai.
   * @default undefined (the provider's public API)
   */
  apiBase?: string;
  /**
   * The response header carrying the tags: with `provider: 'header'`, required; otherwise it
   * replaces the provider's (`Surrogate-Key`, `Cache-Tag`, `Edge-Cache-Tag`).
   * @default undefined (the provider's)
   */
  header?: string;
  /**
   * Soft purges: Fastly's `Fastly-Soft-Purge: 1` (marked stale, served stale while the edge
   * refetches) and Akamai's `invalidate` (instead of `delete`). Cloudflare has no soft purge.
   * @default true
   */
  soft?: boolean;
  /**
   * How long in ms one purge request may take before it counts as failed (and is retried).
   * @default 10000
   */
  timeout?: Milliseconds;
  /**
   * Most tags waiting to be sent; past it the oldest are dropped (counted in `cdnPurgesDropped`).
   * @default 10000
   */
  maxPending?: Count;
  /**
   * Attempts per batch (the first and its retries, 250 ms doubling up to 30 s) before it is dropped.
   * @default 6
   */
  maxAttempts?: Count;
}

/** The CDN options' defaults (the area's own, frozen). */
export const CDN_DEFAULTS = Object.freeze({
  network: 'production' as const,
  soft: true,
  timeout: 10_000,
  maxPending: 10_000,
  maxAttempts: 6,
  apiBase: Object.freeze({ fastly: 'https://api.fastly.com', cloudflare: 'https://api.cloudflare.com/client/v4' }),
  header: Object.freeze({ fastly: 'surrogate-key', cloudflare: 'cache-tag', akamai: 'edge-cache-tag' }),
});

/** `options.cdn` validated. */
export interface ResolvedCdnOptions {
  readonly provider: CdnProvider;
  /** Lower-case header name. */
  readonly header: string;
  /** Without a trailing slash; undefined for `'header'`. */
  readonly apiBase: string | undefined;
  readonly serviceId: string;
  readonly zoneId: string;
  readonly token: string;
  readonly clientToken: string;
  readonly clientSecret: string;
  readonly accessToken: string;
  readonly network: 'production' | 'staging';
  readonly soft: boolean;
  readonly timeout: Milliseconds;
  readonly maxPending: Count;
  readonly maxAttempts: Count;
}

const KNOWN = Object.freeze({ provider: 0, serviceId: 0, zoneId: 0, token: 0, clientToken: 0, clientSecret: 0, accessToken: 0, network: 0, apiBase: 0, header: 0, soft: 0, timeout: 0, maxPending: 0, maxAttempts: 0 });

/** Validates `options.cdn`; undefined when it is absent. @throws TypeError/RangeError naming `options.cdn.<field>`. */
export function resolveCdnOptions(value: unknown): ResolvedCdnOptions | undefined {
  if (value === undefined) return undefined;
  objectOption('cdn', value);
  knownOptions('cdn', value, KNOWN);
  const o = value as CdnOptions;
  const provider = o.provider;
  if (!['fastly', 'cloudflare', 'akamai', 'header'].includes(provider)) fail(TypeError, 'cdn.provider', "'fastly', 'cloudflare', 'akamai' or 'header'", provider);
  const text = (field: keyof CdnOptions, required: boolean): string => {
    const v = o[field];
    if (v === undefined && !required) return '';
    if (typeof v !== 'string' || v === '' || /[\s]/.test(v)) fail(TypeError, `cdn.${field}`, `a non-empty string without spaces${required ? ` (required for ${provider})` : ''}`, v);
    return v;
  };
  const header = o.header ?? (provider === 'header' ? undefined : CDN_DEFAULTS.header[provider]);
  if (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header)) fail(TypeError, 'cdn.header', `a header name${provider === 'header' ? " (required for 'header')" : ''}`, header);
  let apiBase: string | undefined;
  if (provider !== 'header') {
    const base = o.apiBase ?? (provider === 'akamai' ? undefined : CDN_DEFAULTS.apiBase[provider]);
    if (typeof base !== 'string' || !/^https?:\/\/[^/\s]+/.test(base)) fail(TypeError, 'cdn.apiBase', `an http(s) URL${provider === 'akamai' ? " (required for Akamai: the API client's host)" : ''}`, base);
    apiBase = base.replace(/\/+$/, '');
  }
  const network = o.network ?? CDN_DEFAULTS.network;
  if (network !== 'production' && network !== 'staging') fail(TypeError, 'cdn.network', "'production' or 'staging'", network);
  const soft = o.soft ?? CDN_DEFAULTS.soft;
  if (typeof soft !== 'boolean') fail(TypeError, 'cdn.soft', 'a boolean', soft);
  return Object.freeze({
    provider,
    header: header.toLowerCase(),
    apiBase,
    serviceId: text('serviceId', provider === 'fastly'),
    zoneId: text('zoneId', provider === 'cloudflare'),
    token: text('token', provider === 'fastly' || provider === 'cloudflare'),
    clientToken: text('clientToken', provider === 'akamai'),
    clientSecret: text('clientSecret', provider === 'akamai'),
    accessToken: text('accessToken', provider === 'akamai'),
    network,
    soft,
    timeout: integerOption('cdn.timeout', o.timeout ?? CDN_DEFAULTS.timeout, 1),
    maxPending: integerOption('cdn.maxPending', o.maxPending ?? CDN_DEFAULTS.maxPending, 1, 10_000_000),
    maxAttempts: integerOption('cdn.maxAttempts', o.maxAttempts ?? CDN_DEFAULTS.maxAttempts, 1, 100),
  });
}
