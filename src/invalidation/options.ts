/**
 * Options of invalidation (`options.flush`, `options.refetch`, `options.invalidation`) and the
 * flush endpoint's resolver. Their defaults are in `DEFAULTS` (`options/defaults.ts`).
 */
import type { Bytes, Count } from '../options/units.js';
import { fail, integerOption, isAddressOrCidr, objectOption, stripUndefined } from '../options/validate.js';

/** Options of the flush endpoint. */
export interface FlushOptions {
  /**
   * Request path (no query) the endpoint answers, on GET and POST, before the handler runs.
   * @default '/dispatcher/invalidate.cache'
   */
  path?: string;
  /**
   * Client addresses (IPv4/IPv6, or CIDR ranges such as `10.0.0.0/8`, `fd00::/8`) allowed to
   * use the admin routes (flush endpoint, PURGE, stats, console), checked against the socket's
   * address (IPv4-mapped IPv6 addresses such as `::ffff:127.0.0.1` count as their IPv4 form;
   * `X-Forwarded-For` is never believed). Anyone else gets 403. `['0.0.0.0/0', '::/0']` allows
   * every address (then set a token).
   * @default ['127.0.0.0/8', '::1'] (loopback only)
   */
  allowedClients?: readonly string[];
  /**
   * Addresses (IPv4/IPv6 or CIDR ranges, as `allowedClients`) of the proxies in front of this
   * cache (nginx, a TLS terminator, a load balancer) that may relay a request without adding a
   * proxy header. A request from one of them, like any request carrying `Forwarded`,
   * `X-Forwarded-For`, `X-Real-IP` or `Via`, is some other client's: its socket address proves
   * nothing, so an admin route answers it only with the token (403 when no token is set).
   * An empty list means only the proxy headers mark a proxied request.
   * @default []
   */
  trustProxy?: readonly string[];
  /**
   * Host names (lower case, no port) the admin routes answer to besides IP addresses and
   * `localhost`, e.g. `['cache.internal']`. A request whose `Host` names anything else gets 403:
   * a page on an attacker's domain that rebinds its name to this machine (DNS rebinding) sends
   * that domain as Host. An empty list admits IP addresses and `localhost` only.
   * @default []
   */
  hosts?: readonly string[];
  /**
   * Bearer token (`Authorization: Bearer <token>`, or the password of `Authorization: Basic`).
   * When set, a request without it gets 403 even from an allowed client; a request through a
   * proxy (see `trustProxy`) needs it in any case.
   * @default undefined (no token required from a direct, allowed client; proxied requests refused)
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
  readonly trustProxy: readonly string[];
  readonly hosts: readonly string[];
  readonly token: string | undefined;
  readonly maxBodyBytes: Bytes;
  readonly maxLines: Count;
}

/** A DNS name: labels of letters, digits and hyphens, dot-separated (a trailing dot allowed). */
const HOST_NAME = /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/**
 * Validates `options.flush` (`false` turns the endpoint off). `defaults` is `DEFAULTS.flush`.
 * @throws TypeError or RangeError naming `options.flush.<field>` and the value it got.
 */
export function resolveFlushOptions(value: unknown, defaults: ResolvedFlushOptions): ResolvedFlushOptions | undefined {
  if (value === false) return undefined;
  objectOption('flush', value, 'an object or false');
  const f = { ...defaults, ...stripUndefined(value as FlushOptions) };
  if (typeof f.path !== 'string' || !f.path.startsWith('/') || /[?#\s]/.test(f.path)) fail(TypeError, 'flush.path', "a path starting with '/' (no query)", f.path);
  for (const name of ['allowedClients', 'trustProxy'] as const) {
    const list: unknown = f[name];
    if (!Array.isArray(list)) fail(TypeError, `flush.${name}`, 'an array of addresses or CIDR ranges', list);
    list.forEach((c: unknown, i) => {
      if (typeof c !== 'string' || !isAddressOrCidr(c)) fail(TypeError, `flush.${name}[${i}]`, 'an IP address or CIDR range', c);
    });
  }
  if (!Array.isArray(f.hosts)) fail(TypeError, 'flush.hosts', 'an array of host names', f.hosts);
  f.hosts.forEach((h: unknown, i) => {
    if (typeof h !== 'string' || !HOST_NAME.test(h)) fail(TypeError, `flush.hosts[${i}]`, "a host name without port (e.g. 'cache.internal')", h);
  });
  if (f.token !== undefined && (typeof f.token !== 'string' || f.token === '' || /\s/.test(f.token))) {
    fail(TypeError, 'flush.token', 'a non-empty string without spaces', f.token);
  }
  return Object.freeze({
    path: f.path,
    allowedClients: Object.freeze([...f.allowedClients]),
    trustProxy: Object.freeze([...f.trustProxy]),
    hosts: Object.freeze(f.hosts.map((h) => h.toLowerCase().replace(/\.$/, ''))),
    token: f.token,
    maxBodyBytes: integerOption('flush.maxBodyBytes', f.maxBodyBytes, 1),
    maxLines: integerOption('flush.maxLines', f.maxLines, 1),
  });
}
